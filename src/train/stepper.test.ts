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
  ['sgd', { kind: 'sgd', momentum: 0.9, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 }, undefined],
  ['adamw', { kind: 'adamw', momentum: 0, weightDecay: 0.5, betas: [0.9, 0.98], eps: 1e-8 }, undefined],
  ['adamw-clip', { kind: 'adamw', momentum: 0, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 }, 0.5],
];

describe('training steps vs PyTorch optimizers', () => {
  for (const [key, optimizer, clip] of CASES) {
    it(`${key}: parameters after each of 3 steps and the losses`, async () => {
      const built = buildModel(parseModelSpec('mlp:hidden=5,act=tanh'), { kind: 'features', features: 6 }, 3, 0);
      const model = Model.fromProto(built.proto, 'oracle mlp', { threads: 1 });
      const batch = (k: number) => ({ input: readNpy(`${dir}batch${k}.input.npy`), target: readNpy(`${dir}batch${k}.target.npy`) });
      const stepper = await Stepper.create(model, { input: batch(0).input }, batch(0).target, { kind: 'cross-entropy' }, optimizer, clip, { threads: 1 });
      const state = stepper.initialState(model);
      for (const name of PARAMETERS) state.parameters.set(name, readNpy(`${dir}init.${name}.npy`));
      for (let k = 0; k < 3; k++) {
        const { loss } = await stepper.step(state, { input: batch(k).input }, batch(k).target, oracle.optimizers[key].lr, k + 1);
        assert.ok(Math.abs(loss - oracle.optimizers[key].losses[k]) < 1e-5, `step ${k + 1} loss ${loss} vs ${oracle.optimizers[key].losses[k]}`);
        for (const name of PARAMETERS) {
          const error = relativeError(state.parameters.get(name)!, readNpy(`${dir}${key}.step${k + 1}.${name}.npy`));
          assert.ok(error < 1e-5, `${key} step ${k + 1} ${name}: relative error ${error.toExponential(2)}`);
        }
      }
      await stepper.release();
    });
  }
});
