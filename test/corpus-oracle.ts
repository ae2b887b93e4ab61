/**
 * The conformance corpus's oracle (test/corpus, made by test/corpus/make.py from PyTorch 1.13):
 * reading a model's manifest, its inputs and interventions, and which teardown hook answers for
 * each PyTorch module call. Shared by test/corpus.test.ts and test/corpus/error-table.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../src/data/npy.ts';
import {
  ablate,
  patch,
  scale,
  type Intervention,
  type Selection,
} from '../src/graph/interventions.ts';
import type { Model } from '../src/runtime/model.ts';
import type { Feeds } from '../src/tensor.ts';

export const CORPUS = fileURLToPath(new URL('./corpus', import.meta.url));
/** PyTorch and onnxruntime agree to this max |Δ| / max |reference| per tensor (issue 11). */
export const TOLERANCE = 1e-5;

export interface CorpusHook {
  hook: string;
  module: string;
  call: number;
  type: string;
  file: string;
  passthrough?: boolean;
}
export interface CorpusIntervention {
  id: string;
  kind: Intervention['kind'];
  method?: 'zero' | 'mean' | 'resample';
  hook: string;
  units?: number[];
  positions?: number[];
  unit_axis?: number;
  factor?: number;
  value?: string;
  outputs: Record<string, string>;
}
export interface Manifest {
  /** PyTorch autograd of the mean cross-entropy against `target` (make.py record_gradients). */
  gradients: {
    loss: number;
    target: string;
    params: Record<string, string>;
    inputs: Record<string, string>;
  };
  model: string;
  classifier: boolean;
  files: Record<string, string>;
  inputs: { name: string; file: string; corrupted: string }[];
  outputs: { name: string; file: string }[];
  hooks: CorpusHook[];
  donors: string;
  interventions: CorpusIntervention[];
}

export const corpusModels = (): string[] =>
  existsSync(CORPUS)
    ? readdirSync(CORPUS)
        .filter((name) => existsSync(join(CORPUS, name, 'manifest.json')))
        .sort()
    : [];
export const corpusManifest = (name: string): Manifest =>
  JSON.parse(readFileSync(join(CORPUS, name, 'manifest.json'), 'utf8'));

export function inputsOf(dir: string, manifest: Manifest): Feeds {
  return Object.fromEntries(
    manifest.inputs.map((input) => [input.name, readNpy(join(dir, input.file))]),
  );
}

/**
 * Where teardown's hook differs from PyTorch's module output by design: an export with constant
 * folding merges a BatchNorm into the Conv before it, so the Conv's hook carries the BatchNorm's
 * output (and says so in its note), the raw convolution exists nowhere in the graph, and the
 * BatchNorm has no hook of its own. Modules that are no-ops at export (Dropout in eval) leave no
 * node behind. Returns, per PyTorch module call, the teardown hook that must equal it, or why none.
 */
export function counterparts(
  model: Model,
  manifest: Manifest,
): Map<string, { hook: string } | { skip: string }> {
  const found = new Map<string, { hook: string } | { skip: string }>();
  manifest.hooks.forEach((entry, index) => {
    const next = manifest.hooks[index + 1];
    const previous = manifest.hooks[index - 1];
    const folded = (conv: CorpusHook | undefined) =>
      conv && /^Conv/.test(conv.type) && model.hooks.get(conv.hook)?.note?.includes('BatchNorm');
    if (folded(entry) && next && /^BatchNorm/.test(next.type))
      found.set(entry.hook, { skip: 'the raw convolution before a folded BatchNorm' });
    else if (/^BatchNorm/.test(entry.type) && folded(previous))
      found.set(entry.hook, { hook: previous.hook });
    else if (!model.hooks.get(entry.hook) && entry.passthrough)
      found.set(entry.hook, { skip: 'a no-op module with no node in the export' });
    else found.set(entry.hook, { hook: entry.hook });
  });
  return found;
}

export function interventionOf(
  dir: string,
  manifest: Manifest,
  spec: CorpusIntervention,
): Intervention {
  const selection: Selection = {
    units: spec.units,
    positions: spec.positions,
    unitAxis: spec.unit_axis,
  };
  if (spec.kind === 'scale') return scale(spec.hook, spec.factor!, selection);
  if (spec.kind === 'patch') return patch(spec.hook, readNpy(join(dir, spec.value!)), selection);
  const donors = Array.from(readNpy(join(dir, manifest.donors)).data as BigInt64Array, Number);
  return ablate(spec.hook, spec.method, {
    ...selection,
    ...(spec.method === 'resample' ? { donors } : {}),
  });
}
