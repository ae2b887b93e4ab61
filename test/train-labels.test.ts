/**
 * `teardown train --labels FILE` (issue 13's grammar: labels are --labels on every command): an
 * npy:INPUTS.npy task with its labels in a file of their own trains the same model, bit for bit,
 * as npy:INPUTS.npy,LABELS.npy; bad labels given this way are refused by the one label rule
 * (data/validate.ts) with exit 2, and --labels where the task has labels of its own is refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { tensor } from '../src/tensor.ts';
import { fixtureDir } from './helpers.ts';
import { tempDir } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const mlp = fixtureDir('mlp');
const TRAIN = ['--model', 'mlp:hidden=4', '--steps', '3', '--batch-size', '8', '--threads', '1'];

function teardown(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function assertRefused(result: { status: number | null; stderr: string }, message: RegExp): void {
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, message);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

describe('teardown train --labels', () => {
  const dir = tempDir();
  before(() => {
    const labels = Array.from(readNpy(`${mlp}/target.npy`).data as BigInt64Array, Number); // [16]
    writeFileSync(
      join(dir, 'negative.npy'),
      encodeNpy(
        tensor(
          'int64',
          [16],
          labels.map((label, row) => (row === 2 ? -1 : label)),
        ),
      ),
    );
  });

  it('trains npy:INPUTS.npy --labels LABELS.npy into the same bytes as npy:INPUTS.npy,LABELS.npy', () => {
    const separate = teardown(
      [
        'train',
        '--task',
        `npy:${mlp}/input.npy`,
        '--labels',
        `${mlp}/target.npy`,
        ...TRAIN,
        '--out',
        'separate.onnx',
      ],
      dir,
    );
    assert.equal(separate.status, 0, separate.stderr);
    const joined = teardown(
      [
        'train',
        '--task',
        `npy:${mlp}/input.npy,${mlp}/target.npy`,
        ...TRAIN,
        '--out',
        'joined.onnx',
      ],
      dir,
    );
    assert.equal(joined.status, 0, joined.stderr);
    assert.ok(
      readFileSync(join(dir, 'separate.onnx')).equals(readFileSync(join(dir, 'joined.onnx'))),
      'same model, same stored spec',
    );
  });

  it('refuses labels that are not classes with the label rule of every command, naming the file and row', () => {
    const result = teardown(
      [
        'train',
        '--task',
        `npy:${mlp}/input.npy`,
        '--labels',
        'negative.npy',
        ...TRAIN,
        '--out',
        'never.onnx',
      ],
      dir,
    );
    assertRefused(result, /Label -1 \(example 2 of labels 'negative\.npy'\) is not a class/);
  });

  it('refuses an npy: task without labels, and --labels for a task that has its own', () => {
    assertRefused(
      teardown(['train', '--task', `npy:${mlp}/input.npy`, ...TRAIN, '--out', 'never.onnx'], dir),
      /needs the labels of its examples: give --labels LABELS\.npy/,
    );
    assertRefused(
      teardown(
        [
          'train',
          '--task',
          'mnist',
          '--labels',
          `${mlp}/target.npy`,
          ...TRAIN,
          '--out',
          'never.onnx',
        ],
        dir,
      ),
      /task 'mnist' brings its own: drop --labels/,
    );
  });
});
