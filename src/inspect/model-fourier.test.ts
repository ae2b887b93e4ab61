/**
 * modelFourier reads the pairs to score from the model's stored training spec: the shipped
 * examples/modadd-113.onnx was trained on modular-addition mod 113 with trainFraction 0.3 and
 * data seed 0 (its metadata, and examples/modadd-113.json), so it is scored on those 30% of the
 * 113² pairs, over the units of its MLP.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { modularAdditionTrainPairs } from '../data/tasks.ts';
import { Model } from '../runtime/model.ts';
import { modelFourier } from './model-fourier.ts';

const MODADD = fileURLToPath(new URL('../../examples/modadd-113.onnx', import.meta.url));

describe('modelFourier on the shipped modular-addition model', () => {
  const model = Model.load(MODADD, { threads: 1 });
  after(() => model.release());

  it("scores the model's own training pairs and reads its MLP units by default", async () => {
    const { fourier, trainPairs, keyEnergyShare } = await modelFourier(model, 113);
    assert.deepEqual(trainPairs, modularAdditionTrainPairs(113, 0.3, 0));
    assert.equal(trainPairs!.length, Math.round(0.3 * 113 * 113));
    assert.deepEqual(
      Object.keys(fourier.units),
      model.hooks.hooks
        .filter((h) => h.kind === 'module' && /mlp\.1$/.test(h.name))
        .map((h) => h.name),
    );
    assert.ok(Object.keys(fourier.units).length > 0);
    assert.ok(
      keyEnergyShare > 0 && keyEnergyShare <= 1 + 1e-9,
      `key frequencies' share ${keyEnergyShare}`,
    );
  });
});
