/**
 * The library's Model against independent facts: the conformance corpus's PyTorch activations
 * and intervention outputs (test/corpus, gpt2 at opset 17), and runtime/run.ts's runWithCache.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readNpy } from '../data/npy.ts';
import { runWithCache as runtimeRunWithCache } from '../runtime/run.ts';
import { relativeError } from '../tensor.ts';
import {
  CORPUS,
  corpusManifest,
  counterparts,
  inputsOf,
  TOLERANCE,
} from '../../test/corpus-oracle.ts';
import { Model } from './model.ts';
import { ablate, patch, scale } from './interventions.ts';
import { Tensor } from './tensor.ts';
import type { Inputs } from './inputs.ts';

const dir = join(CORPUS, 'gpt2');
const manifest = corpusManifest('gpt2');
const inputIds = inputsOf(dir, manifest).input_ids;

const assertClose = (
  actual: Tensor,
  expected: { dims: number[]; data: ArrayLike<number | bigint> },
  what: string,
  tolerance = TOLERANCE,
) => {
  assert.deepEqual(actual.dims, expected.dims, `${what}: shape`);
  const error = relativeError(actual, expected as never);
  assert.ok(error <= tolerance, `${what}: relative error ${error.toExponential(2)} > ${tolerance}`);
};

describe('Model on the gpt2 corpus export', () => {
  const model = Model.load(join(dir, manifest.files['17']), { threads: 1 });
  after(() => model.release());

  it('runWithCache caches every module hook by default, equal to PyTorch (1e-5)', async () => {
    const { output, cache } = await model.runWithCache({ input_ids: inputIds });
    assertClose(output, readNpy(join(dir, manifest.outputs[0].file)), 'logits');
    const modules = (await model.hooks())
      .filter((hook) => hook.kind === 'module')
      .map((hook) => hook.name);
    assert.deepEqual(cache.keys().sort(), modules.sort());
    let compared = 0;
    for (const [module, counterpart] of counterparts(model.runtime, manifest)) {
      if (!('hook' in counterpart)) continue;
      const entry = manifest.hooks.find((hook) => hook.hook === module)!;
      assertClose(cache.get(counterpart.hook), readNpy(join(dir, entry.file)), module);
      compared++;
    }
    assert.ok(compared >= 20, `compared ${compared} modules`);
    assertClose(cache.get('h.0'), readNpy(join(dir, 'act/h.0.npy')), 'h.0');
  });

  it("the cache equals runtime/run.ts's runWithCache bit for bit", async () => {
    const hooks = ['h.0', 'h.1.mlp', 'h.0.attn.c_attn'];
    const ours = await model.runWithCache(inputIds, { hooks });
    const theirs = await runtimeRunWithCache(model.runtime, { input_ids: inputIds }, hooks);
    for (const hook of hooks)
      assert.deepEqual(ours.cache.get(hook).data, theirs.cache.get(hook)!.data, hook);
    assert.throws(() => ours.cache.get('h.1'), /not in the cache/);
  });

  it('hooks() lists shapes with the batch axis', async () => {
    const hooks = await model.hooks();
    const h0 = hooks.find((hook) => hook.name === 'h.0')!;
    assert.equal(h0.kind, 'module');
    assert.equal(h0.shape[0], 'batch');
    assert.equal(h0.batchAxis, 0);
    assert.equal(h0.shape.at(-1), 32);
  });

  it('interventions match PyTorch: zero ablation and a unit patch', async () => {
    for (const id of ['zero-15', 'patch-16']) {
      const spec = manifest.interventions.find((intervention) => intervention.id === id)!;
      const intervention =
        spec.kind === 'patch'
          ? patch(spec.hook, readNpy(join(dir, spec.value!)), {
              units: spec.units,
              unitAxis: spec.unit_axis,
            })
          : ablate(spec.hook, 'zero', { units: spec.units, unitAxis: spec.unit_axis });
      const { output } = await model.run(inputIds, { interventions: [intervention] });
      assertClose(output, readNpy(join(dir, spec.outputs.logits)), id);
    }
  });

  it("an edit function on a hook gives PyTorch's output for the same edit (zero-15: even units of h.0 set to 0)", async () => {
    const spec = manifest.interventions.find((intervention) => intervention.id === 'zero-15')!;
    let seen: Tensor | undefined;
    const { output, cache } = await model.run(inputIds, {
      hooks: ['h.0'],
      edit: {
        'h.0': (value) => {
          seen = value;
          const data = Float32Array.from(value.data as Float32Array);
          for (let i = 0; i < data.length; i++) if (spec.units!.includes(i % 32)) data[i] = 0;
          return new Tensor('float32', value.dims, data);
        },
      },
    });
    assertClose(seen!, readNpy(join(dir, 'act/h.0.npy')), 'the value the edit saw');
    assertClose(output, readNpy(join(dir, spec.outputs.logits)), 'logits after the edit');
    assert.equal(cache.get('h.0').at(0, 0, 2), 0);
  });

  it('edits compose with interventions and with each other, in graph order, as the equivalent patches', async () => {
    const halve = (value: Tensor) =>
      new Tensor(
        'float32',
        value.dims,
        (value.data as Float32Array).map((x) => x / 2),
      );
    // Given out of graph order: h.1.mlp is edited after h.0 has been.
    const edited = await model.run(inputIds, {
      interventions: [scale('h.0.ln_1', 1.5)],
      edit: { 'h.1.mlp': halve, 'h.0': halve },
    });
    const scaled = await model.run(inputIds, {
      interventions: [scale('h.0.ln_1', 1.5), scale('h.0', 0.5), scale('h.1.mlp', 0.5)],
    });
    assertClose(edited.output, scaled.output, 'edit vs scale', 1e-6);
    const h0 = (
      await model.runWithCache(inputIds, {
        hooks: ['h.0'],
        interventions: [scale('h.0.ln_1', 1.5)],
      })
    ).cache.get('h.0');
    const patched = await model.run(inputIds, {
      interventions: [scale('h.0.ln_1', 1.5), patch('h.0', halve(h0)), scale('h.1.mlp', 0.5)],
    });
    assert.deepEqual(patched.output.data, edited.output.data);
  });

  it('loads from bytes as from the file', async () => {
    const fromBytes = Model.fromBytes(readFileSync(join(dir, manifest.files['17'])), 'gpt2 bytes', {
      threads: 1,
    });
    assert.deepEqual(
      (await fromBytes.run(inputIds)).output.data,
      (await model.run(inputIds)).output.data,
    );
    await fromBytes.release();
  });

  it('refuses an edit that changes the shape', async () => {
    await assert.rejects(
      model.run(inputIds, { edit: { 'h.0': (value) => value.mean(0) } }),
      /returned a float32 tensor of shape \[10,32\]/,
    );
  });

  it('takes inputs as a tensor, { data, dims }, an onnxruntime Tensor or a record', async () => {
    const expected = (await model.run({ input_ids: inputIds })).output;
    const data = inputIds.data as BigInt64Array;
    const forms: Inputs[] = [
      inputIds,
      { data, dims: inputIds.dims },
      Tensor.from(inputIds).toOrt(),
      { input_ids: Tensor.from(inputIds).toOrt() },
    ];
    for (const inputs of forms) {
      assert.deepEqual((await model.run(inputs)).output.data, expected.data);
    }
  });
});
