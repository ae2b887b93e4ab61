/**
 * Many intervention sets evaluated in as few onnxruntime runs as possible: each variant's
 * examples are stacked along the batch axis, and at every hook any variant touches,
 * V' = V·keep + add with keep and add built row block by row block — the variant's own
 * (composed) intervention on its rows, identity (keep 1, add 0) on the others. The graph and its
 * session are the same for every chunk of variants.
 *
 * Several interventions on one hook compose in order: (V·k₁ + a₁)·k₂ + a₂ = V·(k₁k₂) + (a₁k₂ + a₂).
 */
import { InterventionError } from '../errors.ts';
import type { EditPlan, Rewrite } from '../graph/edit.ts';
import type { Hook } from '../graph/hooks.ts';
import type { Intervention } from '../graph/interventions.ts';
import type { Model } from '../runtime/model.ts';
import { prepareInterventions, type Dataset } from '../runtime/run.ts';
import { add, broadcastTo, multiply } from '../tensor-math.ts';
import {
  allocate,
  elementCount,
  repeatRows,
  sliceRows,
  type DType,
  type Feeds,
  type Tensor,
} from '../tensor.ts';

export interface SweepOptions {
  /** Most stacked rows per onnxruntime run. */
  maxRows?: number;
  /** Reference examples for mean and resample ablations (default: `feeds`). */
  reference?: Feeds | Dataset;
}

/**
 * Examples per stacked run: up to 4096, fewer when each example's hook holds many values (at most
 * 2^21 values of the hook per run). Large stacks amortise onnxruntime's cost per run on small
 * models; on large ones they are slower per example — a GPT-2-small attention pattern (196,608
 * values per example) ran inspect's ablations 1.9× faster in runs of 8 examples than of 52
 * (docs/performance-log.md, "Scale (issue 11), sessions 5 and 6").
 */
export function stackedRows(valuesPerExample: number): number {
  return Math.max(1, Math.min(4096, Math.floor(2 ** 21 / Math.max(1, valuesPerExample))));
}

/** metric(model's first output on one variant's examples) for every variant, in order. */
export async function sweepInterventions(
  model: Model,
  feeds: Feeds,
  variants: readonly (readonly Intervention[])[],
  metric: (output: Tensor) => number,
  options: SweepOptions = {},
): Promise<number[]> {
  const results: number[] = [];
  await sweepOutputs(
    model,
    feeds,
    variants,
    (variant, output) => {
      results[variant] = metric(output);
    },
    options,
  );
  return results;
}

/** Calls onOutput(variant index, the model's first output on that variant's examples) for every variant. */
export async function sweepOutputs(
  model: Model,
  feeds: Feeds,
  variants: readonly (readonly Intervention[])[],
  onOutput: (variant: number, output: Tensor) => void,
  options: SweepOptions = {},
): Promise<void> {
  const batch = model.checkFeeds(feeds);
  const flat = variants.flatMap((interventions, variant) =>
    interventions.map((intervention) => ({ intervention, variant })),
  );
  const prepared = await prepareInterventions(
    model,
    flat.map((entry) => entry.intervention),
    options.reference ?? feeds,
  );
  const compiled = await prepared.compileEach(feeds, batch, 0);
  const hooks = [...new Map(compiled.map((entry) => [entry.hook.name, entry])).values()].map(
    (entry) => ({ hook: entry.hook, dims: entry.dims }),
  );

  const { session } = await model.prepare(stackedPlan(hooks.map(({ hook }) => hook)));
  const outputName = model.outputNames[0];
  // Per variant and hook: the composed (keep, add), already broadcast to the hook's dims at this batch.
  const affine = variants.map(() => new Map<string, { keep: Tensor; add: Tensor }>());
  compiled.forEach((entry, index) => {
    const { keep, add: shift } = asAffine(entry.feeds, entry.rewrite, entry.hook);
    const own = affine[flat[index].variant];
    const previous = own.get(entry.hook.name);
    own.set(
      entry.hook.name,
      previous
        ? { keep: multiply(previous.keep, keep), add: add(multiply(previous.add, keep), shift) }
        : { keep, add: shift },
    );
  });

  const perRun = Math.max(
    1,
    Math.floor(
      (options.maxRows ??
        stackedRows(Math.max(...hooks.map(({ dims }) => elementCount(dims) / batch)))) / batch,
    ),
  );
  for (let first = 0; first < variants.length; first += perRun) {
    const chunk = affine.slice(first, first + perRun);
    const runFeeds: Feeds = {};
    for (const [name, value] of Object.entries(feeds))
      runFeeds[name] = repeatRows(value, chunk.length);
    hooks.forEach(({ hook, dims }, h) => {
      runFeeds[sweepInput(h, 'keep')] = stackBlocks(
        chunk.map((own) => own.get(hook.name)?.keep),
        dims,
        1,
        hook.dtype!,
      );
      runFeeds[sweepInput(h, 'add')] = stackBlocks(
        chunk.map((own) => own.get(hook.name)?.add),
        dims,
        0,
        hook.dtype!,
      );
    });
    const output = (await session.run(runFeeds, [outputName]))[outputName];
    const rows = output.dims[0] / chunk.length;
    chunk.forEach((_, v) => onOutput(first + v, sliceRows(output, v * rows, (v + 1) * rows)));
  }
}

