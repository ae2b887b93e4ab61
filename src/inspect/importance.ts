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
import { runWithCache, type Dataset } from '../runtime/run.ts';
import { probeHookShapes } from '../runtime/probe.ts';
import type { Session } from '../runtime/session.ts';
import { unitAxisOf } from '../graph/units.ts';
import { elementCount, repeatRows, sliceRows, type Feeds, type Tensor } from '../tensor.ts';
import { perExample, type MetricSpec } from './metric.ts';
import { stackedRows, sweepOutputs } from './sweep.ts';

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
export async function unitImportance(
  model: Model,
  data: Dataset,
  labels: Tensor | undefined,
  hooks: Hook[],
  means: Map<string, Tensor>,
  unitCounts: Map<string, number>,
  metric: MetricSpec,
  options: { batchSize: number; unitAxis?: number; onBatch?: () => void },
): Promise<HookImportance[]> {
  const accumulators = hooks.map((hook) => ({
    units: Array.from({ length: unitCounts.get(hook.name)! }, () => new EffectAccumulator()),
    whole: new EffectAccumulator(),
  }));
  const outputName = model.outputNames[0];
  // Where a hook's downstream part can run alone (graph/downstream.ts), only that part is recomputed.
  // Sessions are built when first needed, one at a time (each holds its part's weights).
  const partInputs = hooks.map((hook) => model.downstreamInputs(hook.value, outputName));
  const cutValues = [...new Set(partInputs.flatMap((inputs) => inputs ?? []))];
  const cutShapes = await probeHookShapes(
    model,
    data.read(0, 1),
    cutValues.map((value) => model.hooks.resolve(value)),
  );
  // Cut values must hold their examples first, or be shape arithmetic (recomputed at the stacked size).
  const stacks = (value: string) =>
    /^batch/.test(String(cutShapes.get(value)?.[0])) || !model.graph.isActivation(value);
  const stackable = partInputs.map(
    (inputs) => inputs !== undefined && options.unitAxis === undefined && inputs.every(stacks),
  );
  for (let start = 0; start < data.examples; start += options.batchSize) {
    const end = Math.min(data.examples, start + options.batchSize);
    const feeds = data.read(start, end);
    const batchLabels = labels && sliceRows(labels, start, end);
    const cleanRun = await runWithCache(model, feeds, cutValues);
    const clean = perExample(metric, cleanRun.outputs[outputName], batchLabels);
    for (const [h, hook] of hooks.entries()) {
      const mean = means.get(hook.name)!;
      const units = accumulators[h].units.length;
      const record = (variant: number, output: Tensor) => {
        const ablated = perExample(metric, output, batchLabels, cleanRun.outputs[outputName]);
        const target = variant < units ? accumulators[h].units[variant] : accumulators[h].whole;
        for (let k = 0; k < ablated.length; k++) target.add(clean[k] - ablated[k]);
      };
      if (stackable[h]) {
        const part = (await model.downstream(hook.value, outputName))!;
        await ablateDownstream(
          model,
          part,
          hook,
          cleanRun.cache,
          feeds,
          mean,
          units,
          outputName,
          record,
        );
        continue;
      }
      const variants: Intervention[][] = [
        ...accumulators[h].units.map((_, unit) => [
          patch(hook.name, mean, { units: [unit], unitAxis: options.unitAxis }),
        ]),
        [patch(hook.name, mean)],
      ];
      await sweepOutputs(model, feeds, variants, record);
    }
    options.onBatch?.();
  }
  return hooks.map((hook, h) => ({
    hook: hook.name,
    units: accumulators[h].units.map((a) => a.result()),
    wholeHook: accumulators[h].whole.result(),
  }));
}

/**
 * Runs the downstream part once per chunk of variants: variant u < units has unit u of the hook
 * replaced by its mean, variant `units` has the whole hook replaced; the other cut values are the
 * clean ones, repeated.
 */
async function ablateDownstream(
  model: Model,
  part: { session: Session; inputs: string[] },
  hook: Hook,
  clean: Map<string, Tensor>,
  feeds: Feeds,
  mean: Tensor,
  units: number,
  outputName: string,
  record: (variant: number, output: Tensor) => void,
): Promise<void> {
  const value = hook.value;
  const batch = model.checkFeeds(feeds);
  const statics = part.inputs.filter((input) => !model.graph.isActivation(input));
  const hookValue = clean.get(value)!;
  const axis = unitAxisOf(hook, hookValue.dims.length);
  const inner = elementCount(hookValue.dims.slice(axis + 1));
  const perExample = elementCount(hookValue.dims.slice(1));
  const perRun = Math.max(1, Math.floor(stackedRows(perExample) / batch));
  const variants = units + 1;
  for (let first = 0; first < variants; first += perRun) {
    const count = Math.min(perRun, variants - first);
    const partFeeds: Record<string, Tensor> = await model.staticValuesAt(
      statics,
      feeds,
      count * batch,
    );
    for (const input of part.inputs)
      if (input !== value && !(input in partFeeds))
        partFeeds[input] = repeatRows(clean.get(input)!, count);
    const stacked = repeatRows(hookValue, count);
    const data = stacked.data as Float32Array;
    for (let v = 0; v < count; v++) {
      const unit = first + v; // === units: the whole hook
      for (let example = 0; example < batch; example++) {
        const base = (v * batch + example) * perExample;
        for (let offset = 0; offset < perExample; offset++) {
          if (unit === units || Math.floor(offset / inner) % units === unit)
            data[base + offset] = Number(mean.data[offset]);
        }
      }
    }
    partFeeds[value] = stacked;
    const output = (await part.session.run(partFeeds, [outputName]))[outputName];
    const rows = output.dims[0] / count;
    for (let v = 0; v < count; v++) record(first + v, sliceRows(output, v * rows, (v + 1) * rows));
  }
}
