/**
 * The exit-code contract (docs/errors.md) through `main(argv, io)`: 1 for a bug in teardown with
 * "please report it" and the stack only with --verbose, 2 for a refusal of the system (errno) or a
 * place where no output folder can be made, the streams of concurrent calls kept apart, and checks
 * teardown runs on graphs it built reported as its own bugs, not the user's model.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkGradientGraph } from '../src/autodiff/spec.ts';
import { main } from '../src/cli/main.ts';
import { terminalSafe } from '../src/cli/io.ts';
import { InternalError, UserError } from '../src/errors.ts';
import { GraphBuilder } from '../src/graph/builder.ts';
import { fixtureDir } from './helpers.ts';
import { tempDir } from './model-files.ts';

const MODEL = join(fixtureDir('mlp'), 'model.onnx');
const INPUT = `input=${join(fixtureDir('mlp'), 'input.npy')}`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STACK_FRAME = /^\s+at .*:\d+:\d+\)?$/m;

/** Streams that collect text, or whose standard output throws `failure` on the first write. */
function streams(failure?: Error) {
  const text = { stdout: '', stderr: '' };
  const io = {
    stdout: {
      write: (chunk: string) => {
        if (failure) throw failure;
        text.stdout += chunk;
      },
    },
    stderr: {
      write: (chunk: string) => {
        text.stderr += chunk;
      },
    },
  };
  return { io, text };
}

describe('exit codes through main(argv, io)', () => {
  it('1 for a bug in teardown: "please report it", the message, and the stack only with --verbose', async () => {
    // An Error thrown where teardown prints stands for any bug: nothing about the input is wrong.
    const plain = streams(new Error('a bug of teardown'));
    assert.equal(await main(['hooks', MODEL], plain.io), 1);
    assert.match(
      plain.text.stderr,
      /^teardown: internal error \(please report it, with the command line\): a bug of teardown\n\(run again with --verbose for the stack trace\)\n$/,
    );
    assert.doesNotMatch(plain.text.stderr, STACK_FRAME);

    const verbose = streams(new Error('a bug of teardown'));
    assert.equal(await main(['hooks', MODEL, '--verbose'], verbose.io), 1);
    assert.match(verbose.text.stderr, /please report it/);
    assert.match(verbose.text.stderr, STACK_FRAME);
  });

  it('2 when the system refuses (a full disk): its code, the path and what to do, no stack', async () => {
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      syscall: 'write',
      path: '/data/out.json',
    });
    const { io, text } = streams(full);
    assert.equal(await main(['hooks', MODEL], io), 2);
    assert.equal(
      text.stderr,
      "teardown: The system refused to write '/data/out.json' (ENOSPC): free some disk space.\n",
    );
  });

  it(
    '2, not exit 1 with a bare ENOENT, for --out under a symbolic link to nothing',
    { timeout: 30_000 },
    async () => {
      const dir = tempDir();
      try {
        symlinkSync(join(dir, 'gone'), join(dir, 'dangling'));
        const { io, text } = streams();
        assert.equal(
          await main(
            ['run', MODEL, '--input', INPUT, '--out', join(dir, 'dangling', 'out'), '--quiet'],
            io,
          ),
          2,
          text.stderr,
        );
        assert.match(
          text.stderr,
          /^teardown: Cannot make the folder '.*dangling' \(something that is not a folder \(a file, or a link to nothing\) is there\)/,
        );
        assert.equal(existsSync(join(dir, 'gone')), false);
        assert.deepEqual(readdirSync(dir), ['dangling']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('concurrent calls keep their own streams and --quiet/--json - routing', async () => {
    const loud = streams();
    const quiet = streams();
    const json = streams();
    const codes = await Promise.all([
      main(['hooks', MODEL], loud.io),
      main(['hooks', MODEL, '--quiet'], quiet.io),
      main(['hooks', MODEL, '--json', '-'], json.io),
    ]);
    assert.deepEqual(codes, [0, 0, 0]);
    assert.match(loud.text.stdout, /^.*model\.onnx: inputs 'input' float32 \[batch, 20\]/);
    assert.equal(quiet.text.stdout + quiet.text.stderr, '');
    assert.equal(JSON.parse(json.text.stdout).command, 'hooks');
    assert.deepEqual(JSON.parse(json.text.stdout).provenance.commandLine, [
      'hooks',
      MODEL,
      '--json',
      '-',
    ]);
    assert.match(json.text.stderr, /inputs 'input' float32/); // the text moves to standard error
  });

  it('--version and --help write to the io given and return 0; a bad flag returns 2', async () => {
    const version = streams();
    assert.equal(await main(['--version'], version.io), 0);
    assert.match(version.text.stdout, /^\d+\.\d+\.\d+\n$/);
    const help = streams();
    assert.equal(await main(['run', '--help'], help.io), 0);
    assert.match(help.text.stdout, /^Usage: teardown run/);
    const bad = streams();
    assert.equal(await main(['hooks', MODEL, '--no-such-flag'], bad.io), 2);
    assert.match(bad.text.stderr, /unknown option '--no-such-flag'/);
  });
});

describe('the teardown process (cli/bin.ts)', () => {
  it('reports an error thrown outside the command (a timer) as main does: exit 1, no stack without --verbose', () => {
    const dir = tempDir();
    try {
      const script = join(dir, 'late.mts');
      const bin = new URL('../src/cli/bin.ts', import.meta.url).href;
      writeFileSync(
        script,
        `setTimeout(() => { throw new Error('late failure'); }, 200);\nawait import(${JSON.stringify(bin)});\nawait new Promise((resolve) => setTimeout(resolve, 2000));\n`,
      );
      const run = spawnSync(process.execPath, ['--import', 'tsx', script, '--version'], {
        encoding: 'utf8',
        cwd: ROOT,
      });
      assert.equal(run.status, 1, run.stderr);
      assert.equal(
        run.stderr,
        'teardown: internal error (please report it, with the command line): late failure\n(run again with --verbose for the stack trace)\n',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('faults of graphs teardown built are its own (InternalError, exit 1)', () => {
  it('a gradient graph that reads an undefined value fails as InternalError, without "re-export the model"', () => {
    const g = new GraphBuilder('gradient', 17);
    const x = g.input('x', 'float32', [2]);
    g.output(g.node('Add', [x, 'never_defined'], {}, '/grad/Add'), 'float32');
    const built = g.build();
    assert.throws(
      () => checkGradientGraph(built, g.nodes),
      (error: unknown) => {
        assert.ok(error instanceof InternalError && !(error instanceof UserError), String(error));
        assert.match(
          error.message,
          /^teardown built the gradient graph wrongly: .*'never_defined'/,
        );
        assert.doesNotMatch(error.message, /re-export/i);
        return true;
      },
    );
  });
});

describe('terminalSafe', () => {
  it('escapes C0 (but tab and newline), DEL and C1 controls, and keeps everything else', () => {
    assert.equal(
      terminalSafe('a\x1b[31mred\x1b[0m\tb\nc\rd\x07\x7f\x9b\u00e9\u2603'),
      'a\\x1b[31mred\\x1b[0m\tb\nc\\x0dd\\x07\\x7f\\x9b\u00e9\u2603',
    );
  });
});
