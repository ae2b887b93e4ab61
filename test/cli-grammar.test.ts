/**
 * The grammar's behaviour end to end, through bin/teardown.js: --json - on standard output with
 * the text on standard error, --quiet, numbers refused before any work, train's deprecated --batch,
 * progress lines in a pipe.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const MODEL = fileURLToPath(new URL('../examples/mnist-mlp.onnx', import.meta.url));

function teardown(args: string[], env: Record<string, string> = {}) {
  const cwd = mkdtempSync(join(tmpdir(), 'teardown-grammar-'));
  const result = spawnSync(process.execPath, [BIN, ...args, '--threads', '1'], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, cwd };
}

describe('command-line grammar, end to end', () => {
  it('--json - writes only the JSON to standard output and the text to standard error', () => {
    const { status, stdout, stderr } = teardown(['hooks', MODEL, '--modules', '--json', '-']);
    assert.equal(status, 0, stderr);
    const result = JSON.parse(stdout);
    assert.equal(result.command, 'hooks');
    assert.ok(result.hooks.some((hook: { name: string }) => hook.name === 'act1'));
    assert.match(stderr, /Module hooks \(5\)/);
  });

  it('--quiet prints nothing, and still writes the JSON file', () => {
    const { status, stdout, stderr, cwd } = teardown([
      'hooks',
      MODEL,
      '--quiet',
      '--json',
      'hooks.json',
    ]);
    assert.equal(status, 0, stderr);
    assert.equal(stdout, '');
    assert.equal(stderr, '');
    assert.ok(existsSync(join(cwd, 'hooks.json')));
  });

  it('a word where a number belongs is refused with exit status 2, before any work', () => {
    const { status, stderr, cwd } = teardown([
      'run',
      MODEL,
      '--input',
      'input=missing.npy',
      '--out',
      'out',
      '--batch-size',
      'many',
    ]);
    assert.equal(status, 2);
    assert.match(stderr, /^teardown: --batch-size expects a positive integer, got 'many'\.\n$/);
    assert.ok(!existsSync(join(cwd, 'out')));
  });

  it("train's --batch still works, says it is deprecated, and may not be given with --batch-size", () => {
    const flags = [
      'train',
      '--task',
      'mnist',
      '--model',
      'mlp:hidden=8',
      '--steps',
      '2',
      '--out',
      'm.onnx',
      '--json',
      '-',
    ];
    const old = teardown([...flags, '--batch', '16']);
    assert.equal(old.status, 0, old.stderr);
    assert.match(old.stderr, /--batch is deprecated; use --batch-size/);
    assert.equal(JSON.parse(old.stdout).spec.batch, 16);
    const both = teardown([...flags, '--batch', '16', '--batch-size', '8']);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--batch is the older name of --batch-size/);
  });

  it('grad takes --labels, and --target as its older name', () => {
    const fixture = fileURLToPath(new URL('./fixtures/mlp/', import.meta.url));
    const args = [
      'grad',
      join(fixture, 'model.onnx'),
      '--input',
      `input=${join(fixture, 'input.npy')}`,
      '--out',
      'g',
      '--json',
      '-',
    ];
    const labels = teardown([...args, '--labels', join(fixture, 'target.npy')]);
    const target = teardown([...args, '--target', join(fixture, 'target.npy')]);
    assert.equal(labels.status, 0, labels.stderr);
    assert.equal(target.status, 0, target.stderr);
    assert.equal(JSON.parse(labels.stdout).loss.value, JSON.parse(target.stdout).loss.value);
  });

  it('a command run again into its own --out folder replaces it; a folder it did not write is refused', () => {
    const { status, stderr, cwd } = teardown([
      'data',
      'modular-addition',
      '--modulus',
      '7',
      '--out',
      'd',
    ]);
    assert.equal(status, 0, stderr);
    const again = spawnSync(
      process.execPath,
      [BIN, 'data', 'modular-addition', '--modulus', '7', '--out', 'd'],
      { cwd, encoding: 'utf8' },
    );
    assert.equal(again.status, 0, again.stderr); // refused before: the marker was filtered out with the temporaries
    const foreign = spawnSync(
      process.execPath,
      [BIN, 'data', 'modular-addition', '--modulus', '7', '--out', '.'],
      { cwd, encoding: 'utf8' },
    );
    assert.equal(foreign.status, 2);
    assert.match(foreign.stderr, /is a folder teardown did not write/);
  });

  it('progress in a pipe: lines on standard error with the rate and the time left', () => {
    const { status, stderr } = teardown(
      [
        'train',
        '--task',
        'mnist',
        '--model',
        'mlp:hidden=8',
        '--steps',
        '40',
        '--batch-size',
        '32',
        '--eval-every',
        '1000',
        '--out',
        'm.onnx',
      ],
      { TEARDOWN_PROGRESS_SECONDS: '0' },
    );
    assert.equal(status, 0, stderr);
    const lines = stderr.split('\n').filter((line) => line.startsWith('train ['));
    assert.ok(lines.length >= 2, stderr);
    assert.match(
      lines[1],
      /^train \[[#.]{20}\] \d+\/40 [\d.]+\/s (\d+ h )?(\d+ min )?[\d.]+ (s|min) left/,
    ); // a loaded machine may show minutes
    assert.match(lines.at(-1)!, /40\/40 .*done in/);
  });
});
