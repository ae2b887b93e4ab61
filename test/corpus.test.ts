/**
 * The conformance corpus (test/corpus, made by test/corpus/make.py from PyTorch 1.13): models
 * nobody here designed — torchvision classifiers exported with constant folding, a GPT-2-style
 * decoder with torch.arange positions and tied embeddings, an encoder with an attention mask,
 * LSTM and GRU classifiers, a U-Net, ... — each at opset 14 and 17. PyTorch is the oracle: every
 * module call's output (forward hooks, `name`, `name_1`, ...) and the outputs under interventions
 * done by forward hooks. Beyond PyTorch, streaming is checked against one whole run: every hook
 * cached in batches of 3 must equal the same hook over all 4 examples at once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NpyFile, readNpy } from '../src/data/npy.ts';
import { batchLayoutOf, examplesFirst, unitAxisOf } from '../src/graph/units.ts';
import { listHooks } from '../src/inspect/list-hooks.ts';
import { Model } from '../src/runtime/model.ts';
import { probeHookShapes } from '../src/runtime/probe.ts';
import { runDataset } from '../src/runtime/run-dataset.ts';
import { runWithCache, runWithInterventions } from '../src/runtime/run.ts';
import { isFloat } from '../src/tensor.ts';
import {
  CORPUS,
  corpusManifest,
  corpusModels,
  counterparts,
  inputsOf,
  interventionOf,
  TOLERANCE,
} from './corpus-oracle.ts';
import { assertClose } from './helpers.ts';
import { tempDir } from './model-files.ts';

for (const name of corpusModels()) {
  const dir = join(CORPUS, name);
  const manifest = corpusManifest(name);
  for (const [opset, file] of Object.entries(manifest.files)) {
    describe(`corpus: ${name}, opset ${opset}`, () => {
      // Each case loads the model and releases it however the case ends.
      const withModel = (body: (model: Model) => Promise<void>) => async () => {
        const model = Model.load(join(dir, file), { threads: 1 });
        try {
          await body(model);
        } finally {
          await model.release();
        }
      };

      it(
        'lists its hooks and caches every one of them; outputs and every module call equal PyTorch',
        withModel(async (model) => {
          await listHooks(model);
          const feeds = inputsOf(dir, manifest);
          const { outputs, cache } = await runWithCache(model, feeds, ['*']);
          for (const output of manifest.outputs)
            assertClose(
              outputs[output.name],
              readNpy(join(dir, output.file)),
              TOLERANCE,
              `output ${output.name}`,
            );
          const mapped = counterparts(model, manifest);
          for (const hook of manifest.hooks) {
            const counterpart = mapped.get(hook.hook)!;
            if ('skip' in counterpart) continue;
            const value = cache.get(counterpart.hook);
            assert.ok(
              value,
              `module call '${hook.hook}' (${hook.module}, call ${hook.call}) has no hook: ${model.hooks.absent.find((absent) => absent.name === hook.hook)?.reason ?? 'not found'}`,
            );
            assertClose(
              value,
              readNpy(join(dir, hook.file)),
              TOLERANCE,
              `hook ${counterpart.hook} (PyTorch's ${hook.hook})`,
            );
          }
        }),
      );

      it(
        'interventions (zero ablation of every module call; mean, resample, patch and scale on three) equal PyTorch',
        withModel(async (model) => {
          const feeds = inputsOf(dir, manifest);
          const mapped = counterparts(model, manifest);
          for (const spec of manifest.interventions) {
            const counterpart = mapped.get(spec.hook)!;
            if ('skip' in counterpart) continue;
            const { outputs } = await runWithInterventions(model, feeds, [
              interventionOf(dir, manifest, { ...spec, hook: counterpart.hook }),
            ]);
            for (const [output, expected] of Object.entries(spec.outputs))
              assertClose(
                outputs[output],
                readNpy(join(dir, expected)),
                TOLERANCE,
                `${spec.id} on ${spec.hook}: output ${output}`,
              );
          }
        }),
      );

      it(
        "teardown's default unit axis is the corpus's (channels of conv maps, Conv1d's included; features of dense and sequence values), attention maps [batch, heads, q, k] aside (teardown: heads)",
        withModel(async (model) => {
          const feeds = inputsOf(dir, manifest);
          const mapped = counterparts(model, manifest);
          const disagreements: string[] = [];
          for (const spec of manifest.interventions) {
            const counterpart = mapped.get(spec.hook)!;
            if ('skip' in counterpart || spec.unit_axis === undefined) continue;
            const hook = model.hooks.resolve(counterpart.hook);
            const dims = (await probeHookShapes(model, feeds, [hook])).get(hook.name)!;
            const attentionMap = dims.length === 4 && !hook.channelMap;
            if (unitAxisOf(hook, dims.length) !== spec.unit_axis && !attentionMap)
              disagreements.push(
                `${spec.hook} ${JSON.stringify(dims)}: teardown ${unitAxisOf(hook, dims.length)}, corpus ${spec.unit_axis}`,
              );
          }
          assert.deepEqual(disagreements, []);
        }),
      );

      it(
        'streams every hook in batches of 3 into files that hold the examples first, equal to one run of all 4',
        withModel(async (model) => {
          const feeds = inputsOf(dir, manifest);
          const out = join(tempDir(), 'run');
          const files = Object.fromEntries(
            manifest.inputs.map((input) => [input.name, new NpyFile(join(dir, input.file))]),
          );
          const summary = await runDataset(model, files, { cache: ['*'], batchSize: 3, out });
          const { cache } = await runWithCache(model, feeds, ['*']);
          const shapes = await probeHookShapes(model, feeds, model.hooks.hooks);
          for (const hook of model.hooks.hooks) {
            const layout = batchLayoutOf(shapes.get(hook.name)!);
            const whole = cache.get(hook.name)!;
            // Shape arithmetic without a batch axis (e.g. Shape's [batch, seq]) differs between batch sizes by nature.
            if (!layout && !isFloat(whole.dtype)) continue;
            const stored = summary.hooks[hook.name];
            assert.equal(stored.batchAxis, layout?.axis ?? null, `${hook.name}: batch axis`);
            const expected = layout ? examplesFirst(whole, layout) : whole;
            const streamed = readNpy(join(out, stored.file));
            // Batches of 3 and 4 may sum in another order inside onnxruntime's kernels: 1e-6, not 0;
            // constants such as -inf attention masks must match exactly.
            if (Array.from(expected.data as Float32Array).every(Number.isFinite))
              assertClose(streamed, expected, 1e-6, `hook ${hook.name} streamed`);
            else assert.deepEqual(streamed, expected, `hook ${hook.name} streamed`);
          }
        }),
      );
    });
  }
}
