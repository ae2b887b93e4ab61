/**
 * Activation patching sweeps: for every (hook, position), run the clean input with that hook's
 * value at that position replaced by its value on the corrupted input, and measure a metric on
 * the output — TransformerLens's get_act_patch_resid_pre, as a [hook × position] table.
 *
 * All variants run stacked along the batch axis in as few onnxruntime runs as fit `maxRows`:
 * the clean batch is repeated once per variant, and at every swept hook V' = V·keep + add,
 * where keep is 0 only on the rows and position of the variants that patch that hook, and add
 * is the corrupted value there (graph/edit.ts). One edited graph serves every chunk.
 */
import { InterventionError } from '../errors.ts';
import { trackProgress, type ProgressOptions } from '../progress.ts';
import type { Hook } from '../graph/hooks.ts';
import { dimsAtBatch, positionAxis, unitAxisOf } from '../graph/units.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache, type RunResult } from '../runtime/run.ts';
import { probeHookShapes, probeValueShapes } from '../runtime/probe.ts';
import { Emitter } from '../autodiff/emitter.ts';
import { lastPositionOf } from '../autodiff/last-position.ts';
import { valueInfo } from '../graph/builder.ts';
import { derive, pruneUnused } from '../graph/edit.ts';
import { fuseMatMulBias } from '../graph/fuse-matmul-bias.ts';
import {
  allocate,
  concatRows,
  elementCount,
  repeatRows,
  sliceRows,
  shapeString,
  type Feeds,
  type Tensor,
} from '../tensor.ts';
import { stackedPlan, stackedRows, sweepInput } from './sweep.ts';
import { fromPosition, suffixPart, type SuffixPart } from './suffix-part.ts';

/** A metric of the model's first output on one variant's batch, e.g. the mean logit difference. */
export type Metric = (output: Tensor) => number;

/** `onProgress` hears the clean and corrupted runs, then every stacked run of the sweep. */
export interface PatchSweepOptions extends ProgressOptions {
  /** Most stacked rows per onnxruntime run. */
  maxRows?: number;
  /**
   * The metric reads only the output's last sequence position (a next-token logit difference,
   * say): it is given that position alone, [batch, 1, ...], and every run computes only what that
   * position needs — after the last mixing of positions, one position instead of all
   * (autodiff/last-position.ts).
   */
  lastPosition?: boolean;
  /**
   * Where the model is shown causal for a hook (inspect/causal-suffix.ts), recompute only the
   * positions from the patched one on, with the clean run's earlier keys and values (default
   * true). false: every position of the downstream part, as for any other model.
   */
  causalSuffix?: boolean;
}

/**
 * How each hook's variants were computed: `suffix`, the downstream part from the patched position
 * on; `downstream`, the downstream part at every position; `whole`, the whole edited graph.
 */
export type PatchPath = 'suffix' | 'downstream' | 'whole';

export interface PatchSweepResult {
  hooks: string[];
  positions: number[];
  /** effects[h][p]: the metric with hooks[h] patched at positions[p]. */
  effects: number[][];
  cleanMetric: number;
  corruptedMetric: number;
  /** onnxruntime runs used for the sweep itself (excluding the clean and corrupted runs). */
  runs: number;
  /** paths[h]: how hooks[h]'s variants were computed. */
  paths: PatchPath[];
  /** Why hooks that could have been recomputed from the patched position on were not. */
  notes: string[];
}

