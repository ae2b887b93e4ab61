/**
 * The first study teardown runs on a classifier: which units of a hook fire most, and what the
 * model loses when they are ablated — against the same number of randomly chosen units, so the
 * effect can be told from the mere loss of capacity.
 */
import type { Intervention } from '../graph/interventions.ts';
import { ablate } from '../graph/interventions.ts';
import type { Model } from '../runtime/model.ts';
import { run, type RunOptions } from '../runtime/run.ts';
import { seededRandom } from '../random.ts';
import { wilsonInterval } from '../stats.ts';
import { elementCount, sliceFeeds, type Feeds, type Tensor } from '../tensor.ts';
import { unitAxisOf } from '../graph/units.ts';

export interface Classification {
  /** Predicted class per example (argmax of the first output's last axis). */
  predictions: Int32Array;
  correct: number;
  examples: number;
  accuracy: number;
  /** 95% Wilson interval of the accuracy. */
  interval: [number, number];
  /** Mean of each unit over examples (and positions), per cached hook. */
  unitMeans: Map<string, Float64Array>;
}

/** Runs the labelled examples in batches with the given interventions; caches `hooks` only to average their units. */
export async function classify(
  model: Model,
  feeds: Feeds,
  labels: Tensor,
  options: { hooks?: string[]; interventions?: Intervention[]; batchSize?: number } = {},
): Promise<Classification> {
  const examples = labels.dims[0];
  const batchSize = options.batchSize ?? 512;
  const predictions = new Int32Array(examples);
  const sums = new Map<string, Float64Array>();
  const runOptions: RunOptions = {
    cache: options.hooks,
    interventions: options.interventions,
    batchSize,
  };
  for (let start = 0; start < examples; start += batchSize) {
    const end = Math.min(examples, start + batchSize);
    const { outputs, cache } = await run(model, sliceFeeds(feeds, start, end), {
      ...runOptions,
      exampleOffset: start,
    });
    argmaxRows(outputs[model.outputNames[0]], predictions, start);
    for (const [hook, values] of cache)
      accumulateUnits(sums, hook, values, unitAxisOf(model.hooks.get(hook), values.dims.length));
  }
  let correct = 0;
  for (let i = 0; i < examples; i++) if (predictions[i] === Number(labels.data[i])) correct++;
  const unitMeans = new Map(
    [...sums].map(([hook, sum]) => [hook, sum.map((value) => value / examples)]),
  );
  return {
    predictions,
    correct,
    examples,
    accuracy: correct / examples,
    interval: wilsonInterval(correct, examples),
    unitMeans,
  };
}

/** Unit indices ordered by mean activation, highest first. */
export function mostActiveUnits(means: Float64Array, count: number): number[] {
  return [...means.keys()].sort((a, b) => means[b] - means[a]).slice(0, count);
}

/** `count` distinct units of `total`, drawn with a seed. */
export function randomUnits(total: number, count: number, seed: number): number[] {
  const random = seededRandom(seed);
  const order = [...Array(total).keys()];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.slice(0, count).sort((a, b) => a - b);
}

export const zeroAblation = (hook: string, units: number[]): Intervention[] => [
  ablate(hook, 'zero', { units }),
];

function argmaxRows(logits: Tensor, into: Int32Array, offset: number): void {
  const classes = logits.dims[logits.dims.length - 1];
  const rows = logits.data.length / classes;
  for (let row = 0; row < rows; row++) {
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (Number(logits.data[row * classes + c]) > Number(logits.data[row * classes + best]))
        best = c;
    into[offset + row] = best;
  }
}

/** Adds each unit's values (summed over every axis but the unit axis, divided by the positions per example). */
function accumulateUnits(
  sums: Map<string, Float64Array>,
  hook: string,
  values: Tensor,
  axis: number,
): void {
  const units = values.dims[axis];
  const inner = elementCount(values.dims.slice(axis + 1));
  const perExample = elementCount(values.dims.slice(1)) / units;
  const sum = sums.get(hook) ?? new Float64Array(units);
  for (let i = 0; i < values.data.length; i++)
    sum[Math.floor(i / inner) % units] += Number(values.data[i]) / perExample;
  sums.set(hook, sum);
}
