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
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { NpyFile, readNpy } from '../src/data/npy.ts';
import { ablate, patch, scale, type Intervention, type Selection } from '../src/graph/interventions.ts';
import { batchLayoutOf, examplesFirst } from '../src/graph/units.ts';
import { listHooks } from '../src/inspect/list-hooks.ts';
import { Model } from '../src/runtime/model.ts';
import { probeHookShapes } from '../src/runtime/probe.ts';
import { runDataset } from '../src/runtime/run-dataset.ts';
import { runWithCache, runWithInterventions } from '../src/runtime/run.ts';
import { isFloat, type Feeds } from '../src/tensor.ts';
import { assertClose } from './helpers.ts';
import { tempDir } from './model-files.ts';

const CORPUS = fileURLToPath(new URL('./corpus', import.meta.url));
/** PyTorch and onnxruntime agree to this max |Δ| / max |reference| per tensor (issue 11). */
const TOLERANCE = 1e-5;

interface CorpusHook { hook: string; module: string; call: number; type: string; file: string; passthrough?: boolean }
interface CorpusIntervention {
  id: string; kind: Intervention['kind']; method?: 'zero' | 'mean' | 'resample'; hook: string;
  units?: number[]; positions?: number[]; unit_axis?: number; factor?: number; value?: string; outputs: Record<string, string>;
}
interface Manifest {
  model: string; classifier: boolean; files: Record<string, string>;
  inputs: { name: string; file: string; corrupted: string }[];
  outputs: { name: string; file: string }[];
  hooks: CorpusHook[]; donors: string; interventions: CorpusIntervention[];
}

export const corpusModels = (): string[] => (existsSync(CORPUS) ? readdirSync(CORPUS).filter((name) => existsSync(join(CORPUS, name, 'manifest.json'))).sort() : []);
export const corpusManifest = (name: string): Manifest => JSON.parse(readFileSync(join(CORPUS, name, 'manifest.json'), 'utf8'));

function inputsOf(dir: string, manifest: Manifest): Feeds {
  return Object.fromEntries(manifest.inputs.map((input) => [input.name, readNpy(join(dir, input.file))]));
}

/**
 * Where teardown's hook differs from PyTorch's module output by design: an export with constant
 * folding merges a BatchNorm into the Conv before it, so the Conv's hook carries the BatchNorm's
 * output (and says so in its note), the raw convolution exists nowhere in the graph, and the
 * BatchNorm has no hook of its own. Modules that are no-ops at export (Dropout in eval) leave no
 * node behind. Returns, per PyTorch module call, the teardown hook that must equal it, or why none.
 */
function counterparts(model: Model, manifest: Manifest): Map<string, { hook: string } | { skip: string }> {
  const found = new Map<string, { hook: string } | { skip: string }>();
  manifest.hooks.forEach((entry, index) => {
    const next = manifest.hooks[index + 1];
    const previous = manifest.hooks[index - 1];
    const folded = (conv: CorpusHook | undefined) => conv && /^Conv/.test(conv.type) && model.hooks.get(conv.hook)?.note?.includes('BatchNorm');
    if (folded(entry) && next && /^BatchNorm/.test(next.type)) found.set(entry.hook, { skip: 'the raw convolution before a folded BatchNorm' });
    else if (/^BatchNorm/.test(entry.type) && folded(previous)) found.set(entry.hook, { hook: previous.hook });
    else if (!model.hooks.get(entry.hook) && entry.passthrough) found.set(entry.hook, { skip: 'a no-op module with no node in the export' });
    else found.set(entry.hook, { hook: entry.hook });
  });
  return found;
}

function interventionOf(dir: string, manifest: Manifest, spec: CorpusIntervention): Intervention {
  const selection: Selection = { units: spec.units, positions: spec.positions, unitAxis: spec.unit_axis };
  if (spec.kind === 'scale') return scale(spec.hook, spec.factor!, selection);
  if (spec.kind === 'patch') return patch(spec.hook, readNpy(join(dir, spec.value!)), selection);
  const donors = Array.from(readNpy(join(dir, manifest.donors)).data as BigInt64Array, Number);
  return ablate(spec.hook, spec.method, { ...selection, ...(spec.method === 'resample' ? { donors } : {}) });
}

for (const name of corpusModels()) {
  const dir = join(CORPUS, name);
  const manifest = corpusManifest(name);
  for (const [opset, file] of Object.entries(manifest.files)) {
    describe(`corpus: ${name}, opset ${opset}`, () => {
      const load = () => Model.load(join(dir, file), { threads: 1 });

      it('lists its hooks and caches every one of them; outputs and every module call equal PyTorch', async () => {
        const model = load();
        try {
          await listHooks(model);
          const feeds = inputsOf(dir, manifest);
          const { outputs, cache } = await runWithCache(model, feeds, ['*']);
          for (const output of manifest.outputs) assertClose(outputs[output.name], readNpy(join(dir, output.file)), TOLERANCE, `output ${output.name}`);
          const mapped = counterparts(model, manifest);
          for (const hook of manifest.hooks) {
            const counterpart = mapped.get(hook.hook)!;
            if ('skip' in counterpart) continue;
            const value = cache.get(counterpart.hook);
            assert.ok(value, `module call '${hook.hook}' (${hook.module}, call ${hook.call}) has no hook: ${model.hooks.absent.find((absent) => absent.name === hook.hook)?.reason ?? 'not found'}`);
            assertClose(value, readNpy(join(dir, hook.file)), TOLERANCE, `hook ${counterpart.hook} (PyTorch's ${hook.hook})`);
          }
        } finally {
          await model.release();
        }
      });

      it('interventions (zero ablation of every module call; mean, resample, patch and scale on three) equal PyTorch', async () => {
        const model = load();
        try {
          const feeds = inputsOf(dir, manifest);
          const mapped = counterparts(model, manifest);
          for (const spec of manifest.interventions) {
            const counterpart = mapped.get(spec.hook)!;
            if ('skip' in counterpart) continue;
            const { outputs } = await runWithInterventions(model, feeds, [interventionOf(dir, manifest, { ...spec, hook: counterpart.hook })]);
            for (const [output, expected] of Object.entries(spec.outputs)) assertClose(outputs[output], readNpy(join(dir, expected)), TOLERANCE, `${spec.id} on ${spec.hook}: output ${output}`);
          }
        } finally {
          await model.release();
        }
      });

      it('streams every hook in batches of 3 into files that hold the examples first, equal to one run of all 4', async () => {
        const model = load();
        try {
          const feeds = inputsOf(dir, manifest);
          const out = join(tempDir(), 'run');
          const files = Object.fromEntries(manifest.inputs.map((input) => [input.name, new NpyFile(join(dir, input.file))]));
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
            if (Array.from(expected.data as Float32Array).every(Number.isFinite)) assertClose(streamed, expected, 1e-6, `hook ${hook.name} streamed`);
            else assert.deepEqual(streamed, expected, `hook ${hook.name} streamed`);
          }
        } finally {
          await model.release();
        }
      });
    });
  }
}
