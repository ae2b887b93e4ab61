/**
 * Attribution of a class score to inputs and units.
 *
 * Integrated gradients (Sundararajan et al. 2017): attrᵢ = (xᵢ − x′ᵢ) · ∫₀¹ ∂F(x′ + α(x − x′))/∂xᵢ dα,
 * with F the score of the target class and x′ a baseline (default zeros); the integral by the
 * midpoint rule over `steps` points, all stacked in one gradient run. Completeness — Σᵢ attrᵢ =
 * F(x) − F(x′) — holds up to the quadrature error, which is reported.
 *
 * Gradient × activation: for each unit of a hook, Σ_positions ∂F/∂a · a, averaged over examples —
 * the first-order estimate of how much the score would drop if the unit were zeroed.
 */
import { computeGradients, GradientProgram } from '../autodiff/gradients.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache, type Dataset } from '../runtime/run.ts';
import { unitAxisOf } from '../graph/units.ts';
import { concatRows, elementCount, repeatRows, sliceRows, type Tensor } from '../tensor.ts';

export interface IntegratedGradients {
  /** Same shape as the input. */
  attributions: Tensor;
  /** F(x) − F(x′) per example. */
  scoreDifference: Float64Array;
  /**
   * Largest |Σ attributions − (F(x) − F(x′))| over the examples, relative to the mean |F(x) − F(x′)|
   * (relative to each example's own difference, an example whose score barely moves would make any
   * quadrature error look huge).
   */
  completenessError: number;
}

export async function integratedGradients(model: Model, input: string, x: Tensor, targetClass: Tensor, options: { baseline?: Tensor; steps?: number } = {}): Promise<IntegratedGradients> {
  const steps = options.steps ?? 64;
  const batch = x.dims[0];
  const rowSize = elementCount(x.dims.slice(1));
  const baseline = options.baseline ? (options.baseline.dims[0] === 1 ? repeatRows(options.baseline, batch) : options.baseline) : { ...x, data: new Float32Array(x.data.length) };
  const path = concatRows(Array.from({ length: steps }, (_, k) => {
    const alpha = (k + 0.5) / steps; // midpoint rule
    return { ...x, data: (x.data as Float32Array).map((value, i) => baseline.data[i] as number + alpha * (value - (baseline.data[i] as number))) };
  })); // [steps·batch, ...]
  const { gradients } = await computeGradients(model, { [input]: path }, repeatRows(targetClass, steps), { loss: { kind: 'score' }, wrt: ['input'] });
  const gradient = gradients.get(input)!;
  const attributions = new Float32Array(x.data.length);
  for (let k = 0; k < steps; k++) {
    for (let i = 0; i < x.data.length; i++) attributions[i] += Number(gradient.data[k * x.data.length + i]) / steps;
  }
  for (let i = 0; i < x.data.length; i++) attributions[i] *= (x.data[i] as number) - (baseline.data[i] as number);
  const scoreOf = async (value: Tensor) => targetScores((await runWithCache(model, { [input]: value }, [])).outputs[model.outputNames[0]], targetClass);
  const [atInput, atBaseline] = [await scoreOf(x), await scoreOf(baseline)];
  const scoreDifference = atInput.map((value, b) => value - atBaseline[b]);
  const typical = scoreDifference.reduce((sum, value) => sum + Math.abs(value), 0) / batch;
  let completenessError = 0;
  for (let b = 0; b < batch; b++) {
    let sum = 0;
    for (let i = 0; i < rowSize; i++) sum += attributions[b * rowSize + i];
    completenessError = Math.max(completenessError, Math.abs(sum - scoreDifference[b]) / Math.max(1e-12, typical));
  }
  return { attributions: { dtype: 'float32', dims: [...x.dims], data: attributions }, scoreDifference, completenessError };
}

/** Mean over examples of Σ_positions ∂score/∂a · a per unit of each hook. */
export async function gradientTimesActivation(model: Model, feeds: Record<string, Tensor>, targetClass: Tensor, hooks: string[]): Promise<Map<string, Float64Array>> {
  const data = { examples: targetClass.dims[0], read: () => feeds };
  return datasetGradientTimesActivation(model, data, targetClass, hooks, targetClass.dims[0]);
}

/** gradientTimesActivation over a dataset streamed in batches (one gradient graph for every batch). */
export async function datasetGradientTimesActivation(model: Model, data: Dataset, targetClass: Tensor, hooks: string[], batchSize: number, positions: 'all' | 'last' = 'all'): Promise<Map<string, Float64Array>> {
  const first = data.read(0, Math.min(batchSize, data.examples));
  const program = await GradientProgram.build(model, first, sliceRows(targetClass, 0, Math.min(batchSize, data.examples)), { loss: { kind: 'score', positions }, wrt: hooks });
  const sums = new Map<string, Float64Array>();
  try {
    for (let start = 0; start < data.examples; start += batchSize) {
      const end = Math.min(data.examples, start + batchSize);
      const feeds = start === 0 ? first : data.read(start, end);
      const { gradients } = await program.run(feeds, sliceRows(targetClass, start, end));
      const { cache } = await runWithCache(model, feeds, hooks);
      for (const hook of hooks) {
        const activation = cache.get(hook)!;
        const gradient = gradients.get(hook)!;
        const axis = unitAxisOf(model.hooks.resolve(hook), activation.dims.length);
        const units = activation.dims[axis];
        const inner = elementCount(activation.dims.slice(axis + 1));
        const perUnit = sums.get(hook) ?? new Float64Array(units);
        for (let i = 0; i < activation.data.length; i++) perUnit[Math.floor(i / inner) % units] += (Number(activation.data[i]) * Number(gradient.data[i])) / data.examples;
        sums.set(hook, perUnit);
      }
    }
  } finally {
    await program.release();
  }
  return sums;
}

/** score[b, target[b]] for every example of [batch, classes] scores. */
function targetScores(scores: Tensor, target: Tensor): Float64Array {
  const classes = scores.dims[scores.dims.length - 1];
  return Float64Array.from({ length: scores.dims[0] }, (_, b) => Number(scores.data[b * classes + Number(target.data[b])]));
}
