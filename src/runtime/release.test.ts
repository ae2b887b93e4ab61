/**
 * releaseRunValues frees only what a run made itself: the activations and outputs it returned.
 * Feeds, and values the model computes once and keeps (a position table without a batch axis),
 * are left alone, and the model's next run returns the same values as before.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readNpy } from '../data/npy.ts';
import { Model } from './model.ts';
import { releaseRunValues } from './release.ts';
import { runWithCache } from './run.ts';

const dir = fileURLToPath(new URL('../../test/corpus/gpt2/', import.meta.url));

describe('releaseRunValues', () => {
  it("frees a run's activations and outputs, never a feed or a value the model keeps", async () => {
    const model = Model.load(join(dir, 'opset17.onnx'), { threads: 1 });
    const feeds = { input_ids: readNpy(join(dir, 'inputs', 'input_ids.npy')) };
    const feedBytes = feeds.input_ids.data.slice();
    const names = model.hooks.hooks.map((hook) => hook.name);
    const first = await runWithCache(model, feeds, names);
    const copies = new Map([...first.cache].map(([name, value]) => [name, value.data.slice()]));
    const kept = model.hooks.hooks
      .filter((hook) => hook.value in feeds || !model.graph.isActivation(hook.value))
      .map((hook) => hook.name);
    assert.ok(kept.includes('wpe') && kept.includes('input_ids'), kept.join(', '));

    await releaseRunValues([...first.cache.values(), ...Object.values(first.outputs)]);
    for (const [name, value] of first.cache) {
      if (kept.includes(name)) assert.deepEqual(value.data, copies.get(name), `${name} kept`);
      else assert.equal(value.data.buffer.byteLength, 0, `${name} released`);
    }
    assert.deepEqual(feeds.input_ids.data, feedBytes);
    await releaseRunValues(first.cache.values()); // twice: nothing left to free, no error

    const again = await runWithCache(model, feeds, names);
    for (const [name, value] of again.cache) assert.deepEqual(value.data, copies.get(name), name);
    await model.release();
  });
});
