/**
 * Outputs whole or absent (issue 14; docs/errors.md): outputs checked before any work, result
 * folders replaced whole (or refused when teardown did not write them), no staging or temporary
 * left by errors, Ctrl-C or SIGTERM, stale ones of killed runs removed, temporaries never
 * following a planted link, value names too long for a file system shortened.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeFileName, StagedFolder, writeFileAtomic } from '../src/files.ts';
import { NpyWriter, readNpy } from '../src/data/npy.ts';
import { tensor } from '../src/tensor.ts';
import { fixtureDir } from './helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin/teardown.js');
const mlp = fixtureDir('mlp');
const runArgs = ['run', `${mlp}/model.onnx`, '--input', `input=${mlp}/input.npy`, '--quiet'];

function teardown(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

function assertRefused(result: { status: number | null; stderr: string }, message: RegExp): void {
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, message);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

/** Names teardown's temporaries and staging folders take (and the older `.NAME.PID.staging`). */
const leftovers = (dir: string) =>
  readdirSync(dir).filter((name) => /^\.teardown-(tmp|staging|old)-|\.staging$|\.tmp$/.test(name));

describe('outputs are checked before any work (exit 2, no stack)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'teardown-outputs-'));
    writeFileSync(join(dir, 'a-file'), 'x');
    mkdirSync(join(dir, 'a-folder'));
  });

  it('--json naming a folder, before run writes its outputs', () => {
    assertRefused(
      teardown([...runArgs, '--out', 'out', '--json', 'a-folder'], dir),
      /--json 'a-folder' is a folder: .*--json - writes to standard output/,
    );
    assert.ok(!existsSync(join(dir, 'out')), 'run wrote nothing');
  });

  it('--json naming a symbolic link (as /dev/stdout is) is refused; the link and its target stay', () => {
    symlinkSync(join(dir, 'a-file'), join(dir, 'link.json'));
    assertRefused(
      teardown([...runArgs, '--out', 'out', '--json', 'link.json'], dir),
      /--json 'link\.json' is a symbolic link/,
    );
    assert.equal(readFileSync(join(dir, 'a-file'), 'utf8'), 'x');
  });

  it('--out naming a file, or under a file', () => {
    assertRefused(
      teardown([...runArgs, '--out', 'a-file'], dir),
      /--out 'a-file' is a file, not a folder/,
    );
    assertRefused(
      teardown([...runArgs, '--out', 'a-file/out'], dir),
      /--out 'a-file\/out': '.*a-file' is a file, not a folder/,
    );
    assertRefused(
      teardown(
        [
          'train',
          '--task',
          `npy:${mlp}/input.npy,${mlp}/target.npy`,
          '--model',
          'mlp:hidden=4',
          '--steps',
          '1',
          '--out',
          'a-file/model.onnx',
        ],
        dir,
      ),
      /is a file, not a folder/,
    );
  });
});

describe('an output in a folder that cannot be written in is refused before any work', () => {
  it('--out and --json under a read-only file system (a tmpfs mounted ro; as root, permissions alone do not stop a write)', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'teardown-read-only-'));
    const mount = join(dir, 'ro');
    mkdirSync(mount);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'tmpfs', mount], {
      encoding: 'utf8',
    });
    if (mounted.status !== 0)
      return t.skip(
        `cannot mount a read-only tmpfs here (${(mounted.stderr || mounted.error?.message || '').trim()})`,
      );
    try {
      assertRefused(
        teardown([...runArgs, '--out', 'ro/out'], dir),
        /--out 'ro\/out': cannot write in '.*ro' \(EROFS\)/,
      );
      assertRefused(
        teardown([...runArgs, '--out', 'out', '--json', 'ro/run.json'], dir),
        /--json 'ro\/run\.json': cannot write in '.*ro' \(EROFS\)/,
      );
      assert.ok(!existsSync(join(dir, 'out')), 'run wrote nothing');
    } finally {
      spawnSync('umount', [mount]);
    }
  });
});

describe('a result folder is replaced whole, or refused', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'teardown-replace-'));
  });

  it('running again into a teardown folder replaces it: no stale hooks beside the new index.json', () => {
    assert.equal(teardown([...runArgs, '--cache', 'act1', '--out', 'out'], dir).status, 0);
    assert.ok(existsSync(join(dir, 'out', 'hooks')));
    const again = teardown([...runArgs, '--out', 'out'], dir);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(readdirSync(join(dir, 'out')).sort(), [
      '.teardown-output',
      'index.json',
      'outputs',
    ]);
    assert.deepEqual(leftovers(dir), []);
  });

  it('a folder teardown did not write is refused and left as it was', () => {
    mkdirSync(join(dir, 'mine'));
    writeFileSync(join(dir, 'mine', 'notes.txt'), 'keep');
    assertRefused(
      teardown([...runArgs, '--out', 'mine'], dir),
      /--out 'mine' is a folder teardown did not write \(it holds 'notes\.txt'\)/,
    );
    assert.deepEqual(readdirSync(join(dir, 'mine')), ['notes.txt']);
  });

  it('a mount point (another file system) is written inside itself, not staged in its parent (EXDEV)', (t) => {
    const mount = join(dir, 'volume');
    mkdirSync(mount);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', mount], { encoding: 'utf8' });
    if (mounted.status !== 0)
      return t.skip(
        `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || '').trim()})`,
      );
    try {
      const first = teardown([...runArgs, '--cache', 'act1', '--out', 'volume'], dir);
      assert.equal(first.status, 0, first.stderr);
      const second = teardown([...runArgs, '--out', 'volume'], dir);
      assert.equal(second.status, 0, second.stderr);
      assert.deepEqual(readdirSync(mount).sort(), ['.teardown-output', 'index.json', 'outputs']);
    } finally {
      spawnSync('umount', [mount]);
    }
  });
});

