/**
 * What `teardown inspect` reports of two gradient methods over a sample of the data:
 *   integrated gradients of the label's score with respect to the input, or a token model's
 *   embedding (integrated-gradients.ts), summed up per input feature or position (mean |attribution| and mean signed attribution; per channel for images),
 *   with the completeness error that checks them;
 *   attribution patching (attribution-patching.ts) next to the exact activation patching it
 *   estimates, per hook and position of a sequence model, from clean to corrupted inputs.
 */
import { InputError } from '../errors.ts';
import type { ProgressOptions } from '../progress.ts';
import type { Model } from '../runtime/model.ts';
import { elementCount, type Feeds, type Tensor } from '../tensor.ts';
import { hookIntegratedGradients, integratedGradients } from './integrated-gradients.ts';
import { attributionPatching, targetLogitMetric } from './attribution-patching.ts';
import { patchSweep } from './patch-sweep.ts';

export interface InputAttributionSummary {
  method: 'integrated-gradients';
  /** The input or hook attributed to: the first float input, or for token inputs the embedding the tokens select. */
  at: string;
  baseline: 'zero' | 'mean';
  steps: number;
  examples: number;
  /** Largest |Σ attributions − (F(x) − F(baseline))| relative to the mean |F(x) − F(baseline)|. */
  completenessError: number;
  /** What a feature is: an element of the attributed value, or a position of a sequence hook ([batch, seq, d] summed over d). */
  per: 'element' | 'position';
  /** The features with the largest mean |attribution|, most first. */
  features: { feature: string; meanAbs: number; mean: number }[];
  /** Images: each channel's share of the total |attribution|. */
  channels?: number[];
}

/**
 * Integrated gradients of the label's score, at `at` (an input or a hook) or by default at the
 * first input — or, when that input holds token ids, at the embedding its Gather reads (token ids
 * have no path to integrate along). Other inputs (an attention mask) stay as they are.
 */
export async function inputAttribution(
  model: Model,
  feeds: Feeds,
  labels: Tensor,
  options: {
    at?: string;
    baseline: 'zero' | 'mean';
    steps: number;
    featureNames?: string[];
  } & ProgressOptions,
): Promise<InputAttributionSummary> {
  const at = options.at ?? defaultAttributionPoint(model);
  const settings = {
    baseline: options.baseline === 'mean' ? ('mean' as const) : undefined,
    steps: options.steps,
    onProgress: options.onProgress,
    signal: options.signal,
  };
  const ig = model.inputs.some((input) => input.name === at)
    ? await integratedGradients(model, feeds, at, labels, settings)
    : await hookIntegratedGradients(model, feeds, at, labels, settings);
  const dims = ig.attributions.dims;
  const n = labels.dims[0];
  // A hook [batch, seq, d] is summarised per position (its units are not input features).
  const perPosition = at !== model.inputs[0].name && dims.length === 3;
  const size = perPosition ? dims[1] : elementCount(dims.slice(1));
  const inner = perPosition ? dims[2] : 1;
  const meanAbs = new Float64Array(size),
    mean = new Float64Array(size);
  const perFeature = new Float64Array(n * size);
  for (let i = 0; i < ig.attributions.data.length; i++)
    perFeature[Math.floor(i / inner)] += Number(ig.attributions.data[i]);
  perFeature.forEach((value, i) => {
    meanAbs[i % size] += Math.abs(value) / n;
    mean[i % size] += value / n;
  });
  const name = (k: number) =>
    perPosition ? `position ${k}` : (options.featureNames?.[k] ?? featureName(dims.slice(1), k));
  const features = [...meanAbs.keys()]
    .sort((a, b) => meanAbs[b] - meanAbs[a])
    .slice(0, 20)
    .map((k) => ({ feature: name(k), meanAbs: meanAbs[k], mean: mean[k] }));
  let channels: number[] | undefined;
  if (!perPosition && dims.length === 4) {
    const plane = dims[2] * dims[3];
    const total = meanAbs.reduce((a, b) => a + b, 0) || 1;
    channels = Array.from(
      { length: dims[1] },
      (_, c) => meanAbs.subarray(c * plane, (c + 1) * plane).reduce((a, b) => a + b, 0) / total,
    );
  }
  return {
    method: 'integrated-gradients',
    at,
    per: perPosition ? 'position' : 'element',
    baseline: options.baseline,
    steps: options.steps,
    examples: n,
    completenessError: ig.completenessError,
    features,
    channels,
  };
}

/** The first input if it is float; for token ids, the float value a Gather reads them into (the embedding). */
function defaultAttributionPoint(model: Model): string {
  const input = model.inputs[0];
  if (input.dtype === 'float32') return input.name;
  const embedding = (model.graph.consumers.get(input.name) ?? [])
    .map((node) => model.graph.nodes[node])
    .find(
      (node) =>
        node.opType === 'Gather' &&
        node.input[1] === input.name &&
        model.graph.isFloat(node.output[0]),
    );
  if (!embedding)
    throw new InputError(
      `Integrated gradients need a float input or an embedding to attribute to; input '${input.name}' is ${input.dtype ?? input.typeName} and no Gather reads it into float vectors: name a hook with --ig-at.`,
    );
  const hooks = model.hooks.hooks.filter((hook) => hook.value === embedding.output[0]);
  return (hooks.find((hook) => hook.kind === 'module') ?? hooks[0])?.name ?? embedding.output[0];
}

/** `[c, y, x]` for images, `[i]` for flat features, `[i, j]` otherwise. */
function featureName(dims: number[], flat: number): string {
  const index: number[] = [];
  for (let axis = dims.length - 1; axis >= 0; axis--) {
    index.unshift(flat % dims[axis]);
    flat = Math.floor(flat / dims[axis]);
  }
  return `[${index.join(', ')}]`;
}

export interface PatchingComparison {
  /** The mean score of the label class at the last position, on the clean and the corrupted inputs. */
  metric: string;
  clean: number;
  corrupted: number;
  examples: number;
  rows: { hook: string; position: number; estimate: number; exact: number }[];
  /** Pearson correlation of estimate and exact over the rows. */
  correlation: number;
  meanAbsError: number;
}

/** `onProgress` hears the exact sweep's runs (patch-sweep.ts); the estimate is one backward pass. */
export async function comparePatching(
  model: Model,
  clean: Feeds,
  corrupted: Feeds,
  hooks: string[],
  labels: Tensor,
  options: ProgressOptions = {},
): Promise<PatchingComparison> {
  const metric = targetLogitMetric(labels);
  // The metric reads the last position only.
  const exact = await patchSweep(model, clean, corrupted, hooks, 'all', metric, {
    lastPosition: true,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  const estimates = await attributionPatching(model, clean, corrupted, hooks, labels);
  const rows = hooks.flatMap((hook, h) =>
    exact.positions.map((position, p) => ({
      hook,
      position,
      estimate: estimates[h][p],
      exact: exact.effects[h][p],
    })),
  );
  return {
    metric: 'mean score of the label class at the last position',
    clean: exact.cleanMetric,
    corrupted: exact.corruptedMetric,
    examples: labels.dims[0],
    rows,
    correlation: pearson(
      rows.map((r) => r.estimate),
      rows.map((r) => r.exact),
    ),
    meanAbsError: rows.reduce((sum, r) => sum + Math.abs(r.estimate - r.exact), 0) / rows.length,
  };
}

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n,
    mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb || 1);
}
