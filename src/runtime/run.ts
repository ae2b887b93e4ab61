/**
 * Running a model with hooks read (run with cache) and changed (interventions), each in one
 * onnxruntime run of an edited graph.
 *
 *   const { outputs, cache } = await runWithCache(model, { input }, ['blocks.*']);
 *   const ablated = await runWithInterventions(model, { input }, [ablate('act1', 'zero', { units: [0, 3] })]);
 */
import type { EditPlan, Rewrite } from '../graph/edit.ts';
import type { Hook } from '../graph/hooks.ts';
import { InterventionError } from '../errors.ts';
import {
  compileIntervention,
  type CompiledIntervention,
  type Intervention,
} from '../graph/interventions.ts';
import {
  batchAxisOf,
  batchLayoutOf,
  dimsAtBatch,
  examplesFirst,
  fromExamplesFirst,
  type BatchLayout,
} from '../graph/units.ts';
import { hashIndex } from '../random.ts';
import { RowSum } from '../tensor-math.ts';
import {
  concatRows,
  moveAxis,
  sliceFeeds,
  sliceRows,
  type DType,
  type Feeds,
  type Tensor,
} from '../tensor.ts';
import { probeHookShapes } from './probe.ts';
import { markRunValues } from './release.ts';
import { runInSegments } from './segmented-run.ts';
import type { Model } from './model.ts';

export interface RunResult {
  /** The model's own outputs, by graph output name. */
  outputs: Record<string, Tensor>;
  /** Cached hooks by hook name (values after any intervention on them). */
  cache: Map<string, Tensor>;
}

export interface RunOptions {
  /** Hook names or glob patterns to cache. */
  cache?: readonly string[];
  interventions?: readonly Intervention[] | PreparedInterventions;
  /** Index of the first example of `feeds` in the whole dataset, so resample draws do not depend on batching. */
  exampleOffset?: number;
  /** Examples per run when computing reference statistics. */
  batchSize?: number;
}

export async function runWithCache(
  model: Model,
  feeds: Feeds,
  patterns: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return run(model, feeds, { ...options, cache: patterns });
}

export async function runWithInterventions(
  model: Model,
  feeds: Feeds,
  interventions: readonly Intervention[] | PreparedInterventions,
  options: RunOptions = {},
): Promise<RunResult> {
  return run(model, feeds, { ...options, interventions });
}

export async function run(
  model: Model,
  feeds: Feeds,
  options: RunOptions = {},
): Promise<RunResult> {
  const batch = model.checkFeeds(feeds);
  const hooks = options.cache ? model.hooks.match(options.cache) : [];
  const prepared =
    options.interventions instanceof PreparedInterventions
      ? options.interventions
      : await prepareInterventions(model, options.interventions ?? [], feeds, options);
  const { rewrites, inputTypes, extraFeeds } = await prepared.compile(
    feeds,
    batch,
    options.exampleOffset ?? 0,
  );
  // Unedited values that are not activations come from the shape-only session (Model.staticValues).
  const rewritten = new Set(rewrites.map((rewrite) => rewrite.value));
  const isStatic = (hook: Hook) =>
    !model.graph.isActivation(hook.value) && !rewritten.has(hook.value);
  const plan: EditPlan = {
    expose: hooks.filter((hook) => !isStatic(hook)).map((hook) => hook.value),
    rewrites,
    inputTypes,
  };
  const { results, outputOf } = await runPlan(model, plan, { ...feeds, ...extraFeeds }, batch);
  markRunValues(Object.values(results));
  const statics = await model.staticValues(
    [...new Set(hooks.filter(isStatic).map((hook) => hook.value))],
    feeds,
  );
  const outputs: Record<string, Tensor> = {};
  for (const name of model.outputNames) outputs[name] = results[name];
  const cache = new Map<string, Tensor>();
  for (const hook of hooks) {
    const output = outputOf.get(hook.value);
    cache.set(hook.name, statics[hook.value] ?? (output ? results[output] : feeds[hook.value]));
  }
  return { outputs, cache };
}

/**
 * The model's outputs and the plan's exposed values. A large cache without edits comes back
 * segment by segment, held once (runtime/segmented-run.ts); anything else in one run.
 */
