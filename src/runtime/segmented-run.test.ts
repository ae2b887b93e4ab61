/**
 * A cache returned segment by segment equals the one run that returns it all (same nodes, same
 * order: bit for bit), on corpus models of different shapes: a transformer with shape arithmetic
 * crossing segments, a recurrent classifier, a convolutional net.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readNpy } from '../data/npy.ts';
import { Model } from './model.ts';
import { runWithCache } from './run.ts';
import { runInSegments } from './segmented-run.ts';

const corpus = (name: string) =>
  fileURLToPath(new URL(`../../test/corpus/${name}/`, import.meta.url));

describe('runInSegments', () => {
  for (const name of ['gpt2', 'lstm', 'resnet18']) {
    it(`${name}: every activation and the outputs equal one run's, in many small segments`, async () => {
      const dir = corpus(name);
      const model = Model.load(join(dir, 'opset17.onnx'), { threads: 1 });
      const feeds = Object.fromEntries(
        model.inputs.map((input) => [
          input.name,
          readNpy(join(dir, 'inputs', `${input.name}.npy`)),
        ]),
      );
      const hooks = model.hooks.hooks.filter((hook) => model.graph.isActivation(hook.value));
      const whole = await runWithCache(
        model,
        feeds,
        hooks.map((hook) => hook.name),
      );
      const wanted = [
        ...new Set([...model.outputNames, ...hooks.map((hook) => hook.value)]),
      ].filter((value) => !(value in feeds));
      const segmented = await runInSegments(model, feeds, wanted, 4, 64);
      assert.ok(segmented, 'cut into segments');
      for (const hook of hooks) {
        if (hook.value in feeds) continue;
        assert.deepEqual(segmented[hook.value].dims, whole.cache.get(hook.name)!.dims, hook.name);
        assert.deepEqual(segmented[hook.value].data, whole.cache.get(hook.name)!.data, hook.name);
      }
      for (const output of model.outputNames)
        assert.deepEqual(segmented[output].data, whole.outputs[output].data);
      await model.release();
    });
  }
});
