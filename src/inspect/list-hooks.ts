/**
 * The hook listing behind `teardown hooks`: every hook with its op, dtype and shape. onnxruntime
 * reports shapes of graph outputs only, so every hook is exposed and the model run on one example
 * and on two (runtime/run.ts probeHookShapes); the axis that grows with the batch shows as 'batch'.
 * Without sample inputs, inputs are synthesised from the declared shapes.
 */
import { InputError } from '../errors.ts';
import type { AbsentModule, Hook } from '../graph/hooks.ts';
import { batchAxisOf } from '../graph/units.ts';
import type { Model } from '../runtime/model.ts';
import { probeHookShapes } from '../runtime/probe.ts';
import { seededRandom } from '../random.ts';
import { tensor, elementCount, type Feeds } from '../tensor.ts';

export interface HookListing {
  /** `batchAxis`: the axis holding the examples; null for a value that is the same for every example. */
  hooks: (Hook & { shape: (number | string)[]; batchAxis: number | null })[];
  absent: AbsentModule[];
  notes: string[];
  /** Symbolic input dims other than the batch that were given a size to probe with. */
  assumedDims: Record<string, number>;
}

export async function listHooks(
  model: Model,
  feeds?: Feeds,
  dimSizes: Record<string, number> = {},
): Promise<HookListing> {
  const assumedDims: Record<string, number> = {};
  const sample = feeds ?? synthesiseFeeds(model, dimSizes, assumedDims);
  const shapes = await probeHookShapes(model, sample, model.hooks.hooks);
  if (!feeds) await nameSymbolicAxes(model, shapes, dimSizes, assumedDims);
  return {
    hooks: model.hooks.hooks.map((hook) => ({
      ...hook,
      shape: shapes.get(hook.name)!,
      batchAxis: batchAxisOf(shapes.get(hook.name)!) ?? null,
    })),
    absent: model.hooks.absent,
    notes: model.hooks.foldingNotes,
    assumedDims,
  };
}

/**
 * Symbolic input axes other than the batch (`seq`) in the hooks' shapes: each is probed again one
 * larger, and an axis of size k·n that grows by k is shown as 'seq' (k = 1) or 'seq*k' (a
 * flattened [batch·seq·k] axis keeps its batch name). Edits `shapes` in place.
 */
async function nameSymbolicAxes(
  model: Model,
  shapes: Map<string, (number | string)[]>,
  dimSizes: Record<string, number>,
  assumed: Record<string, number>,
): Promise<void> {
  const sizes = { ...dimSizes, ...assumed };
  for (const [dim, size] of Object.entries(sizes)) {
    const grown = await probeHookShapes(
      model,
      synthesiseFeeds(model, { ...sizes, [dim]: size + 1 }, {}),
      model.hooks.hooks,
    );
    for (const [name, dims] of shapes) {
      const other = grown.get(name)!;
      dims.forEach((value, axis) => {
        if (typeof value !== 'number' || typeof other[axis] !== 'number' || other[axis] === value)
          return;
        const step = (other[axis] as number) - value;
        if (value === step * size) dims[axis] = step === 1 ? dim : `${dim}*${step}`;
      });
    }
  }
}

/** The most values one synthesised example may hold (2^26: 256 MB of float32). */
const MAX_PROBE_VALUES = 2 ** 26;

/** A declared shape one example can be made of: sizes ≥ 0, at most MAX_PROBE_VALUES values in all. */
function checkProbeSize(name: string, dims: readonly number[]): void {
  const count = dims.reduce((product, dim) => product * dim, 1);
  if (dims.every((dim) => Number.isSafeInteger(dim) && dim >= 0) && count <= MAX_PROBE_VALUES)
    return;
  throw new InputError(
    `Input '${name}' would be [${dims.join(', ')}] for one example (${count.toLocaleString('en-US')} values; at most ${MAX_PROBE_VALUES.toLocaleString('en-US')} are made up to probe the hooks): give a real example with --input ${name}=FILE.npy, a smaller --dim, or fix the input's declared shape in the model.`,
  );
}

/** One example per input: seeded uniform [0, 1) floats, zero integers (a valid index). */
function synthesiseFeeds(
  model: Model,
  dimSizes: Record<string, number>,
  assumed: Record<string, number>,
): Feeds {
  const random = seededRandom(0);
  const feeds: Feeds = {};
  for (const input of model.inputs) {
    if (!input.dtype)
      throw new InputError(
        `Input '${input.name}' has element type ${input.typeName}, which teardown cannot feed.`,
      );
    if (!input.dims)
      throw new InputError(
        `Input '${input.name}' declares no shape: give a sample with --input ${input.name}=FILE.npy.`,
      );
    const dims = input.dims.map((dim, axis) => {
      if (typeof dim === 'number') return dim;
      if (axis === 0) return 1;
      if (dimSizes[dim] === undefined) assumed[dim] = 8;
      return dimSizes[dim] ?? 8;
    });
    checkProbeSize(input.name, dims);
    const values =
      input.dtype === 'float32' || input.dtype === 'float64'
        ? Array.from({ length: elementCount(dims) }, random)
        : undefined;
    feeds[input.name] = tensor(input.dtype, dims, values);
  }
  return feeds;
}
