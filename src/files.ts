/** File helpers shared by every writer: nothing is written half-way (temporary file, then rename). */
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { InputError } from './errors.ts';

export function writeFileAtomic(path: string, contents: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, contents);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Fail with a clear message when `path` is not a readable regular file. */
export function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new InputError(`${what} '${path}' does not exist: check the path.`);
  if (!statSync(path).isFile()) throw new InputError(`${what} '${path}' is not a file.`);
}

/**
 * Writes every file of a result folder into a hidden staging folder, then moves them into `dir`
 * only once all were written, so a failure leaves `dir` as it was.
 */
export class StagedFolder {
  private readonly staging: string;
  private readonly names: string[] = [];

  constructor(private readonly dir: string) {
    this.staging = join(dirname(dir), `.${basename(dir)}.${process.pid}.staging`);
    rmSync(this.staging, { recursive: true, force: true });
    mkdirSync(this.staging, { recursive: true });
  }

  /** The staging path of `name` (a relative path; folders are made), for writers that stream. */
  pathOf(name: string): string {
    const path = join(this.staging, name);
    mkdirSync(dirname(path), { recursive: true });
    if (!this.names.includes(name)) this.names.push(name);
    return path;
  }

  write(name: string, contents: Uint8Array | string): void {
    writeFileSync(this.pathOf(name), contents);
  }

  commit(): void {
    for (const name of this.names) {
      mkdirSync(dirname(join(this.dir, name)), { recursive: true });
      renameSync(join(this.staging, name), join(this.dir, name));
    }
    rmSync(this.staging, { recursive: true, force: true });
  }

  abandon(): void {
    rmSync(this.staging, { recursive: true, force: true });
  }
}

/**
 * A file-name-safe, reversible form of a hook or value name: every character outside
 * [A-Za-z0-9_.-] (and a leading '.') becomes %XX of its UTF-8 bytes, as in URLs.
 * '/blocks/blocks.0/Add_output_0' → '%2Fblocks%2Fblocks.0%2FAdd_output_0'.
 */
export function escapeFileName(name: string): string {
  const escaped = [...new TextEncoder().encode(name)]
    .map((byte) => (/[A-Za-z0-9_.-]/.test(String.fromCharCode(byte)) && byte < 128 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
  return escaped.startsWith('.') ? `%2E${escaped.slice(1)}` : escaped || '%00';
}

export function unescapeFileName(escaped: string): string {
  return escaped === '%00' ? '' : decodeURIComponent(escaped);
}