/** `positions`: sequence positions to patch (negative counts from the end), or 'all'. */
export async function patchSweep(
  full: Model,
  clean: Feeds,
  corrupted: Feeds,
  hookNames: readonly string[],
  positions: readonly number[] | 'all',
  metric: Metric,
  options: PatchSweepOptions = {},
): Promise<PatchSweepResult> {
  const batch = full.checkFeeds(clean);
  const model = options.lastPosition ? await lastPositionModel(full, clean, hookNames) : full;
  if (model.checkFeeds(corrupted) !== batch)
    throw new InterventionError(
      `The clean and corrupted inputs must have the same number of examples (${batch} vs ${model.checkFeeds(corrupted)}).`,
    );
  const hooks = hookNames.map((name) => model.hooks.resolve(name));
  const shapes = await probeHookShapes(model, clean, hooks);
  const dims = hooks.map((hook) => dimsAtBatch(shapes.get(hook.name)!, batch));
  const seqLength = sequenceLength(hooks, dims);
  const chosen =
    positions === 'all'
      ? Array.from({ length: seqLength }, (_, p) => p)
      : positions.map((p) => (p < 0 ? seqLength + p : p));
  if (chosen.some((p) => !Number.isInteger(p) || p < 0 || p >= seqLength)) {
    throw new InterventionError(
      `Positions ${positions} are out of range: the hooks have ${seqLength} positions (0 to ${seqLength - 1}).`,
    );
  }

  const outputName = model.outputNames[0];
  const perRun = Math.max(
    1,
    Math.floor(
      (options.maxRows ??
        stackedRows(Math.max(...dims.map((hookDims) => elementCount(hookDims) / batch)))) / batch,
    ),
  );
  const effects = hooks.map(() => new Array<number>(chosen.length).fill(NaN));
  let runs = 0;
  // Hooks whose downstream part can run alone: only that part is recomputed, fed from one clean run.
  // Each part's session is built when the sweep reaches its hook: building them all at once held
  // every part's encoded bytes at the same time.
  const partInputs = hooks.map((hook) => model.downstreamInputs(hook.value, outputName));
  const cutValues = [...new Set(partInputs.flatMap((inputs) => inputs ?? []))];
  const cutShapes = await probeHookShapes(
    model,
    clean,
    cutValues.map((value) => model.hooks.resolve(value)),
  );
  const batchFirst = (shape: readonly (number | string)[] | undefined) =>
    /^batch/.test(String(shape?.[0]));
  // Cut values must hold their examples first, or be shape arithmetic (recomputed at the stacked size).
  const isStatic = (value: string) => !model.graph.isActivation(value);
  const stacks = (value: string) => batchFirst(cutShapes.get(value)) || isStatic(value);
  const stackable = (inputs: string[] | undefined) => inputs !== undefined && inputs.every(stacks);
  const outputShape = (await probeHookShapes(model, clean, [model.hooks.resolve(outputName)])).get(
    outputName,
  );
  const bothStack =
    Object.keys(clean).every((name) => model.hasBatchAxis(name)) &&
    batchFirst(outputShape) &&
    hooks.every((hook) => batchFirst(shapes.get(hook.name))) &&
    cutValues.every(stacks);
  const activationCuts = cutValues.filter((value) => !isStatic(value));
  const notes: string[] = [];
  const suffixes: (SuffixPart | undefined)[] = [];
  for (const [h, hook] of hooks.entries()) {
    const wanted = (options.causalSuffix ?? true) && stackable(partInputs[h]);
    const made = wanted ? await suffixPart(model, hook.value, outputName, clean) : undefined;
    if (made && 'reason' in made)
      notes.push(
        `Hook '${hook.name}': every position recomputed (not shown causal: ${made.reason}).`,
      );
    suffixes.push(made && !('reason' in made) ? made : undefined);
  }
  const chunks = suffixChunks(chosen, perRun, seqLength);
  const progress = trackProgress(
    'patch sweep',
    1 +
      hooks.reduce(
        (sum, _, h) => sum + (suffixes[h] ? chunks.length : Math.ceil(chosen.length / perRun)),
        0,
      ),
    options,
  );
  const suffixValues = suffixes.flatMap((suffix) => suffix?.cleanValues ?? []);
  const cleanCached = [...new Set([...activationCuts, ...suffixValues])];
  const [cleanRun, corruptedRun] = await cleanAndCorruptedRuns(
    model,
    clean,
    corrupted,
    cleanCached,
    hooks.map((hook) => hook.name),
    bothStack ? batch : undefined,
  );
  progress.tick(1, 'clean and corrupted runs');
  const cleanValues = { feeds: clean, cache: cleanRun.cache, batch };
  const paths: PatchPath[] = [];

  for (const [h, hook] of hooks.entries()) {
    const suffix = suffixes[h];
    if (suffix) {
      paths.push('suffix');
      for (const chunk of chunks) {
        const start = Math.min(...chunk);
        const stacked = patchedStack(
          cleanRun.cache.get(hook.value)!,
          corruptedRun.cache.get(hook.name)!,
          chunk,
          dims[h],
        );
        const output = await suffix.run(
          start,
          fromPosition(stacked, start),
          chunk.length * batch,
          cleanValues,
        );
        runs++;
        progress.tick(1, hook.name);
        chunk.forEach((position, v) => {
          effects[h][chosen.indexOf(position)] = metric(
            sliceRows(output, v * batch, (v + 1) * batch),
          );
        });
      }
      continue;
    }
    const part = stackable(partInputs[h])
      ? await model.downstream(hook.value, outputName)
      : undefined;
    paths.push(part ? 'downstream' : 'whole');
    for (let first = 0; first < chosen.length; first += perRun) {
      const chunk = chosen.slice(first, first + perRun);
      const corruptedValue = corruptedRun.cache.get(hook.name)!;
      let output: Tensor;
      if (part) {
        const feeds: Feeds = await model.staticValuesAt(
          part.inputs.filter(isStatic),
          clean,
          chunk.length * batch,
        );
        for (const value of part.inputs) {
          if (isStatic(value)) continue;
          feeds[value] =
            value === hook.value
              ? patchedStack(cleanRun.cache.get(value)!, corruptedValue, chunk, dims[h])
              : repeatRows(cleanRun.cache.get(value)!, chunk.length);
        }
        output = (await part.session.run(feeds, [outputName]))[outputName];
      } else {
        // Whole graph, the hook edited as V·keep + add (graph/edit.ts).
        const { session } = await model.prepare(stackedPlan([hook]));
        const feeds: Feeds = {};
        for (const [name, value] of Object.entries(clean))
          feeds[name] = repeatRows(value, chunk.length);
        const { keep, add } = sweepMasks(
          chunk.map((position) => ({ h: 0, position })),
          0,
          corruptedValue,
          dims[h],
          batch,
        );
        feeds[sweepInput(0, 'keep')] = keep;
        feeds[sweepInput(0, 'add')] = add;
        output = (await session.run(feeds, [outputName]))[outputName];
      }
      runs++;
      progress.tick(1, hook.name);
      chunk.forEach((position, v) => {
        effects[h][chosen.indexOf(position)] = metric(
          sliceRows(output, v * batch, (v + 1) * batch),
        );
      });
    }
  }
  return {
    hooks: hooks.map((hook) => hook.name),
    positions: chosen,
    effects,
    runs,
    paths,
    notes,
    cleanMetric: metric(cleanRun.outputs[outputName]),
    corruptedMetric: metric(corruptedRun.outputs[outputName]),
  };
}

