/**
 * The hostile corpus (test/hostile/): every case of cases.json run through `main(argv, io)` in this
 * process, checked for its exit status and message, and for what no case may do: print a stack
 * trace or a raw control character, leave anything in its output folder (unless it succeeds and
 * names what it writes), or write among the hostile files. The files are checked to be what
 * test/hostile/make.ts writes, so the corpus and its generator cannot drift apart.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.ts';
import { HOSTILE_DIR, hostileFiles } from './hostile/make.ts';
import { tempDir } from './model-files.ts';

interface HostileCase {
  name: string;
  argv: string[];
  exit: number;
  stderr?: string;
  stdout?: string;
  /** Entries of $OUT a successful case writes. */
  writes?: string[];
  /** A path the machine must have for the case to mean anything (/proc). */
  needs?: string;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures');
const BIN = join(ROOT, 'bin/teardown.js');
const HOSTILE = HOSTILE_DIR.replace(/\/$/, '');
const { cases } = JSON.parse(readFileSync(join(ROOT, 'test/hostile/cases.json'), 'utf8')) as {
  cases: HostileCase[];
};

/** A stack frame as V8 prints it: '    at f (file.ts:12:5)' or '    at file.ts:12:5'. */
const STACK_FRAME = /^\s+at .*:\d+:\d+\)?$/m;
/** C0 controls but tab and newline, DEL and C1: what an escape sequence or a CR needs. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

function substitute(arg: string, out: string): string {
  return arg.replaceAll('$H', HOSTILE).replaceAll('$FIX', FIXTURES).replaceAll('$OUT', out);
}

async function runInProcess(
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: {
      write: (text: string) => {
        stdout += text;
      },
    },
    stderr: {
      write: (text: string) => {
        stderr += text;
      },
    },
  });
  return { code, stdout, stderr };
}

describe('hostile corpus', () => {
  it('test/hostile/files holds exactly what make.ts writes, under 200 KB', () => {
    const expected = hostileFiles();
    assert.deepEqual(readdirSync(HOSTILE).sort(), [...expected.keys()].sort());
    let total = 0;
    for (const [name, bytes] of expected) {
      const committed = readFileSync(join(HOSTILE, name));
      total += committed.length;
      assert.ok(
        Buffer.from(bytes).equals(committed),
        `${name} differs from make.ts's: run node --import tsx test/hostile/make.ts`,
      );
    }
    assert.ok(total < 200_000, `${total} bytes`);
  });

  for (const hostile of cases) {
    it(`${hostile.name}: exit ${hostile.exit}`, { timeout: 60_000 }, async (t) => {
      if (hostile.needs && !existsSync(hostile.needs))
        return t.skip(`this machine has no ${hostile.needs}`);
      const out = tempDir('teardown-hostile-');
      const before = readdirSync(HOSTILE).sort();
      try {
        const { code, stdout, stderr } = await runInProcess(
          hostile.argv.map((arg) => substitute(arg, out)),
        );
        const shown = `exit ${code}\nstdout: ${stdout.slice(0, 2000)}\nstderr: ${stderr.slice(0, 2000)}`;
        assert.equal(code, hostile.exit, shown);
        if (hostile.stderr) assert.match(stderr, new RegExp(hostile.stderr, 's'), shown);
        if (hostile.stdout) assert.match(stdout, new RegExp(hostile.stdout, 's'), shown);
        assert.doesNotMatch(stdout + stderr, STACK_FRAME, `a stack trace:\n${shown}`);
        assert.doesNotMatch(
          stdout + stderr,
          CONTROL,
          `a raw control character:\n${JSON.stringify(stdout + stderr).slice(0, 2000)}`,
        );
        if (code === 2) assert.match(stderr, /^(teardown: |error: )/, shown);
        assert.doesNotMatch(stderr, /internal error/, shown);
        assert.deepEqual(
          readdirSync(out).sort(),
          [...(code === 0 ? (hostile.writes ?? []) : [])].sort(),
          'what is left in the output folder',
        );
        assert.deepEqual(readdirSync(HOSTILE).sort(), before, 'the hostile files are unchanged');
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }

  it("onnxruntime's own log line is not printed before teardown's message (a separate process: it writes to the process's stderr)", () => {
    const out = tempDir('teardown-hostile-');
    try {
      const run = spawnSync(
        process.execPath,
        [
          BIN,
          'grad',
          join(HOSTILE, 'symbolic-features.onnx'),
          '--input',
          `input=${join(HOSTILE, 'x-21-features.npy')}`,
          '--labels',
          join(HOSTILE, 'labels.npy'),
          '--out',
          join(out, 'grad'),
        ],
        { encoding: 'utf8' },
      );
      assert.equal(run.status, 2, run.stderr);
      assert.equal(run.stderr.split('\n').filter(Boolean).length, 1, `one line: ${run.stderr}`);
      assert.doesNotMatch(run.stderr, /\[E:onnxruntime|\x1b\[/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
