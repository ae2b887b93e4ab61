/**
 * `teardown inspect` as a library call: a census of every unit of the chosen hooks over the
 * examples, their roles, importance (mean ablation), and — with options — a circuit and the units
 * that carry an attribute under a counterfactual (audit/attribute-carriers.ts).
 *
 *   const result = await inspect(model, images, { labels, onProgress: (e) => log(`${e.done}/${e.total}`) });
 *   result.units[0];      // the most important unit: hook, unit, census, role, effect
 *   const { carriers } = await inspect(model, images, { counterfactuals: ['color:channel-swap'] });
 */
import { attributeCarriers, type AttributeCarriers } from '../audit/attribute-carriers.ts';
import { DEFAULT_CARRIER_FRACTION } from '../inspect/carriers.ts';
import type { InspectOptions, InspectResult } from '../inspect/inspect.ts';
import { inspectModel } from '../inspect/inspect.ts';
import type { Dataset } from '../runtime/run.ts';
import { sliceFeeds } from '../tensor.ts';
import { toFeeds, type Inputs } from './inputs.ts';
import type { Model } from './model.ts';
import { Tensor, type TensorLike } from './tensor.ts';

export type { InspectResult, Dataset, AttributeCarriers };

export interface InspectCallOptions extends Omit<
  InspectOptions,
  'batchSize' | 'attributes' | 'progress'
> {
  /** One label per example (or per position, for sequence models). */
  labels?: TensorLike;
  /** Per-example integer attributes by name. */
  attributes?: Record<string, TensorLike>;
  /** Examples per run (default 256). */
  batchSize?: number;
  /**
   * 'NAME:TRANSFORM' per attribute ('color:channel-swap', 'group:flip'): in every inspected hook,
   * the units whose mean ablation most reduces the prediction flips the transform causes.
   */
  counterfactuals?: string[];
  /** The share of each hook's units searched as carriers, at least one (default 0.1). */
  carrierFraction?: number;
  /** Carriers are searched on the first N examples (default 128, as inspect's --gradient-examples). */
  carrierExamples?: number;
  /** The input the counterfactuals change (default: the model's first). */
  transformInput?: string;
  /** A table's column names, for counterfactuals on a named column. */
  featureNames?: string[];
}

export interface InspectOutput extends InspectResult {
  /** With `counterfactuals`: per counterfactual and hook, the units that carry the attribute. */
  carriers?: AttributeCarriers[];
}

/** `data`: the examples in memory (as `model.run` takes them), or a Dataset read in row ranges. */
export async function inspect(
  model: Model,
  data: Inputs | Dataset,
  options: InspectCallOptions = {},
): Promise<InspectOutput> {
  const {
    labels,
    attributes,
    batchSize,
    counterfactuals,
    carrierFraction,
    carrierExamples,
    transformInput,
    featureNames,
    ...rest
  } = options;
  const dataset = asDataset(model, data);
  const result: InspectOutput = await inspectModel(
    model.runtime,
    dataset,
    labels && Tensor.from(labels),
    {
      ...rest,
      batchSize: batchSize ?? 256,
      attributes:
        attributes &&
        new Map(Object.entries(attributes).map(([name, values]) => [name, Tensor.from(values)])),
    },
  );
  if (!counterfactuals?.length) return result;
  const examples = dataset.read(0, Math.min(dataset.examples, carrierExamples ?? 128));
  const hooks = result.hooks.map((hook) => hook.hook);
  const search = {
    fraction: carrierFraction ?? DEFAULT_CARRIER_FRACTION,
    transformInput,
    featureNames,
    onProgress: rest.onProgress,
    signal: rest.signal,
  };
  return {
    ...result,
    carriers: await attributeCarriers(model.runtime, examples, hooks, counterfactuals, search),
  };
}

function asDataset(model: Model, data: Inputs | Dataset): Dataset {
  if (typeof (data as Dataset).read === 'function') return data as Dataset;
  const feeds = toFeeds(model.runtime, data as Inputs);
  return {
    examples: Object.values(feeds)[0].dims[0],
    read: (start, end) => sliceFeeds(feeds, start, end),
  };
}
