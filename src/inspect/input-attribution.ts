/**
 * What `teardown inspect` reports of two gradient methods over a sample of the data:
 *   integrated gradients of the label's score with respect to the input (attribution.ts), summed
 *   up per input feature (mean |attribution| and mean signed attribution; per channel for images),
 *   with the completeness error that checks them;
 *   attribution patching (attribution-patching.ts) next to the exact activation patching it
 *   estimates, per hook and position of a sequence model, from clean to corrupted inputs.
 */
import { InputError } from '../errors.ts';
import type { Model } from '../runtime/model.ts';
import { RowSum } from '../tensor-math.ts';
import { elementCount, type Feeds, type Tensor } from '../tensor.ts';
import { integratedGradients } from './attribution.ts';
import { attributionPatching, targetLogitMetric } from './attribution-patching.ts';
import { patchSweep } from './patch-sweep.ts';

export interface InputAttributionSummary {
  method: 'integrated-gradients';
  baseline: 'zero' | 'mean';
  steps: number;
  examples: number;
  /** Largest |Σ attributions − (F(x) − F(baseline))| relative to the mean |F(x) − F(baseline)|. */
  completenessError: number;
  /** The input features with the largest mean |attribution|, most first. */
  features: { feature: string; meanAbs: number; mean: number }[];
  /** Images: each channel's share of the total |attribution|. */
  channels?: number[];
}

export async function inputAttribution(model: Model, inputs: Tensor, labels: Tensor, options: { baseline: 'zero' | 'mean'; steps: number; featureNames?: string[] }): Promise<InputAttributionSummary> {
  const input = model.inputs[0].name;
  if (inputs.dtype !== 'float32') throw new InputError(`Integrated gradients need a float input; '${input}' is ${inputs.dtype} (token models: use --fourier or --circuit).`);
  let baseline: Tensor | undefined;
  if (options.baseline === 'mean') {
    const sum = new RowSum();
    sum.add(inputs);
    baseline = sum.mean('float32');
  }
  const ig = await integratedGradients(model, input, inputs, labels, { baseline, steps: options.steps });
  const n = inputs.dims[0];
  const size = elementCount(inputs.dims.slice(1));
  const meanAbs = new Float64Array(size), mean = new Float64Array(size);
  for (let i = 0; i < ig.attributions.data.length; i++) {
    const value = Number(ig.attributions.data[i]);
    meanAbs[i % size] += Math.abs(value) / n;
    mean[i % size] += value / n;
  }
  const name = (k: number) => options.featureNames?.[k] ?? featureName(inputs.dims.slice(1), k);
  const features = [...meanAbs.keys()].sort((a, b) => meanAbs[b] - meanAbs[a]).slice(0, 20).map((k) => ({ feature: name(k), meanAbs: meanAbs[k], mean: mean[k] }));
  let channels: number[] | undefined;
  if (inputs.dims.length === 4) {
    const plane = inputs.dims[2] * inputs.dims[3];
    const total = meanAbs.reduce((a, b) => a + b, 0) || 1;
    channels = Array.from({ length: inputs.dims[1] }, (_, c) => meanAbs.subarray(c * plane, (c + 1) * plane).reduce((a, b) => a + b, 0) / total);
  }
  return { method: 'integrated-gradients', baseline: options.baseline, steps: options.steps, examples: n, completenessError: ig.completenessError, features, channels };
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

export async function comparePatching(model: Model, clean: Feeds, corrupted: Feeds, hooks: string[], labels: Tensor): Promise<PatchingComparison> {
  const metric = targetLogitMetric(labels);
  const exact = await patchSweep(model, clean, corrupted, hooks, 'all', metric, { lastPosition: true }); // the metric reads the last position only
  const estimates = await attributionPatching(model, clean, corrupted, hooks, labels);
  const rows = hooks.flatMap((hook, h) => exact.positions.map((position, p) => ({ hook, position, estimate: estimates[h][p], exact: exact.effects[h][p] })));
  return { metric: 'mean score of the label class at the last position', clean: exact.cleanMetric, corrupted: exact.corruptedMetric, examples: labels.dims[0], rows, correlation: pearson(rows.map((r) => r.estimate), rows.map((r) => r.exact)), meanAbsError: rows.reduce((sum, r) => sum + Math.abs(r.estimate - r.exact), 0) / rows.length };
}

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n, mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) ** 2; sbb += (b[i] - mb) ** 2; }
  return sab / Math.sqrt(saa * sbb || 1);
}
