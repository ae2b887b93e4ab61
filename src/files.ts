/**
 * File helpers shared by every writer: outputs are whole or absent (docs/errors.md).
 *
 *   - A file is written to a temporary beside it, created exclusively (O_EXCL: a planted file or
 *     symbolic link at that name is never followed) under an unpredictable name, then renamed
 *     into place. Only regular files are replaced: a symbolic link, folder or device at the
 *     target is refused.
 *   - A result folder is staged and appears whole: a new folder is renamed into place at once; an
 *     existing folder teardown wrote (it carries OUTPUT_MARKER) is replaced as a whole (renamed
 *     away, the new one renamed in, the old one removed); any other non-empty folder is refused.
 *     A folder that is a mount point cannot be renamed: it is staged inside itself (so on its
 *     own file system, never EXDEV) and its contents replaced at commit.
 *   - Temporaries and staging folders are removed on every exit path of this process (errors,
 *     Ctrl-C, SIGTERM), and those of killed runs (their process gone) at the next write there.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError } from './errors.ts';

/** The hidden file that marks a folder as a teardown result, which a later run may replace whole. */
export const OUTPUT_MARKER = '.teardown-output';
/** Prefix of every temporary and staging name: `.teardown-<kind>-<pid>-<random>`. */
const PREFIX = '.teardown-';
/** A temporary or staging name, with the process that made it. */
const TEMPORARY_NAME = /^\.teardown-(?:tmp|staging|old)-(\d+)-[0-9a-f]+$/;
/** The names earlier versions gave them (`.DIR.PID.staging`, `.NAME.PID.tmp`), also removed once their process is gone. */
const OLD_TEMPORARY_NAME = /^\..+\.(\d+)\.(?:staging|tmp)$/;

export function writeFileAtomic(path: string, contents: Uint8Array | string): void {
  refuseNonRegular(path, 'Output file');
  makeFolders(dirname(path));
  const { path: temporary, fd } = createTemporary(dirname(path));
  try {
    try {
      writeSync(fd, typeof contents === 'string' ? Buffer.from(contents) : contents);
    } finally {
      closeSync(fd);
    }
    finishTemporary(temporary, path);
  } catch (error) {
    discardTemporary(temporary);
    throw error;
  }
}

/**
 * A new temporary file in `dir`, opened for writing with O_CREAT|O_EXCL under a random name (so
 * it is never an existing file or a link planted in advance); removed if this process is killed.
 */
