/**
 * Training steps agree with PyTorch's optimizers: the same tiny MLP, initial parameters and
 * batches as test/fixtures/make-train-oracle.py, three steps of SGD (momentum, weight decay),
 * AdamW (betas, decoupled weight decay) and AdamW with global-norm clipping.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readNpy } from '../data/npy.ts';
import { float, GraphBuilder, int, ints } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { relativeError } from '../tensor.ts';
import { buildModel } from './builders.ts';
import { parseModelSpec } from './model-spec.ts';
import type { OptimizerSpec } from './optimizers.ts';
import { Stepper } from './stepper.ts';

const dir = fileURLToPath(new URL('../../test/fixtures/train-oracle/', import.meta.url));
const oracle = JSON.parse(readFileSync(`${dir}oracle.json`, 'utf8'));
const PARAMETERS = ['fc1.weight', 'fc1.bias', 'head.weight', 'head.bias'];

const CASES: [string, OptimizerSpec, number | undefined][] = [
  [
    'sgd',
    { kind: 'sgd', momentum: 0.9, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
    undefined,
  ],
  [
    'adamw',
    { kind: 'adamw', momentum: 0, weightDecay: 0.5, betas: [0.9, 0.98], eps: 1e-8 },
    undefined,
  ],
  [
    'adamw-clip',
    { kind: 'adamw', momentum: 0, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
    0.5,
  ],
];

describe('training steps vs PyTorch optimizers', () => {
  for (const [key, optimizer, clip] of CASES) {
    it(`${key}: parameters after each of 3 steps and the losses`, async () => {
      const built = buildModel(
        parseModelSpec('mlp:hidden=5,act=tanh'),
        { kind: 'features', features: 6 },
        3,
        0,
      );
      const model = Model.fromProto(built.proto, 'oracle mlp', { threads: 1 });
      const batch = (k: number) => ({
        input: readNpy(`${dir}batch${k}.input.npy`),
        target: readNpy(`${dir}batch${k}.target.npy`),
      });
      const stepper = await Stepper.create(
        model,
        { input: batch(0).input },
        batch(0).target,
        { kind: 'cross-entropy' },
        optimizer,
        clip,
        { threads: 1 },
      );
      const state = stepper.initialState(model);
      for (const name of PARAMETERS) state.parameters.set(name, readNpy(`${dir}init.${name}.npy`));
      for (let k = 0; k < 3; k++) {
        const { loss } = await stepper.step(
          state,
          { input: batch(k).input },
          batch(k).target,
          oracle.optimizers[key].lr,
          k + 1,
        );
        assert.ok(
          Math.abs(loss - oracle.optimizers[key].losses[k]) < 1e-5,
          `step ${k + 1} loss ${loss} vs ${oracle.optimizers[key].losses[k]}`,
        );
        for (const name of PARAMETERS) {
          const error = relativeError(
            state.parameters.get(name)!,
            readNpy(`${dir}${key}.step${k + 1}.${name}.npy`),
          );
          assert.ok(
            error < 1e-5,
            `${key} step ${k + 1} ${name}: relative error ${error.toExponential(2)}`,
          );
        }
      }
      await stepper.release();
    });
  }
});

describe('several steps in one onnxruntime run (the step loop)', () => {
  it("three AdamW steps in one run end at PyTorch's parameters after step 3, with each step's loss", async () => {
    const built = buildModel(
      parseModelSpec('mlp:hidden=5,act=tanh'),
      { kind: 'features', features: 6 },
      3,
      0,
    );
    const model = Model.fromProto(built.proto, 'oracle mlp', { threads: 1 });
    const batch = (k: number) => ({
      feeds: { input: readNpy(`${dir}batch${k}.input.npy`) },
      target: readNpy(`${dir}batch${k}.target.npy`),
      lr: oracle.optimizers.adamw.lr,
      t: k + 1,
    });
    const [optimizer] = CASES.filter(([key]) => key === 'adamw').map(([, spec]) => spec);
    const stepper = await Stepper.create(
      model,
      batch(0).feeds,
      batch(0).target,
      { kind: 'cross-entropy' },
      optimizer,
      undefined,
      { threads: 1 },
    );
    const state = stepper.initialState(model);
    for (const name of PARAMETERS) state.parameters.set(name, readNpy(`${dir}init.${name}.npy`));
    const results = await stepper.steps(state, [0, 1, 2].map(batch));
    results.forEach(({ loss }, k) =>
      assert.ok(
        Math.abs(loss - oracle.optimizers.adamw.losses[k]) < 1e-5,
        `step ${k + 1} loss ${loss} vs ${oracle.optimizers.adamw.losses[k]}`,
      ),
    );
    for (const name of PARAMETERS) {
      const error = relativeError(
        state.parameters.get(name)!,
        readNpy(`${dir}adamw.step3.${name}.npy`),
      );
      assert.ok(error < 1e-5, `${name} after 3 steps: relative error ${error.toExponential(2)}`);
    }
    await stepper.release();
  });
});

describe('BatchNorm in training mode vs PyTorch train()', () => {
  it('normalises with batch statistics, updates the running statistics, and the weights follow SGD (one step per run, then two)', async () => {
    const init = (name: string) => readNpy(`${dir}bn.init.${name}.npy`);
    const g = new GraphBuilder('conv-bn');
    let x = g.input('input', 'float32', ['batch', 1, 4, 4]);
    x = g.node(
      'Conv',
      [
        x,
        g.initializer('conv.weight', init('conv.weight')),
        g.initializer('conv.bias', init('conv.bias')),
      ],
      { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) },
      '/conv/Conv',
    );
    x = g.node(
      'BatchNormalization',
      [
        x,
        ...['bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'].map((name) =>
          g.initializer(name, init(name)),
        ),
      ],
      { epsilon: float(1e-5), momentum: float(0.9) },
      '/bn/BatchNormalization',
    );
    x = g.node(
      'Flatten',
      [g.node('Relu', [x], {}, '/act/Relu')],
      { axis: int(1) },
      '/flatten/Flatten',
    );
    g.output(
      g.node(
        'Gemm',
        [
          x,
          g.initializer('head.weight', init('head.weight')),
          g.initializer('head.bias', init('head.bias')),
        ],
        { transB: int(1) },
        '/head/Gemm',
        'logits',
      ),
      'float32',
    );
    const model = Model.fromProto(g.build(), 'conv-bn', { threads: 1 });
    const batch = (k: number) => ({
      input: readNpy(`${dir}bn.batch${k}.input.npy`),
      target: readNpy(`${dir}bn.batch${k}.target.npy`),
    });
    const stepper = await Stepper.create(
      model,
      { input: batch(0).input },
      batch(0).target,
      { kind: 'cross-entropy' },
      { kind: 'sgd', momentum: 0.9, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 },
      undefined,
      { threads: 1 },
    );
    assert.deepEqual(stepper.graph.parameters.sort(), [
      'bn.bias',
      'bn.weight',
      'conv.bias',
      'conv.weight',
      'head.bias',
      'head.weight',
    ]);
    const state = stepper.initialState(model);
    // Step 1 alone, steps 2 and 3 in one run: the running statistics follow each step's batch either way.
    const run = (ks: number[]) =>
      stepper.steps(
        state,
        ks.map((k) => ({
          feeds: { input: batch(k).input },
          target: batch(k).target,
          lr: 0.1,
          t: k + 1,
        })),
      );
    for (const ks of [[0], [1, 2]]) {
      (await run(ks)).forEach(({ loss }, i) =>
        assert.ok(
          Math.abs(loss - oracle.batchnorm.losses[ks[i]]) < 1e-5,
          `step ${ks[i] + 1} loss ${loss} vs ${oracle.batchnorm.losses[ks[i]]}`,
        ),
      );
      const after = ks[ks.length - 1] + 1;
      for (const [name, value] of [...state.parameters, ...state.buffers]) {
        const error = relativeError(value, readNpy(`${dir}bn.step${after}.${name}.npy`));
        assert.ok(
          error < 1e-5,
          `after step ${after} ${name}: relative error ${error.toExponential(2)}`,
        );
      }
    }
    await stepper.release();
  });
});