async function runPlan(
  model: Model,
  plan: EditPlan,
  feeds: Feeds,
  batch: number,
): Promise<{ results: Record<string, Tensor>; outputOf: Map<string, string> }> {
  if (plan.rewrites.length === 0) {
    const exposed = plan.expose.filter((value) => !(value in feeds));
    const results = await runInSegments(
      model,
      feeds,
      [...new Set([...model.outputNames, ...exposed])],
      batch,
    );
    if (results) return { results, outputOf: new Map(exposed.map((value) => [value, value])) };
  }
  const { session, outputOf } = await model.prepare(plan);
  const wanted = [...new Set([...model.outputNames, ...outputOf.values()])];
  return { results: await session.run(feeds, wanted), outputOf };
}

/**
 * Interventions with their reference statistics computed once (means, resample pools), ready to
 * be compiled for any batch: build with prepareInterventions and reuse across the batches of a dataset.
 */
export class PreparedInterventions {
  constructor(
    private readonly model: Model,
    readonly interventions: readonly Intervention[],
    private readonly hooks: Hook[],
    private readonly means: (Tensor | undefined)[],
    private readonly pools: (Pool | undefined)[],
  ) {}

  /** The same preparation with some interventions replaced (e.g. patch values for another batch). */
  with(interventions: readonly Intervention[]): PreparedInterventions {
    return new PreparedInterventions(this.model, interventions, this.hooks, this.means, this.pools);
  }

  /** Each intervention as a graph rewrite plus its feeds, for a batch of `batch` examples of `feeds`' shape. */
  async compileEach(
    feeds: Feeds,
    batch: number,
    exampleOffset: number,
  ): Promise<
    (CompiledIntervention & { hook: Hook; dims: number[]; batchAxis: number | undefined })[]
  > {
    if (this.interventions.length === 0) return [];
    const shapes = await probeHookShapes(this.model, feeds, this.hooks);
    return this.interventions.map((intervention, slot) => {
      const hook = this.hooks[slot];
      const dims = dimsAtBatch(shapes.get(hook.name)!, batch);
      const batchAxis = batchAxisOf(shapes.get(hook.name)!);
      const pool = this.pools[slot];
      const donors = intervention.kind === 'ablate' ? intervention.donors : undefined;
      const resampled =
        pool &&
        drawRows(
          pool,
          batch,
          exampleOffset,
          intervention.kind === 'ablate' ? (intervention.seed ?? 0) : 0,
          donors,
        );
      return {
        ...compileIntervention(
          intervention,
          { hook, dims, batchAxis, mean: this.means[slot], resampled },
          slot,
        ),
        hook,
        dims,
        batchAxis,
      };
    });
  }

  async compile(
    feeds: Feeds,
    batch: number,
    exampleOffset: number,
  ): Promise<{ rewrites: Rewrite[]; inputTypes: Map<string, DType>; extraFeeds: Feeds }> {
    const rewrites: Rewrite[] = [];
    const inputTypes = new Map<string, DType>();
    const extraFeeds: Feeds = {};
    for (const compiled of await this.compileEach(feeds, batch, exampleOffset)) {
      rewrites.push(compiled.rewrite);
      for (const [name, value] of Object.entries(compiled.feeds)) {
        extraFeeds[name] = value;
        inputTypes.set(name, value.dtype);
      }
    }
    return { rewrites, inputTypes, extraFeeds };
  }
}

/** A hook's values over reference examples: examples first (`layout` says how), or a value without a batch axis as it is. */
type Pool = { values: Tensor; layout: BatchLayout | undefined };

/**
 * Resolves each intervention's hook and computes what mean and resample ablations need from
 * their reference examples (`reference`, or `defaultReference` when an intervention names none),
 * streaming them through the model in batches.
 */
