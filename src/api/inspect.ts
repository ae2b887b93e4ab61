/**
 * `teardown inspect` as a library call: a census of every unit of the chosen hooks over the
 * examples, their roles, importance (mean ablation), and — with options — a circuit.
 *
 *   const result = await inspect(model, images, { labels, onProgress: (e) => log(`${e.done}/${e.total}`) });
 *   result.units[0];      // the most important unit: hook, unit, census, role, effect
 */
import type { InspectOptions, InspectResult } from '../inspect/inspect.ts';
import { inspectModel } from '../inspect/inspect.ts';
import type { Dataset } from '../runtime/run.ts';
import { sliceFeeds } from '../tensor.ts';
import { toFeeds, type Inputs } from './inputs.ts';
import type { Model } from './model.ts';
import { Tensor, type TensorLike } from './tensor.ts';

export type { InspectResult, Dataset };

export interface InspectCallOptions extends Omit<InspectOptions, 'batchSize' | 'attributes' | 'progress'> {
  /** One label per example (or per position, for sequence models). */
  labels?: TensorLike;
  /** Per-example integer attributes by name. */
  attributes?: Record<string, TensorLike>;
  /** Examples per run (default 256). */
  batchSize?: number;
}

/** `data`: the examples in memory (as `model.run` takes them), or a Dataset read in row ranges. */
export function inspect(model: Model, data: Inputs | Dataset, options: InspectCallOptions = {}): Promise<InspectResult> {
  const { labels, attributes, batchSize, ...rest } = options;
  return inspectModel(model.runtime, asDataset(model, data), labels && Tensor.from(labels), {
    ...rest,
    batchSize: batchSize ?? 256,
    attributes: attributes && new Map(Object.entries(attributes).map(([name, values]) => [name, Tensor.from(values)])),
  });
}

function asDataset(model: Model, data: Inputs | Dataset): Dataset {
  if (typeof (data as Dataset).read === 'function') return data as Dataset;
  const feeds = toFeeds(model.runtime, data as Inputs);
  return { examples: Object.values(feeds)[0].dims[0], read: (start, end) => sliceFeeds(feeds, start, end) };
}
