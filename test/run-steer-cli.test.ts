/**
 * `teardown run --add` and `--project-out` end to end, and `--data` on run, grad and hooks, on a
 * hand-built linear model whose outputs are computed by hand: h = x·W + b, y = h·U with
 * x [batch, seq, 4]. Adding s·v at positions P gives y' = y + s·(v·U) at P and y elsewhere;
 * projecting out d̂ = d/|d| gives y' = (h − (h·d̂)d̂)·U.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { GraphBuilder } from '../src/graph/builder.ts';
import { floatTensor, type Tensor } from '../src/tensor.ts';
import { tempDir, writeModel } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const [batch, seq, width, classes] = [2, 3, 4, 2];
const W = [0.5, -1, 0.25, 2, 1, 0, -0.5, 0.3, -0.2, 0.7, 1.5, 0, 0.1, 0.9, -1.1, 0.4];
const b = [0.1, -0.2, 0.3, 0];
const U = [1, -1, 0.5, 2, -0.3, 0.8, 1.2, 0.1];
const x = floatTensor(
  [batch, seq, width],
  Array.from({ length: batch * seq * width }, (_, i) => Math.sin(1.7 * i) * 2),
);
const v = [1.5, -2, 0.5, 3];
const d = [2, 1, -1, 0.5];

function linearModel(dir: string, inputs = 1): string {
  const g = new GraphBuilder('linear', 17);
  const input = g.input('x', 'float32', ['batch', seq, width]);
  let product = g.node('MatMul', [input, g.initializer('W', floatTensor([width, width], W))]);
  // A second input (added to x·W) makes the two-input model that --data must refuse.
  if (inputs === 2)
    product = g.node('Add', [product, g.input('offset', 'float32', ['batch', seq, width])]);
  g.node('Add', [product, g.initializer('b', floatTensor([width], b))], {}, '/h', 'h');
  g.node('MatMul', ['h', g.initializer('U', floatTensor([width, classes], U))], {}, '/y', 'y');
  g.output('y', 'float32');
  return writeModel(dir, inputs === 2 ? 'two-inputs.onnx' : 'linear.onnx', g.build());
}

/** h by hand in float64, one row of `width` per (example, position). */
const hRows = () =>
  Array.from({ length: batch * seq }, (_, row) =>
    Array.from({ length: width }, (_, j) => {
      let sum = b[j];
      for (let i = 0; i < width; i++) sum += Number(x.data[row * width + i]) * W[i * width + j];
      return sum;
    }),
  );
const yOf = (h: number[]) =>
  Array.from({ length: classes }, (_, c) =>
    h.reduce((sum, value, j) => sum + value * U[j * classes + c], 0),
  );
const dot = (a: number[], e: number[]) => a.reduce((sum, value, j) => sum + value * e[j], 0);

function assertRows(actual: Tensor, expected: number[][]): void {
  const flat = expected.flat();
  assert.deepEqual(actual.dims, [batch, seq, classes]);
  flat.forEach((value, i) =>
    assert.ok(
      Math.abs(Number(actual.data[i]) - value) <= 1e-5,
      `element ${i}: ${actual.data[i]} vs ${value}`,
    ),
  );
}

