/**
 * The lower-level run functions of runtime/run.ts (feeds by input name, hooks by pattern) for a
 * library Model or a runtime one, returning library tensors; and readNpy returning one.
 *
 *   const { cache } = await runWithCache(model, { input }, ['act1']);
 */
import { readNpy as readNpyFile } from '../data/npy.ts';
import type { Intervention } from '../graph/interventions.ts';
import { Model as RuntimeModel } from '../runtime/model.ts';
import {
  run as runtimeRun,
  type PreparedInterventions,
  type RunOptions as RuntimeRunOptions,
  type RunResult as RuntimeRunResult,
} from '../runtime/run.ts';
import type { Feeds } from '../tensor.ts';
import type { Model } from './model.ts';
import { Tensor } from './tensor.ts';

export interface RunResult {
  /** The model's outputs by graph output name. */
  outputs: Record<string, Tensor>;
  /** Cached hooks by hook name (after any intervention on them). */
  cache: Map<string, Tensor>;
}

export type { RuntimeRunOptions };

export async function run(
  model: Model | RuntimeModel,
  feeds: Feeds,
  options: RuntimeRunOptions = {},
): Promise<RunResult> {
  return withTensors(
    await runtimeRun(model instanceof RuntimeModel ? model : model.runtime, feeds, options),
  );
}

export function runWithCache(
  model: Model | RuntimeModel,
  feeds: Feeds,
  patterns: readonly string[],
  options: RuntimeRunOptions = {},
): Promise<RunResult> {
  return run(model, feeds, { ...options, cache: patterns });
}

export function runWithInterventions(
  model: Model | RuntimeModel,
  feeds: Feeds,
  interventions: readonly Intervention[] | PreparedInterventions,
  options: RuntimeRunOptions = {},
): Promise<RunResult> {
  return run(model, feeds, { ...options, interventions });
}

/** A .npy file as a library tensor. */
export function readNpy(path: string): Tensor {
  return Tensor.from(readNpyFile(path));
}

function withTensors(result: RuntimeRunResult): RunResult {
  return {
    outputs: Object.fromEntries(
      Object.entries(result.outputs).map(([name, value]) => [name, Tensor.from(value)]),
    ),
    cache: new Map([...result.cache].map(([name, value]) => [name, Tensor.from(value)])),
  };
}