describe('nothing is left behind', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'teardown-leftovers-'));
  });

  /** A child process that stages a folder, writes into it, then receives `signal` before committing. */
  function killedWhileStaging(signal: NodeJS.Signals, out: string) {
    const script = join(dir, `stage-${signal}.ts`);
    writeFileSync(
      script,
      `import { StagedFolder } from ${JSON.stringify(join(ROOT, 'src/files.ts'))};
const folder = new StagedFolder(${JSON.stringify(out)});
folder.write('big.bin', new Uint8Array(1 << 20));
process.kill(process.pid, ${JSON.stringify(signal)});
setTimeout(() => folder.commit(), 5000);
`,
    );
    return spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} while a folder is staged leaves no staging folder, and the process dies of the signal`, () => {
      const result = killedWhileStaging(signal, join(dir, `out-${signal}`));
      assert.equal(result.signal, signal, result.stderr);
      assert.deepEqual(leftovers(dir), []);
      assert.ok(!existsSync(join(dir, `out-${signal}`)));
    });
  }

  it("a killed run's stale staging folder (its process gone) is removed at the next run; a live one is kept", () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.pid']).pid!;
    const stale = join(dir, `.teardown-staging-${gone}-0123abcd`);
    const live = join(dir, `.teardown-staging-${process.pid === 1 ? 2 : 1}-0123abcd`); // pid 1 (init) always runs
    const staleOfOlderVersion = join(dir, `.next.${gone}.staging`);
    mkdirSync(stale);
    mkdirSync(staleOfOlderVersion);
    mkdirSync(live);
    const folder = new StagedFolder(join(dir, 'next'));
    folder.write('a.txt', 'a');
    folder.commit();
    assert.ok(!existsSync(stale), 'stale staging removed');
    assert.ok(!existsSync(staleOfOlderVersion), "an older version's stale staging removed");
    assert.ok(existsSync(live), 'staging of a running process kept');
    rmSync(live, { recursive: true });
  });

  it('an error while staging leaves nothing: abandon removes the staging folder', () => {
    const folder = new StagedFolder(join(dir, 'failed'));
    folder.write('a.txt', 'a');
    folder.abandon();
    assert.deepEqual(leftovers(dir), []);
    assert.ok(!existsSync(join(dir, 'failed')));
  });
});

describe('the atomic writer', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'teardown-atomic-'));
  });

  it('never follows a link planted at the old predictable temporary name', () => {
    writeFileSync(join(dir, 'victim'), 'untouched');
    symlinkSync(join(dir, 'victim'), join(dir, `.result.json.${process.pid}.tmp`));
    writeFileAtomic(join(dir, 'result.json'), '{"ok": true}');
    assert.equal(readFileSync(join(dir, 'victim'), 'utf8'), 'untouched');
    assert.equal(readFileSync(join(dir, 'result.json'), 'utf8'), '{"ok": true}');
  });

  it('refuses to replace a symbolic link or a folder', () => {
    symlinkSync(join(dir, 'victim'), join(dir, 'link.json'));
    assert.throws(
      () => writeFileAtomic(join(dir, 'link.json'), 'x'),
      /is a symbolic link: teardown replaces only regular files/,
    );
    assert.equal(readFileSync(join(dir, 'victim'), 'utf8'), 'untouched');
    assert.throws(() => writeFileAtomic(dir, 'x'), /is a folder/);
  });
});

describe('value names longer than a file system allows', () => {
  const long = `/encoder/${'layer_with_a_very_long_name.'.repeat(11)}output_0`; // 325 characters

  it('are shortened with a hash: at most 200 bytes, distinct for names that differ only at the end', () => {
    const a = escapeFileName(`${long}a`);
    const b = escapeFileName(`${long}b`);
    assert.ok(a.length <= 200 && b.length <= 200, `${a.length}, ${b.length}`);
    assert.notEqual(a, b);
    assert.match(a, /^%2Fencoder%2Flayer_with_a_very_long_name\..*~[0-9a-f]{16}$/);
  });

  it('stream into a staged folder as .npy files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'teardown-long-'));
    const folder = new StagedFolder(join(dir, 'out'));
    const writer = new NpyWriter(folder.pathOf(`hooks/${escapeFileName(long)}.npy`));
    writer.append(tensor('float32', [2, 3], [1, 2, 3, 4, 5, 6]));
    writer.close();
    folder.commit();
    assert.deepEqual(
      Array.from(
        readNpy(join(dir, 'out', 'hooks', `${escapeFileName(long)}.npy`)).data as Float32Array,
      ),
      [1, 2, 3, 4, 5, 6],
    );
  });

  it('a name too long to write fails with its error, and the clean-up does not throw', () => {
    const dir = mkdtempSync(join(tmpdir(), 'teardown-too-long-'));
    const writer = new NpyWriter(join(dir, `${'x'.repeat(300)}.npy`));
    writer.append(tensor('float32', [1, 1], [1]));
    assert.throws(() => writer.close(), /ENAMETOOLONG/);
    assert.doesNotThrow(() => writer.abandon());
    assert.deepEqual(readdirSync(dir), []);
  });
});
