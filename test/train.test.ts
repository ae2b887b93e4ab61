/**
 * Training end to end: a run is a pure function of its spec (bit-for-bit repeatable with one
 * thread, also across a checkpoint and --resume), trained models reach the accuracies the issue
 * sets on the packaged MNIST digits, ERM on colored-mnist falls for the colour shortcut as in
 * the IRM paper, and bad specs fail with one message and exit 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Model } from '../src/runtime/model.ts';
import { DEFAULT_OPTIMIZER, type TrainSpec } from '../src/train/spec.ts';
import { train, type TrainState } from '../src/train/trainer.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.ts';
import type { ModelProto } from '../src/onnx/proto.ts';
import { tempDir } from './model-files.ts';
import { seededRandom } from '../src/random.ts';

const spec = (overrides: Partial<TrainSpec>): TrainSpec => ({
  task: 'mnist',
  taskOptions: {},
  model: 'mlp:hidden=64',
  optimizer: { ...DEFAULT_OPTIMIZER },
  lr: 1e-3,
  schedule: { warmupSteps: 0, cosine: false },
  steps: 40,
  batch: 32,
  seed: 3,
  evalEvery: 20,
  ...overrides,
});
const runtime = { threads: 1 };
const weights = (proto: ModelProto) =>
  proto.graph.initializer.map((t) => `${t.name}:${Buffer.from(t.rawData!).toString('hex')}`);

describe('training is a pure function of its spec', () => {
  it('the same spec with one thread gives the same losses and weights bit for bit', async () => {
    const [a, b] = [await train(spec({}), { runtime }), await train(spec({}), { runtime })];
    assert.deepEqual(
      a.curve.map((p) => [p.batchLoss, p.testLoss]),
      b.curve.map((p) => [p.batchLoss, p.testLoss]),
    );
    assert.deepEqual(weights(a.model), weights(b.model));
    const other = await train(spec({ seed: 4 }), { runtime });
    assert.notDeepEqual(
      other.curve.map((p) => p.batchLoss),
      a.curve.map((p) => p.batchLoss),
      'another seed, another run',
    );
  });

  it('grouping steps into onnxruntime runs changes nothing: 1, 7 or 16 steps per run give the same losses and weights bit for bit', async () => {
    // 8,000 training digits in batches of 96: 84 batches an epoch, the last one short (32 rows), run alone.
    const long = spec({ steps: 100, batch: 96, evalEvery: 50 });
    const [one, seven, sixteen] = [
      await train(long, { runtime, stepsPerRun: 1 }),
      await train(long, { runtime, stepsPerRun: 7 }),
      await train(long, { runtime }),
    ];
    for (const other of [seven, sixteen]) {
      assert.deepEqual(
        other.curve.map((p) => [p.batchLoss, p.testLoss]),
        one.curve.map((p) => [p.batchLoss, p.testLoss]),
      );
      assert.deepEqual(weights(other.model), weights(one.model));
    }
  });

  it('a run resumed from its checkpoint ends exactly where the uninterrupted run does', async () => {
    const dir = tempDir();
    const schedule = { warmupSteps: 5, cosine: true };
    const whole = await train(spec({ schedule }), { runtime });
    let saved: TrainState | undefined;
    await train(spec({ schedule }), {
      runtime,
      checkpointEvery: 20,
      checkpoint: (state, model) => {
        saveCheckpoint(join(dir, 'ckpt.onnx'), state, model);
        saved ??= state;
      },
    });
    assert.equal(saved?.step, 20);
    const { spec: restored, state } = loadCheckpoint(join(dir, 'ckpt.onnx'));
    const resumed = await train(restored, { runtime, resume: state });
    assert.deepEqual(
      resumed.curve.map((p) => p.batchLoss),
      whole.curve.map((p) => p.batchLoss),
    );
    assert.deepEqual(weights(resumed.model), weights(whole.model));
    // A checkpoint whose optimizer state does not match the step graph's (another version's layout) is refused by name.
    const mismatched = {
      ...state,
      optimizerState: new Map(
        [...state.optimizerState].map(([name, value]) => [
          `fc1.weight${name.slice(name.lastIndexOf('::'))}`,
          value,
        ]),
      ),
    };
    await assert.rejects(
      train(restored, { runtime, resume: mismatched }),
      /no optimizer state 'teardown::parameters::exp_avg'.*without --resume/,
    );
  });

  it('saves plain ONNX that onnxruntime loads and `teardown hooks` reads with module names, with the spec in its metadata', async () => {
    const result = await train(spec({ steps: 5, evalEvery: 5 }), { runtime });
    const model = Model.fromProto(result.model, 'trained', runtime);
    assert.deepEqual(
      model.hooks.hooks.filter((h) => h.kind === 'module').map((h) => h.name),
      ['flatten', 'fc1', 'act1', 'head'],
    );
    const stored = JSON.parse(
      result.model.metadataProps.find((entry) => entry.key === 'teardown.train_spec')!.value,
    );
    assert.equal(stored.model, 'mlp:hidden=64');
  });
});

describe('accuracy on the packaged MNIST digits (seeded 8,000/2,000 split)', () => {
  it('an MLP reaches ≥ 94% test accuracy', async () => {
    const result = await train(
      spec({
        model: 'mlp:hidden=256-256',
        steps: undefined,
        epochs: 8,
        batch: 64,
        seed: 0,
        evalEvery: 1000,
      }),
      { runtime: { threads: 2 } },
    );
    assert.ok(result.final.testAccuracy >= 0.94, `test accuracy ${result.final.testAccuracy}`);
  });

  it('a CNN reaches ≥ 97% test accuracy', async () => {
    const result = await train(
      spec({
        model: 'cnn:channels=16-32,fc=128',
        steps: undefined,
        epochs: 8,
        batch: 64,
        lr: 0.002,
        schedule: { warmupSteps: 0, cosine: true },
        seed: 0,
        evalEvery: 1000,
      }),
      { runtime: { threads: 2 } },
    );
    assert.ok(result.final.testAccuracy >= 0.97, `test accuracy ${result.final.testAccuracy}`);
  });
});

describe('csv tasks', () => {
  it('trains on a table with a named label column (label = [x + y > 0], learnable to ≥ 95%)', async () => {
    const dir = tempDir();
    const random = seededRandom(9);
    const rows = Array.from({ length: 400 }, () => [2 * random() - 1, 2 * random() - 1]);
    writeFileSync(
      join(dir, 'points.csv'),
      `x,y,above\n${rows.map(([x, y]) => `${x},${y},${x + y > 0 ? 1 : 0}`).join('\n')}\n`,
    );
    const result = await train(
      spec({
        task: `csv:${join(dir, 'points.csv')}`,
        taskOptions: { labelColumn: 'above' },
        model: 'mlp:hidden=16',
        steps: 300,
        evalEvery: 300,
        lr: 0.01,
      }),
      { runtime },
    );
    assert.ok(result.final.testAccuracy >= 0.95, `test accuracy ${result.final.testAccuracy}`);
    assert.equal(result.task.input.kind, 'features');
  });
});

describe('colored-mnist: ERM learns the colour shortcut', () => {
  it('train accuracy ≥ 80% and test accuracy ≤ 30% (IRM paper: 87.4% / 17.1% on 50,000 digits)', async () => {
    const result = await train(
      spec({
        task: 'colored-mnist',
        model: 'mlp:hidden=390-390',
        batch: 128,
        steps: undefined,
        epochs: 10,
        seed: 0,
        evalEvery: 1000,
        optimizer: { ...DEFAULT_OPTIMIZER, weightDecay: 0.001 },
      }),
      { runtime: { threads: 2 } },
    );
    assert.ok(result.final.trainAccuracy >= 0.8, `train accuracy ${result.final.trainAccuracy}`);
    assert.ok(result.final.testAccuracy <= 0.3, `test accuracy ${result.final.testAccuracy}`);
  });
});

describe('bad training specs: one clear message, exit 2', () => {
  const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
  const dir = tempDir();
  writeFileSync(join(dir, 'table.csv'), 'a,b,label\n1,2,0\n3,4,1\n');
  const cases: [string, string[], RegExp][] = [
    ['an unknown task', ['--task', 'cifar', '--model', 'mlp:hidden=8'], /Unknown task 'cifar'/],
    [
      'a negative learning rate',
      ['--task', 'mnist', '--model', 'mlp:hidden=8', '--lr', '-0.1'],
      /learning rate must be a positive number, got -0.1/,
    ],
    [
      'a model spec that does not parse',
      ['--task', 'mnist', '--model', 'mlp:hidden=eight'],
      /hidden must be a positive integer, got 'eight'/,
    ],
    [
      'an unknown model kind',
      ['--task', 'mnist', '--model', 'resnet:depth=50'],
      /unknown model kind 'resnet'/,
    ],
    [
      'a CSV without its label column',
      [
        '--task',
        `csv:${join(dir, 'table.csv')}`,
        '--label-column',
        'target',
        '--model',
        'mlp:hidden=8',
      ],
      /has no column 'target'.*Nearest columns: label/,
    ],
  ];
  for (const [what, args, message] of cases) {
    it(what, () => {
      const result = spawnSync(
        process.execPath,
        [BIN, 'train', ...args, '--steps', '2', '--out', join(dir, 'out.onnx')],
        { encoding: 'utf8' },
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /^\s+at /m);
      assert.ok(!existsSync(join(dir, 'out.onnx')));
    });
  }
});
