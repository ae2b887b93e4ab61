/**
 * Attribution of a class score to units (integrated gradients: integrated-gradients.ts).
 *
 * Gradient × activation: for each unit of a hook, Σ_positions ∂F/∂a · a, averaged over examples —
 * the first-order estimate of how much the score would drop if the unit were zeroed.
 */
import { GradientProgram } from '../autodiff/gradients.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache, type Dataset } from '../runtime/run.ts';
import { unitAxisOf } from '../graph/units.ts';
import { elementCount, sliceRows, type Tensor } from '../tensor.ts';

/** Mean over examples of Σ_positions ∂score/∂a · a per unit of each hook. */
export async function gradientTimesActivation(
  model: Model,
  feeds: Record<string, Tensor>,
  targetClass: Tensor,
  hooks: string[],
): Promise<Map<string, Float64Array>> {
  const data = { examples: targetClass.dims[0], read: () => feeds };
  return datasetGradientTimesActivation(model, data, targetClass, hooks, targetClass.dims[0]);
}

/** gradientTimesActivation over a dataset streamed in batches (one gradient graph for every batch). */
export async function datasetGradientTimesActivation(
  model: Model,
  data: Dataset,
  targetClass: Tensor,
  hooks: string[],
  batchSize: number,
  positions: 'all' | 'last' = 'all',
): Promise<Map<string, Float64Array>> {
  const first = data.read(0, Math.min(batchSize, data.examples));
  const program = await GradientProgram.build(
    model,
    first,
    sliceRows(targetClass, 0, Math.min(batchSize, data.examples)),
    { loss: { kind: 'score', positions }, wrt: hooks },
  );
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
        for (let i = 0; i < activation.data.length; i++)
          perUnit[Math.floor(i / inner) % units] +=
            (Number(activation.data[i]) * Number(gradient.data[i])) / data.examples;
        sums.set(hook, perUnit);
      }
    }
  } finally {
    await program.release();
  }
  return sums;
}