export async function prepareInterventions(
  model: Model,
  interventions: readonly Intervention[],
  defaultReference: Feeds | Dataset,
  options: { batchSize?: number } = {},
): Promise<PreparedInterventions> {
  const hooks = interventions.map((intervention) => model.hooks.resolve(intervention.hook));
  const means: (Tensor | undefined)[] = [];
  const pools: (Pool | undefined)[] = [];
  // One pass over a reference per (hook, statistic), however many interventions share it.
  const computed = new Map<object, Map<string, Pool>>();
  for (const [slot, intervention] of interventions.entries()) {
    const needs =
      intervention.kind === 'ablate' && intervention.method !== 'zero'
        ? intervention.method
        : undefined;
    if (!needs) {
      means.push(undefined);
      pools.push(undefined);
      continue;
    }
    const reference =
      (intervention.kind === 'ablate' && intervention.reference) || defaultReference;
    const known = computed.get(reference) ?? new Map<string, Pool>();
    computed.set(reference, known);
    const key = `${needs}|${hooks[slot].name}`;
    if (!known.has(key))
      known.set(
        key,
        await hookOverDataset(
          model,
          asDataset(reference),
          hooks[slot],
          options.batchSize ?? 256,
          needs,
        ),
      );
    means.push(needs === 'mean' ? known.get(key)!.values : undefined);
    pools.push(needs === 'resample' ? known.get(key) : undefined);
  }
  return new PreparedInterventions(model, interventions, hooks, means, pools);
}

/**
 * The hook's mean over the reference examples (per position: only the batch axis is averaged,
 * and kept with size 1), or all its values with the examples first (for resampling). A value
 * without a batch axis is the same for every example: its mean, and every draw, is itself.
 */
async function hookOverDataset(
  model: Model,
  reference: Dataset,
  hook: Hook,
  batchSize: number,
  want: 'mean' | 'resample',
): Promise<Pool> {
  const first = reference.read(0, Math.min(reference.examples, 1));
  const layout = batchLayoutOf((await probeHookShapes(model, first, [hook])).get(hook.name)!);
  if (!layout)
    return {
      values: (await runWithCache(model, first, [hook.name])).cache.get(hook.name)!,
      layout,
    };
  const sum = new RowSum();
  const rows: Tensor[] = [];
  for (let start = 0; start < reference.examples; start += batchSize) {
    const batch = reference.read(start, Math.min(reference.examples, start + batchSize));
    const { cache } = await runWithCache(model, batch, [hook.name]);
    const values = examplesFirst(cache.get(hook.name)!, layout);
    if (want === 'mean') sum.add(values);
    else rows.push(values);
  }
  if (want === 'resample') return { values: concatRows(rows), layout };
  return {
    values: moveAxis(sum.mean(hook.dtype === 'float64' ? 'float64' : 'float32'), 0, layout.axis),
    layout,
  };
}

/**
 * Example i of the result is pool example donors[exampleOffset + i], or hash(seed, exampleOffset
 * + i) mod poolSize without donors, laid out as the hook lays out its examples; a pool without a
 * batch axis is returned as is.
 */
function drawRows(
  pool: Pool,
  batch: number,
  exampleOffset: number,
  seed: number,
  donors?: readonly number[],
): Tensor {
  const layout = pool.layout;
  if (!layout) return pool.values;
  const poolSize = pool.values.dims[0] / layout.perExample;
  const drawn = concatRows(
    Array.from({ length: batch }, (_, row) => {
      const example = exampleOffset + row;
      const index = donors ? donors[example] : hashIndex(seed, example) % poolSize;
      if (!Number.isInteger(index) || index < 0 || index >= poolSize) {
        throw new InterventionError(
          `Resample donor for example ${example} is ${index ?? 'missing'}, but the reference has examples 0 to ${poolSize - 1}: give one donor index per example, each within the reference.`,
        );
      }
      return sliceRows(pool.values, index * layout.perExample, (index + 1) * layout.perExample);
    }),
  );
  return fromExamplesFirst(drawn, layout);
}

/** Examples that can be read in row ranges (in memory or streamed from files). */
export interface Dataset {
  examples: number;
  read(start: number, end: number): Feeds;
}

function asDataset(source: Feeds | Dataset): Dataset {
  if (typeof (source as Dataset).read === 'function') return source as Dataset;
  const feeds = source as Feeds;
  return {
    examples: Object.values(feeds)[0]?.dims[0] ?? 0,
    read: (start, end) => sliceFeeds(feeds, start, end),
  };
}