/**
 * The clean run (caching `cleanValues`) and the corrupted run (caching `corruptedValues`); as one
 * run of both batches stacked when every input, output and cached value has the batch axis first
 * (`batch` given): one onnxruntime run instead of two.
 */
async function cleanAndCorruptedRuns(
  model: Model,
  clean: Feeds,
  corrupted: Feeds,
  cleanValues: string[],
  corruptedValues: string[],
  batch: number | undefined,
): Promise<[RunResult, RunResult]> {
  if (batch === undefined)
    return [
      await runWithCache(model, clean, cleanValues),
      await runWithCache(model, corrupted, corruptedValues),
    ];
  const stacked = Object.fromEntries(
    Object.entries(clean).map(([name, value]) => [name, concatRows([value, corrupted[name]])]),
  );
  const both = await runWithCache(model, stacked, [
    ...new Set([...cleanValues, ...corruptedValues]),
  ]);
  // A value laid out [batch*k, ...] holds each run's examples in half its rows.
  const halfOf = (value: Tensor, k: number) =>
    sliceRows(value, (k * value.dims[0]) / 2, ((k + 1) * value.dims[0]) / 2);
  const half = (k: number, values: string[]): RunResult => ({
    ...both,
    outputs: Object.fromEntries(
      Object.entries(both.outputs).map(([name, value]) => [name, halfOf(value, k)]),
    ),
    cache: new Map(values.map((value) => [value, halfOf(both.cache.get(value)!, k)])),
  });
  return [half(0, cleanValues), half(1, corruptedValues)];
}

/**
 * The model computing only the last position of its first output, [batch, 1, ...]: position-wise
 * nodes after the last mixing of positions are copied onto the last position and the originals
 * pruned. The copies read the swept hooks' values, never recompute them from upstream (a patch
 * must reach them, and they stay whole). Linear layers become single Gemms (fuse-matmul-bias.ts):
 * every run of the sweep uses this one graph, so its effects are consistent among themselves.
 * Made once per model and set of hooks.
 */