function teardown(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function setUp(): string {
  const dir = tempDir();
  linearModel(dir);
  writeFileSync(join(dir, 'x.npy'), encodeNpy(x));
  writeFileSync(join(dir, 'v.npy'), encodeNpy(floatTensor([width], v)));
  writeFileSync(join(dir, 'd.npy'), encodeNpy(floatTensor([1, width], d)));
  return dir;
}

describe('teardown run --add and --project-out (hand-computed)', () => {
  const dir = setUp();

  it('--add scales the vector and adds it at the chosen position only: y + 2·(v·U) at the last', () => {
    const run = teardown(
      [
        'run',
        'linear.onnx',
        '--data',
        'x.npy',
        '--add',
        'h vector=v.npy scale=2 positions=-1',
        '--out',
        'add',
        '--json',
        'add.json',
      ],
      dir,
    );
    assert.equal(run.status, 0, run.stderr);
    const expected = hRows().map((h, row) =>
      yOf(row % seq === seq - 1 ? h.map((value, j) => value + 2 * v[j]) : h),
    );
    assertRows(readNpy(join(dir, 'add/outputs/y.npy')), expected);
    const [intervention] = JSON.parse(readFileSync(join(dir, 'add.json'), 'utf8')).interventions;
    assert.deepEqual(
      { kind: intervention.kind, vector: intervention.vector, scale: intervention.scale },
      { kind: 'add', vector: 'v.npy', scale: 2 },
    );
  });

  it('--project-out removes the direction at every position: (h − (h·d̂)d̂)·U', () => {
    const run = teardown(
      [
        'run',
        'linear.onnx',
        '--input',
        'x=x.npy',
        '--project-out',
        'h direction=d.npy',
        '--out',
        'project',
      ],
      dir,
    );
    assert.equal(run.status, 0, run.stderr);
    const dHat = d.map((value) => value / Math.hypot(...d));
    assertRows(
      readNpy(join(dir, 'project/outputs/y.npy')),
      hRows().map((h) => yOf(h.map((value, j) => value - dot(h, dHat) * dHat[j]))),
    );
  });

  it('an --interventions file takes add and project-out too, paths relative to it, applied in order', () => {
    mkdirSync(join(dir, 'spec'));
    writeFileSync(join(dir, 'spec/d.npy'), encodeNpy(floatTensor([width], d)));
    writeFileSync(
      join(dir, 'spec/iv.json'),
      JSON.stringify([
        { kind: 'add', hook: 'h', vector: v, scale: 2, positions: [0] },
        { kind: 'project-out', hook: 'h', direction: 'd.npy' },
      ]),
    );
    const run = teardown(
      ['run', 'linear.onnx', '--data', 'x.npy', '--interventions', 'spec/iv.json', '--out', 'file'],
      dir,
    );
    assert.equal(run.status, 0, run.stderr);
    const dHat = d.map((value) => value / Math.hypot(...d));
    const expected = hRows().map((h, row) => {
      const added = row % seq === 0 ? h.map((value, j) => value + 2 * v[j]) : h;
      return yOf(added.map((value, j) => value - dot(added, dHat) * dHat[j]));
    });
    assertRows(readNpy(join(dir, 'file/outputs/y.npy')), expected);
  });

  it('a vector of the wrong length, units on project-out and a missing vector are refused with exit 2', () => {
    writeFileSync(join(dir, 'short.npy'), encodeNpy(floatTensor([3], [1, 2, 3])));
    for (const [flag, spec, message] of [
      ['--add', 'h vector=short.npy', /3 values but the hook has 4 units/],
      ['--project-out', 'h direction=d.npy units=0', /takes no units/],
      ['--add', 'h scale=2', /needs vector=FILE\.npy/],
    ] as const) {
      const run = teardown(
        ['run', 'linear.onnx', '--data', 'x.npy', flag, spec, '--out', 'refused'],
        dir,
      );
      assert.equal(run.status, 2, `${flag} '${spec}': ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});

describe('--data on run, grad and hooks (one-input models)', () => {
  const dir = setUp();

  it('run --data gives the plain run by hand, the same as --input x=FILE', () => {
    for (const [out, flags] of [
      ['by-data', ['--data', 'x.npy']],
      ['by-input', ['--input', 'x=x.npy']],
    ] as const) {
      const run = teardown(['run', 'linear.onnx', ...flags, '--out', out], dir);
      assert.equal(run.status, 0, run.stderr);
      assertRows(readNpy(join(dir, out, 'outputs/y.npy')), hRows().map(yOf));
    }
  });

  it('grad --data: the mse gradient with respect to the input, 2·(y − t)·Uᵀ·Wᵀ / n', () => {
    const target = floatTensor(
      [batch, seq, classes],
      Array.from({ length: batch * seq * classes }, (_, i) => (i % 3) - 1),
    );
    writeFileSync(join(dir, 't.npy'), encodeNpy(target));
    const run = teardown(
      [
        'grad',
        'linear.onnx',
        '--data',
        'x.npy',
        '--labels',
        't.npy',
        '--loss',
        'mse',
        '--wrt',
        'input',
        '--out',
        'grads',
      ],
      dir,
    );
    assert.equal(run.status, 0, run.stderr);
    const n = batch * seq * classes;
    const expected = hRows().flatMap((h, row) => {
      const dy = yOf(h).map((y, c) => (2 * (y - Number(target.data[row * classes + c]))) / n);
      const dh = Array.from({ length: width }, (_, j) =>
        dy.reduce((sum, g, c) => sum + g * U[j * classes + c], 0),
      );
      return Array.from({ length: width }, (_, i) =>
        dh.reduce((sum, g, j) => sum + g * W[i * width + j], 0),
      );
    });
    const index = JSON.parse(readFileSync(join(dir, 'grads/index.json'), 'utf8'));
    const gradient = readNpy(join(dir, 'grads', index.gradients.x.file));
    expected.forEach((value, i) =>
      assert.ok(
        Math.abs(Number(gradient.data[i]) - value) <= 1e-5,
        `element ${i}: ${gradient.data[i]} vs ${value}`,
      ),
    );
  });

  it('hooks --data probes with the file, as --input does', () => {
    const listings = [
      ['--data', 'x.npy'],
      ['--input', 'x=x.npy'],
    ].map((flags) => {
      const run = teardown(['hooks', 'linear.onnx', ...flags, '--json', '-', '--quiet'], dir);
      assert.equal(run.status, 0, run.stderr);
      return JSON.parse(run.stdout).hooks;
    });
    assert.ok(
      listings[0].some(
        (hook: { name: string; shape: unknown[] }) => hook.name === 'h' && hook.shape[2] === width,
      ),
    );
    assert.deepEqual(listings[0], listings[1]);
  });

  it('--data on a two-input model, --data with --input, and neither are refused with exit 2', () => {
    linearModel(dir, 2);
    for (const [args, message] of [
      [
        ['run', 'two-inputs.onnx', '--data', 'x.npy', '--out', 'o1'],
        /--data feeds a one-input model; .* has 2 inputs/,
      ],
      [
        [
          'grad',
          'linear.onnx',
          '--data',
          'x.npy',
          '--input',
          'x=x.npy',
          '--labels',
          'x.npy',
          '--out',
          'o2',
        ],
        /not both/,
      ],
      [
        ['run', 'linear.onnx', '--out', 'o3'],
        /Give the examples with --data FILE\.npy or --input NAME=FILE\.npy/,
      ],
    ] as const) {
      const run = teardown([...args], dir);
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });
});
