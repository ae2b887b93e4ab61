/**
 * Unit importance: how much a metric drops when a unit is mean-ablated (replaced by its mean over
 * the dataset, per position), averaged over the examples, with a 95% confidence interval from the
 * per-example effects (mean ± 1.96·sd/√n). By default the metric is −loss, so importance is the
 * mean increase in loss. Each batch runs every unit's ablation stacked along the batch axis
 * (sweep.ts), plus one for the whole hook.
 */
import { patch, type Intervention } from '../graph/interventions.ts';
import type { Hook } from '../graph/hooks.ts';
import type { Model } from '../runtime/model.ts';
import { run, type Dataset } from '../runtime/run.ts';
import { sliceRows, type Tensor } from '../tensor.ts';
import { perExample, type MetricSpec } from './metric.ts';
import { sweepOutputs } from './sweep.ts';

export interface Effect {
  /** Mean drop of the metric when ablated (clean − ablated). */
  importance: number;
  interval: [number, number];
}

/** Running mean and variance of per-example effects (Welford). */
class EffectAccumulator {
  private n = 0;
  private mean = 0;
  private m2 = 0;

  add(value: number): void {
    const delta = value - this.mean;
    this.n++;
    this.mean += delta / this.n;
    this.m2 += delta * (value - this.mean);
  }

  result(): Effect {
    const half = this.n > 1 ? 1.96 * Math.sqrt(this.m2 / (this.n - 1) / this.n) : 0;
    return { importance: this.mean, interval: [this.mean - half, this.mean + half] };
  }
}

export interface HookImportance {
  hook: string;
  units: Effect[];
  wholeHook: Effect;
}

/**
 * Importance of every unit of each hook. `means[hook]`: the hook's mean over the dataset,
 * [1, ...dims], the value mean ablation puts in.
 */
export async function unitImportance(model: Model, data: Dataset, labels: Tensor | undefined, hooks: Hook[], means: Map<string, Tensor>, unitCounts: Map<string, number>,
  metric: MetricSpec, options: { batchSize: number; unitAxis?: number; onBatch?: () => void }): Promise<HookImportance[]> {
  const accumulators = hooks.map((hook) => ({ units: Array.from({ length: unitCounts.get(hook.name)! }, () => new EffectAccumulator()), whole: new EffectAccumulator() }));
  for (let start = 0; start < data.examples; start += options.batchSize) {
    const end = Math.min(data.examples, start + options.batchSize);
    const feeds = data.read(start, end);
    const batchLabels = labels && sliceRows(labels, start, end);
    const clean = perExample(metric, (await run(model, feeds)).outputs[model.outputNames[0]], batchLabels);
    for (const [h, hook] of hooks.entries()) {
      const mean = means.get(hook.name)!;
      const variants: Intervention[][] = [
        ...accumulators[h].units.map((_, unit) => [patch(hook.name, mean, { units: [unit], unitAxis: options.unitAxis })]),
        [patch(hook.name, mean)],
      ];
      await sweepOutputs(model, feeds, variants, (variant, output) => {
        const ablated = perExample(metric, output, batchLabels);
        const target = variant < accumulators[h].units.length ? accumulators[h].units[variant] : accumulators[h].whole;
        for (let k = 0; k < ablated.length; k++) target.add(clean[k] - ablated[k]);
      });
    }
    options.onBatch?.();
  }
  return hooks.map((hook, h) => ({ hook: hook.name, units: accumulators[h].units.map((a) => a.result()), wholeHook: accumulators[h].whole.result() }));
}