async function lastPositionModel(
  model: Model,
  feeds: Feeds,
  hookNames: readonly string[],
): Promise<Model> {
  const output = model.outputNames[0];
  const hookValues = new Set(hookNames.map((name) => model.hooks.resolve(name).value));
  return model.variant(
    `last position of ${output}, patching ${[...hookValues].sort().join(', ')}`,
    async () => {
      const shapes = await probeValueShapes(model, feeds);
      if ((shapes.get(output)?.length ?? 0) < 3)
        throw new InterventionError(
          `The metric cannot read only the last position: output '${output}' is not a sequence [batch, seq, ...] (shape ${shapeString(shapes.get(output) ?? [])}).`,
        );
      const index = model.graph;
      const emitter = Emitter.forGraph(index);
      const last = lastPositionOf(index, emitter, output, (value) => shapes.get(value), {
        barriers: hookValues,
        intoAttention: true,
      });
      const graph = index.proto.graph;
      const extended = derive(index.proto, {
        graph: derive(graph, {
          node: [...graph.node, ...emitter.nodes],
          output: [valueInfo(last, index.dtype(output) ?? 'float32')],
        }),
      });
      const fused = fuseMatMulBias(extended, hookValues).graph;
      const nodes = pruneUnused(fused);
      const kept = new Set([
        ...graph.input.map((input) => input.name),
        ...nodes.flatMap((node) => node.output),
      ]);
      const lost = hookNames.filter((name) => !kept.has(model.hooks.resolve(name).value));
      if (lost.length > 0)
        throw new InterventionError(
          `Hooks ${lost.map((name) => `'${name}'`).join(', ')} do not reach the last position of '${output}': sweep them without lastPosition.`,
        );
      const used = new Set(nodes.flatMap((node) => node.input));
      return derive(index.proto, {
        graph: derive(fused, {
          node: nodes,
          initializer: [...fused.initializer, ...emitter.initializers].filter((t) =>
            used.has(t.name),
          ),
        }),
      });
    },
  );
}

/**
 * Positions run together on a suffix part, ascending; a run starts at its first position, so a
 * later position in it recomputes p − start unchanged positions. Counting work in variant-positions
 * and a run's fixed cost as 1/16 of a full run (perRun variants × seqLength positions), a position
 * joins the run when that waste is below the cost of a run of its own, and the run fits perRun.
 */
function suffixChunks(positions: readonly number[], perRun: number, seqLength: number): number[][] {
  const runCost = (perRun * seqLength) / 16;
  const chunks: number[][] = [];
  for (const position of [...positions].sort((a, b) => a - b)) {
    const current = chunks[chunks.length - 1];
    if (current && current.length < perRun && position - current[0] <= runCost)
      current.push(position);
    else chunks.push([position]);
  }
  return chunks;
}

/** [variants·batch, seq, ...]: the clean value once per variant, with the corrupted value at that variant's position. */
function patchedStack(
  cleanValue: Tensor,
  corruptedValue: Tensor,
  positions: number[],
  dims: number[],
): Tensor {
  const [batch, seq] = dims;
  const width = elementCount(dims.slice(2));
  const stacked = repeatRows(cleanValue, positions.length);
  const target = stacked.data as Float32Array;
  const source = corruptedValue.data as Float32Array;
  positions.forEach((position, v) => {
    for (let example = 0; example < batch; example++) {
      const from = (example * seq + position) * width;
      target.set(
        source.subarray(from, from + width),
        ((v * batch + example) * seq + position) * width,
      );
    }
  });
  return stacked;
}

function sequenceLength(hooks: Hook[], dims: number[][]): number {
  const lengths = new Set(
    hooks.map((hook, h) => {
      const axis = positionAxis(dims[h].length, unitAxisOf(hook, dims[h].length));
      if (axis !== 1)
        throw new InterventionError(
          `Hook '${hook.name}' has shape ${shapeString(dims[h])}: a patch sweep needs sequence hooks shaped [batch, seq, d].`,
        );
      return dims[h][1];
    }),
  );
  if (lengths.size !== 1)
    throw new InterventionError(
      `The swept hooks have different sequence lengths (${[...lengths].join(', ')}): sweep them separately.`,
    );
  return [...lengths][0];
}

/**
 * keep: [rows, seq, 1], 0 at (rows of a variant patching hook h, its position), else 1.
 * add:  [rows, seq, d], the corrupted value where keep is 0, else 0.
 */
function sweepMasks(
  chunk: { h: number; position: number }[],
  h: number,
  corrupted: Tensor,
  dims: number[],
  batch: number,
): { keep: Tensor; add: Tensor } {
  const [, seq] = dims;
  const width = elementCount(dims.slice(2));
  const rows = chunk.length * batch;
  const keep = (allocate(corrupted.dtype, rows * seq) as Float32Array).fill(1);
  const add = allocate(corrupted.dtype, rows * seq * width) as Float32Array;
  const source = corrupted.data as Float32Array;
  chunk.forEach((variant, v) => {
    if (variant.h !== h) return;
    for (let example = 0; example < batch; example++) {
      const row = v * batch + example;
      keep[row * seq + variant.position] = 0;
      const from = (example * seq + variant.position) * width;
      add.set(source.subarray(from, from + width), (row * seq + variant.position) * width);
    }
  });
  return {
    keep: { dtype: corrupted.dtype, dims: [rows, seq, 1], data: keep },
    add: { dtype: corrupted.dtype, dims: [rows, seq, ...dims.slice(2)], data: add },
  };
}
