/**
 * Shapes of values inside a model. onnxruntime reports the shapes of graph outputs only, so the
 * values are exposed and the model is run on one example and on two: an axis whose size grew
 * with the batch is the batch axis ('batch', or 'batch*k' for k rows per example).
 */
import { InputError } from '../errors.ts';
import type { Hook } from '../graph/hooks.ts';
import { examplesFirst, symbolicDims } from '../graph/units.ts';
import {
  concatRows,
  isFloat,
  moveAxis,
  relativeError,
  sliceRows,
  type Feeds,
  type Tensor,
} from '../tensor.ts';
import type { Model } from './model.ts';
import { runWithCache } from './run.ts';

/**
 * Most hooks exposed by one probe run. Exposing every value of a GPT-2-small (1,634) at once held
 * them all in memory together, twice (onnxruntime's and the copies): 1.8 GB for two sequences.
 */
const HOOKS_PER_PROBE = 256;

const shapeCache = new WeakMap<Model, Map<string, (number | string)[]>>();

/**
 * Each hook's dims with the batch axis symbolic ('batch'), found by running the first example
 * at batch 1 and batch 2 (onnxruntime reports shapes of outputs only). Cached per model and
 * per non-batch input shape.
 */
export async function probeHookShapes(
  model: Model,
  feeds: Feeds,
  hooks: readonly Hook[],
): Promise<Map<string, (number | string)[]>> {
  const known = shapeCache.get(model) ?? new Map<string, (number | string)[]>();
  shapeCache.set(model, known);
  const inputKey = Object.entries(feeds)
    .map(([name, value]) => `${name}:${value.dims.slice(1)}`)
    .sort()
    .join(';');
  const key = (hook: Hook) => `${inputKey}|${hook.name}`;
  const missing = hooks.filter((hook) => !known.has(key(hook)));
  if (missing.length > 0) {
    if (
      Object.entries(feeds).some(
        ([name, value]) =>
          model.hasBatchAxis(name) && (value.dims.length === 0 || value.dims[0] === 0),
      )
    ) {
      throw new InputError(
        'Cannot infer hook shapes from inputs with no examples: give at least one row.',
      );
    }
    // Inputs with a batch axis get one example, then two different ones; fixed-shape inputs (no batch axis) are fed as they are.
    const batched = (rows: number) =>
      Object.fromEntries(
        Object.entries(feeds).map(([name, value]) => [
          name,
          model.hasBatchAxis(name)
            ? rows === 1
              ? sliceRows(value, 0, 1)
              : concatRows([sliceRows(value, 0, 1), secondExample(value)])
            : value,
        ]),
      );
    for (let first = 0; first < missing.length; first += HOOKS_PER_PROBE) {
      const group = missing.slice(first, first + HOOKS_PER_PROBE);
      const names = group.map((hook) => hook.name);
      const atOne = await runWithCache(model, batched(1), names);
      const atTwo = Object.keys(feeds).some((name) => model.hasBatchAxis(name))
        ? await runWithCache(model, batched(2), names)
        : atOne;
      for (const hook of group) {
        const one = atOne.cache.get(hook.name)!;
        const two = atTwo.cache.get(hook.name)!;
        known.set(
          key(hook),
          symbolicDims(one.dims, two.dims, (axis) => firstExampleInterleaved(one, two, axis)),
        );
      }
    }
  }
  return new Map(hooks.map((hook) => [hook.name, known.get(key(hook))!]));
}

/**
 * A second example unlike the first, so that the probe can tell how a value lays its examples
 * out: the feeds' second row, or else the first reversed along its last axis (tokens and masks
 * stay valid).
 */
function secondExample(value: Tensor): Tensor {
  if (value.dims[0] >= 2) return sliceRows(value, 1, 2);
  const first = sliceRows(value, 0, 1);
  if (first.dims.length < 2) return first;
  const width = first.dims[first.dims.length - 1];
  const data = first.data.slice();
  for (let start = 0; start < data.length; start += width) {
    for (let i = 0; i < width; i++) data[start + i] = first.data[start + width - 1 - i];
  }
  return { ...first, data };
}

/**
 * Whether, on an axis that grew from k entries at batch 1 to 2k at batch 2, the first example's
 * entries are every other one ([k·batch] laid out as [k, batch]) rather than the first k.
 */
function firstExampleInterleaved(atOne: Tensor, atTwo: Tensor, axis: number): boolean {
  const size = atOne.dims[axis];
  const firstBlock = sliceRows(moveAxis(atTwo, axis, 0), 0, size);
  const everyOther = examplesFirst(moveAxis(atTwo, axis, 0), {
    axis: 0,
    perExample: size,
    interleaved: true,
  });
  const firstOfEveryOther = sliceRows(everyOther, 0, size);
  const reference = moveAxis(atOne, axis, 0);
  return !close(firstBlock, reference) && close(firstOfEveryOther, reference);
}

function close(a: Tensor, b: Tensor): boolean {
  return !isFloat(a.dtype)
    ? a.data.every((value, i) => value === b.data[i])
    : relativeError(a, b) <= 1e-4;
}

/** Symbolic dims of every value of the model (inputs and node outputs), keyed by value name. */
export async function probeValueShapes(
  model: Model,
  feeds: Feeds,
): Promise<Map<string, (number | string)[]>> {
  const shapes = await probeHookShapes(model, feeds, model.hooks.hooks);
  return new Map(model.hooks.hooks.map((hook) => [hook.value, shapes.get(hook.name)!]));
}
