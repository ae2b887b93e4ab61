/**
 * Shapes of values inside a model. onnxruntime reports the shapes of graph outputs only, so the
 * values are exposed and the model is run on one example and on two: an axis whose size grew
 * with the batch is the batch axis ('batch', or 'batch*k' for k rows per example).
 */
import { InputError } from '../errors.ts';
import type { Hook } from '../graph/hooks.ts';
import { symbolicDims } from '../graph/units.ts';
import { repeatRows, sliceRows, type Feeds } from '../tensor.ts';
import type { Model } from './model.ts';
import { runWithCache } from './run.ts';

const shapeCache = new WeakMap<Model, Map<string, (number | string)[]>>();

/**
 * Each hook's dims with the batch axis symbolic ('batch'), found by running the first example
 * at batch 1 and batch 2 (onnxruntime reports shapes of outputs only). Cached per model and
 * per non-batch input shape.
 */
export async function probeHookShapes(model: Model, feeds: Feeds, hooks: readonly Hook[]): Promise<Map<string, (number | string)[]>> {
  const known = shapeCache.get(model) ?? new Map<string, (number | string)[]>();
  shapeCache.set(model, known);
  const inputKey = Object.entries(feeds).map(([name, value]) => `${name}:${value.dims.slice(1)}`).sort().join(';');
  const key = (hook: Hook) => `${inputKey}|${hook.name}`;
  const missing = hooks.filter((hook) => !known.has(key(hook)));
  if (missing.length > 0) {
    if (Object.entries(feeds).some(([name, value]) => model.hasBatchAxis(name) && (value.dims.length === 0 || value.dims[0] === 0))) {
      throw new InputError('Cannot infer hook shapes from inputs with no examples: give at least one row.');
    }
    // Inputs with a batch axis get one example, then two; fixed-shape inputs (no batch axis) are fed as they are.
    const batched = (rows: number) => Object.fromEntries(Object.entries(feeds).map(([name, value]) =>
      [name, model.hasBatchAxis(name) ? repeatRows(sliceRows(value, 0, 1), rows) : value]));
    const names = missing.map((hook) => hook.name);
    const atOne = await runWithCache(model, batched(1), names);
    const atTwo = Object.keys(feeds).some((name) => model.hasBatchAxis(name)) ? await runWithCache(model, batched(2), names) : atOne;
    for (const hook of missing) known.set(key(hook), symbolicDims(atOne.cache.get(hook.name)!.dims, atTwo.cache.get(hook.name)!.dims));
  }
  return new Map(hooks.map((hook) => [hook.name, known.get(key(hook))!]));
}

/** Symbolic dims of every value of the model (inputs and node outputs), keyed by value name. */
export async function probeValueShapes(model: Model, feeds: Feeds): Promise<Map<string, (number | string)[]>> {
  const shapes = await probeHookShapes(model, feeds, model.hooks.hooks);
  return new Map(model.hooks.hooks.map((hook) => [hook.value, shapes.get(hook.name)!]));
}