export function createTemporary(dir: string): { path: string; fd: number } {
  removeStale(dir);
  for (;;) {
    const path = join(dir, `${PREFIX}tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      track(path);
      return { path, fd: openSync(path, 'wx', 0o644) };
    } catch (error) {
      live.delete(path);
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/** A temporary from createTemporary, complete: renamed to `path`. */
export function finishTemporary(temporary: string, path: string): void {
  renameSync(temporary, path);
  live.delete(temporary);
}

/** A temporary from createTemporary, abandoned: removed (quietly: this runs on error paths). */
export function discardTemporary(temporary: string): void {
  rmQuietly(temporary);
  live.delete(temporary);
}

/** Fail with a clear message when `path` is not a readable regular file. */
export function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new InputError(`${what} '${path}' does not exist: check the path.`);
  if (!statSync(path).isFile()) throw new InputError(`${what} '${path}' is not a file.`);
}

/**
 * Checks, before any work, that a file can be written at `path` (`flag` names it in messages):
 * nothing but a regular file there, and a folder it can be made in.
 */
export function checkOutputFile(path: string, flag: string): void {
  refuseNonRegular(path, flag);
  checkWritableParent(path, flag);
}

/**
 * Checks, before any work, that a result folder can be written at `dir`: a folder or nothing
 * there; if a folder, empty or one teardown wrote (OUTPUT_MARKER); a writable place for it.
 */
export function checkOutputFolder(dir: string, flag: string): void {
  const stats = lstatOrUndefined(dir);
  if (!stats) return checkWritableParent(dir, flag);
  if (!stats.isDirectory())
    throw new InputError(
      `${flag} '${dir}' is ${kindOf(stats)}, not a folder: give a folder name (teardown makes it).`,
    );
  const entries = readdirSync(dir).filter((entry) => !TEMPORARY_NAME.test(entry));
  if (entries.length > 0 && !entries.includes(OUTPUT_MARKER)) {
    throw new InputError(
      `${flag} '${dir}' is a folder teardown did not write (it holds ${entries
        .slice(0, 3)
        .map((entry) => `'${entry}'`)
        .join(
          ', ',
        )}${entries.length > 3 ? ', …' : ''}): teardown replaces only its own result folders, whole. Give a new folder name, or empty this one.`,
    );
  }
  checkWritable(isMountPoint(dir) ? dir : dirname(resolve(dir)), flag, dir);
}

/**
 * Writes every file of a result folder into a staging folder, then makes it `dir` only once all
 * were written (commit), so a failure or a kill leaves `dir` as it was.
 */
export class StagedFolder {
  private readonly staging: string;
  /** A mount point is staged inside itself and its contents swapped; any other folder is swapped whole. */
  private readonly inPlace: boolean;

  constructor(private readonly dir: string) {
    checkOutputFolder(dir, 'Output folder');
    this.inPlace = existsSync(dir) && isMountPoint(dir);
    const parent = this.inPlace ? dir : dirname(resolve(dir));
    makeFolders(parent);
    removeStale(parent);
    this.staging = join(
      parent,
      `${PREFIX}staging-${process.pid}-${randomBytes(8).toString('hex')}`,
    );
    track(this.staging);
    mkdirSync(this.staging);
    writeFileWhole(
      join(this.staging, OUTPUT_MARKER),
      'A folder of results written by teardown: a later run with the same output folder replaces it whole.\n',
    );
  }

  /** The staging path of `name` (a relative path; folders are made), for writers that stream. */
  pathOf(name: string): string {
    const path = join(this.staging, name);
    makeFolders(dirname(path));
    return path;
  }

  write(name: string, contents: Uint8Array | string): void {
    writeFileWhole(this.pathOf(name), contents);
  }

  commit(): void {
    if (this.inPlace) this.replaceContents();
    else this.replaceFolder();
    live.delete(this.staging);
  }

  abandon(): void {
    rmQuietly(this.staging);
    live.delete(this.staging);
  }

  /** The staging folder renamed to `dir`; an old `dir` is renamed away first and removed after. */
  private replaceFolder(): void {
    const target = resolve(this.dir);
    if (!existsSync(target)) return renameSync(this.staging, target);
    const old = join(
      dirname(target),
      `${PREFIX}old-${process.pid}-${randomBytes(8).toString('hex')}`,
    );
    track(old);
    renameSync(target, old);
    try {
      renameSync(this.staging, target);
    } catch (error) {
      renameSync(old, target);
      throw error;
    }
    rmQuietly(old);
    live.delete(old);
  }

  /** A mount point: its old entries removed, then the staged ones moved up (same file system). */
  private replaceContents(): void {
    for (const entry of readdirSync(this.dir)) {
      if (!TEMPORARY_NAME.test(entry))
        rmSync(join(this.dir, entry), { recursive: true, force: true });
    }
    for (const entry of readdirSync(this.staging))
      renameSync(join(this.staging, entry), join(this.dir, entry));
    rmQuietly(this.staging);
  }
}

/** Longest file name teardown writes from a value name (most file systems allow 255 bytes). */
const MAX_FILE_NAME = 200;

/**
 * A file-name-safe form of a hook or value name: every character outside [A-Za-z0-9_.-] (and a
 * leading '.') becomes %XX of its UTF-8 bytes, as in URLs.
 * '/blocks/blocks.0/Add_output_0' → '%2Fblocks%2Fblocks.0%2FAdd_output_0'.
 * A form longer than MAX_FILE_NAME keeps its start and ends in '~' and 16 hex digits of the
 * name's SHA-256 (no escaped name holds '~', so a shortened name never equals another's):
 * index.json maps every name to its file.
 */
export function escapeFileName(name: string): string {
  const escaped = [...new TextEncoder().encode(name)]
    .map((byte) =>
      /[A-Za-z0-9_.-]/.test(String.fromCharCode(byte)) && byte < 128
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
  const safe = escaped.startsWith('.') ? `%2E${escaped.slice(1)}` : escaped || '%00';
  if (safe.length <= MAX_FILE_NAME) return safe;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 16);
  return `${safe.slice(0, MAX_FILE_NAME - 17).replace(/%[0-9A-F]?$/, '')}~${hash}`;
}

/** The name an escaped file name stands for; undefined for a shortened one (look it up in index.json). */
export function unescapeFileName(escaped: string): string | undefined {
  if (escaped.includes('~')) return undefined;
  return escaped === '%00' ? '' : decodeURIComponent(escaped);
}

// ---------------------------------------------------------------------------------------------
// Clean-up on every exit path.

/** Temporaries and staging folders this process has not finished with. */
const live = new Set<string>();
let handlersInstalled = false;

function track(path: string): void {
  live.add(path);
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', removeLive);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      removeLive();
      process.removeListener(signal, onSignal);
      // Die of the signal as if unhandled (exit status 128 + its number), unless others listen.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function removeLive(): void {
  for (const path of live) rmQuietly(path);
  live.clear();
}

/** Temporaries and staging folders in `dir` left by processes that no longer run (killed with SIGKILL, or a crash of the machine). */
function removeStale(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number((TEMPORARY_NAME.exec(entry) ?? OLD_TEMPORARY_NAME.exec(entry))?.[1]);
    if (pid && pid !== process.pid && !processRuns(pid)) rmQuietly(join(dir, entry));
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // it runs, as another user
  }
}

/** Clean-up never throws: it runs on error paths, where the first error is the one to report. */
function rmQuietly(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    // Left for removeStale at the next run.
  }
}

// ---------------------------------------------------------------------------------------------
// Checks.

/** A new file written whole (inside a fresh staging folder, where nothing can be planted). */
function writeFileWhole(path: string, contents: Uint8Array | string): void {
  const fd = openSync(path, 'wx', 0o644);
  try {
    writeSync(fd, typeof contents === 'string' ? Buffer.from(contents) : contents);
  } finally {
    closeSync(fd);
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    // ENOTDIR: a file stands where a folder of the path should be; checkWritableParent names it.
    if (
      (error as NodeJS.ErrnoException).code === 'ENOENT' ||
      (error as NodeJS.ErrnoException).code === 'ENOTDIR'
    )
      return undefined;
    throw new InputError(`Cannot use '${path}': ${(error as Error).message}.`);
  }
}

function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFile()) return 'a file';
  return 'a device, pipe or socket';
}

/** Only a regular file (or nothing) at `path` may be replaced. */
function refuseNonRegular(path: string, flag: string): void {
  const stats = lstatOrUndefined(path);
  if (stats && !stats.isFile()) {
    const hint = flag === '--json' ? ' (--json - writes to standard output)' : '';
    throw new InputError(
      `${flag} '${path}' is ${kindOf(stats)}: teardown replaces only regular files, never a link, folder or device${hint}. Give a file name.`,
    );
  }
}

/** The nearest existing folder above `path` is a folder this process may create entries in. */
function checkWritableParent(path: string, flag: string): void {
  let parent = dirname(resolve(path));
  while (!existsSync(parent)) parent = dirname(parent);
  if (!statSync(parent).isDirectory())
    throw new InputError(`${flag} '${path}': '${parent}' is a file, not a folder.`);
  checkWritable(parent, flag, path);
}

function checkWritable(dir: string, flag: string, path: string): void {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    probeFolder(dir);
  } catch (error) {
    throw new InputError(
      `${flag} '${path}': cannot write in '${dir}' (${(error as NodeJS.ErrnoException).code}): choose a writable place.`,
    );
  }
}

/**
 * Makes and removes an empty folder in `dir`: access() answers yes for root in /proc, where
 * nothing can be made (mkdir fails with ENOENT), and on some network file systems.
 */
function probeFolder(dir: string): void {
  const probe = join(dir, `${PREFIX}tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
  mkdirSync(probe);
  rmSync(probe, { recursive: true, force: true });
}

/**
 * `mkdir -p dir`, one folder at a time, failing as an InputError that names the folder. Node 20's
 * recursive mkdirSync never returns under /proc (mkdir of the child fails with ENOENT, of the
 * parent with EEXIST, and it tries the child again), and under a symbolic link to nothing it
 * throws a bare ENOENT.
 */
export function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let path = resolve(dir); !existsSync(path); path = dirname(path)) {
    missing.unshift(path);
    if (dirname(path) === path) break;
  }
  for (const path of missing) {
    try {
      mkdirSync(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(path, { throwIfNoEntry: false })?.isDirectory()) continue; // made meanwhile
      const what =
        code === 'EEXIST'
          ? 'something that is not a folder (a file, or a link to nothing) is there'
          : `${code}`;
      throw new InputError(
        `Cannot make the folder '${path}' (${what}): choose a writable place for the output.`,
      );
    }
  }
}

/** A folder on another file system than its parent (a Docker volume, a mounted disk): it cannot be renamed. */
function isMountPoint(dir: string): boolean {
  const absolute = resolve(dir);
  const parent = dirname(absolute);
  return parent !== absolute && statSync(absolute).dev !== statSync(parent).dev;
}