/** The edit every stacked sweep runs: V' = V·keep + add at each hook, keep and add fed as `sweepInput(h, ...)`. */
export function stackedPlan(hooks: readonly Hook[]): EditPlan {
  return {
    expose: [],
    rewrites: hooks.map((hook, h): Rewrite => ({
      kind: 'affine',
      value: hook.value,
      keepInput: sweepInput(h, 'keep'),
      addInput: sweepInput(h, 'add'),
    })),
    inputTypes: new Map(
      hooks.flatMap((hook, h): [string, DType][] => [
        [sweepInput(h, 'keep'), hook.dtype!],
        [sweepInput(h, 'add'), hook.dtype!],
      ]),
    ),
  };
}

export const sweepInput = (hookIndex: number, part: 'keep' | 'add') =>
  `teardown::sweep${hookIndex}::${part}`;

/** A compiled intervention as keep and add tensors (a whole-hook replacement is keep 0, add = value). */
function asAffine(feeds: Feeds, rewrite: Rewrite, hook: Hook): { keep: Tensor; add: Tensor } {
  if (rewrite.kind === 'replace') {
    const value = feeds[rewrite.input];
    return {
      keep: { dtype: value.dtype, dims: value.dims.map(() => 1), data: allocate(value.dtype, 1) },
      add: value,
    };
  }
  if (rewrite.kind === 'project-out')
    throw new InterventionError(
      `A sweep cannot stack project-out on '${hook.name}' (it is not V·keep + add): run it with run/runWithInterventions.`,
    );
  const keep = feeds[rewrite.keepInput];
  const shift = feeds[rewrite.addInput];
  if (keep.dtype !== hook.dtype)
    throw new Error(`sweep: keep for '${hook.name}' has dtype ${keep.dtype}, hook ${hook.dtype}`);
  return { keep, add: shift };
}

/** [variants·rows, ...] from one broadcastable block per variant (identity `fill` where a variant leaves the hook alone). */
function stackBlocks(
  blocks: (Tensor | undefined)[],
  dims: number[],
  fill: number,
  dtype: DType,
): Tensor {
  const blockSize = elementCount(dims);
  const out = allocate(dtype, blocks.length * blockSize) as Float32Array;
  blocks.forEach((block, v) => {
    if (!block) out.fill(fill, v * blockSize, (v + 1) * blockSize);
    else out.set(broadcastTo(block, dims).data as Float32Array, v * blockSize);
  });
  return { dtype, dims: [blocks.length * dims[0], ...dims.slice(1)], data: out };
}
