/**
 * Attribution patching (Nanda 2023; Syed et al. 2023): the first-order estimate of activation
 * patching. Patching hook h at position p from the clean value a to the corrupted value a′ changes
 * a metric M by about (a′ − a)·∂M/∂a at the clean run — one backward pass for every (hook,
 * position) instead of one forward each. M here is the mean score of the target class at the last
 * position, the metric `patchSweep` measures exactly with `targetLogitMetric`, so the two can be
 * reported side by side.
 */
import { computeGradients } from '../autodiff/gradients.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { elementCount, type Feeds, type Tensor } from '../tensor.ts';

/** Mean over examples of score[last position, target[example]] ([batch, seq, classes] scores). */
export function targetLogitMetric(target: Tensor): (scores: Tensor) => number {
  return (scores) => {
    const [batch, seq, classes] = scores.dims;
    let sum = 0;
    for (let b = 0; b < batch; b++)
      sum += Number(scores.data[(b * seq + seq - 1) * classes + Number(target.data[b])]);
    return sum / batch;
  };
}

/** estimates[h][p]: M(clean) + the linear estimate of patching hooks[h] at position p. */
export async function attributionPatching(
  model: Model,
  clean: Feeds,
  corrupted: Feeds,
  hooks: string[],
  target: Tensor,
): Promise<number[][]> {
  const { gradients } = await computeGradients(model, clean, target, {
    loss: { kind: 'score', positions: 'last' },
    wrt: hooks,
  });
  const cleanRun = await runWithCache(model, clean, hooks);
  const corruptedRun = await runWithCache(model, corrupted, hooks);
  const base = targetLogitMetric(target)(cleanRun.outputs[model.outputNames[0]]);
  return hooks.map((hook) => {
    const gradient = gradients.get(hook)!; // ∂(Σ_examples score)/∂a
    const a = cleanRun.cache.get(hook)!;
    const b = corruptedRun.cache.get(hook)!;
    const [batch, seq] = a.dims;
    const width = elementCount(a.dims.slice(2));
    return Array.from({ length: seq }, (_, position) => {
      let change = 0;
      for (let example = 0; example < batch; example++) {
        const offset = (example * seq + position) * width;
        for (let k = 0; k < width; k++)
          change +=
            (Number(b.data[offset + k]) - Number(a.data[offset + k])) *
            Number(gradient.data[offset + k]);
      }
      return base + change / batch;
    });
  });
}
