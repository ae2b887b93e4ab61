/**
 * The direction that carries an attribute: when no small set of units carries it, an attribute
 * may still live in one direction of a hook's space. For counterfactual pairs (x, x′), the paired
 * differences Dᵢ = a(xᵢ) − a(x′ᵢ) show how changing the attribute moves the hook; their principal
 * direction u (the top eigenvector of Σ DᵢDᵢᵀ, by power iteration) is that direction, and
 * `energyShare` = uᵀ(ΣDᵢDᵢᵀ)u / Σ‖Dᵢ‖² says how much of the movement it holds. Projecting it out,
 * a ← a − (a·u − m)·u with m the mean of a·u over the original examples, is mean ablation along u.
 *
 * Examples are feeds of every input (or a tensor for a one-input model); inputs the counterfactual
 * does not transform are the same in both. Dense hooks ([batch, units]) whose downstream part runs alone (graph/downstream.ts) only: the
 * projection is applied in JavaScript to the cached hook and the rest of the model run from there.
 */
import type { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { sliceFeeds, type Feeds, type Tensor } from '../tensor.ts';
import { asFeeds } from './carriers.ts';
import { predictedClasses } from '../tensor-math.ts';

export interface AttributeDirection {
  hook: string;
  direction: Float64Array;
  /** Mean of a·u over the original examples: the value the projection puts in. */
  mean: number;
  energyShare: number;
}

/** undefined when the hook is not dense or its downstream part cannot run alone. */
export async function attributeDirection(
  model: Model,
  hookName: string,
  original: Tensor | Feeds,
  counterfactual: Tensor | Feeds,
): Promise<AttributeDirection | undefined> {
  if (!(await projectable(model, hookName))) return undefined;
  const [a, b] = [
    await hookValues(model, hookName, original),
    await hookValues(model, hookName, counterfactual),
  ];
  if (a.dims.length !== 2) return undefined;
  const [n, d] = a.dims;
  const x = a.data as Float32Array,
    y = b.data as Float32Array;
  const differences = Float64Array.from(x, (value, k) => value - y[k]);
  let u: Float64Array = new Float64Array(d).fill(1 / Math.sqrt(d));
  for (let iteration = 0; iteration < 100; iteration++)
    u = normalise(secondMomentTimes(differences, n, d, u));
  const along = secondMomentTimes(differences, n, d, u).reduce(
    (sum, value, j) => sum + value * u[j],
    0,
  );
  const total = differences.reduce((sum, value) => sum + value * value, 0);
  let mean = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean += (x[i * d + j] * u[j]) / n;
  return { hook: hookName, direction: u, mean, energyShare: total > 0 ? along / total : 0 };
}

/** The model's first output with the direction projected out of the hook, in batches. */
export async function outputsWithoutDirection(
  model: Model,
  direction: AttributeDirection,
  inputs: Tensor | Feeds,
  batchSize = 1024,
): Promise<Tensor[]> {
  const value = model.hooks.resolve(direction.hook).value;
  const output = model.outputNames[0];
  const part = (await model.downstream(value, output))!;
  const outputs: Tensor[] = [];
  const feeds = asFeeds(model, inputs);
  const examples = Object.values(feeds)[0].dims[0];
  for (let start = 0; start < examples; start += batchSize) {
    const hook = await hookValues(
      model,
      direction.hook,
      sliceFeeds(feeds, start, Math.min(examples, start + batchSize)),
    );
    outputs.push(
      (await part.session.run({ [value]: projectOut(hook, direction) }, [output]))[output],
    );
  }
  return outputs;
}

/** The predicted class (argmax; a single logit > 0 is class 1) of every example with the direction projected out. */
export async function classesWithoutDirection(
  model: Model,
  direction: AttributeDirection,
  inputs: Tensor | Feeds,
): Promise<Int32Array> {
  return Int32Array.from(
    (await outputsWithoutDirection(model, direction, inputs)).flatMap((output) => [
      ...predictedClasses(output),
    ]),
  );
}

/** Share of counterfactual pairs whose predicted class differs, with the direction projected out. */
export async function flipRateWithoutDirection(
  model: Model,
  direction: AttributeDirection,
  original: Tensor | Feeds,
  counterfactual: Tensor | Feeds,
): Promise<number> {
  const [before, after] = [
    await classesWithoutDirection(model, direction, original),
    await classesWithoutDirection(model, direction, counterfactual),
  ];
  return before.reduce((flips, c, i) => flips + (c !== after[i] ? 1 : 0), 0) / before.length;
}

/** a − (a·u − m)·u for every row. */
export function projectOut(values: Tensor, direction: AttributeDirection): Tensor {
  const [n, d] = values.dims;
  const out = Float32Array.from(values.data as Float32Array);
  const u = direction.direction;
  for (let i = 0; i < n; i++) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += out[i * d + j] * u[j];
    for (let j = 0; j < d; j++) out[i * d + j] -= (dot - direction.mean) * u[j];
  }
  return { dtype: 'float32', dims: [...values.dims], data: out };
}

async function projectable(model: Model, hookName: string): Promise<boolean> {
  const hook = model.hooks.resolve(hookName);
  if (hook.dtype !== 'float32') return false;
  const part = await model.downstream(hook.value, model.outputNames[0]);
  return part !== undefined && part.inputs.length === 1;
}

async function hookValues(model: Model, hookName: string, inputs: Tensor | Feeds): Promise<Tensor> {
  return (await runWithCache(model, asFeeds(model, inputs), [hookName])).cache.get(hookName)!;
}

/** (Σᵢ DᵢDᵢᵀ)·v without forming the d×d matrix. */
function secondMomentTimes(
  differences: Float64Array,
  n: number,
  d: number,
  v: Float64Array,
): Float64Array {
  const out = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += differences[i * d + j] * v[j];
    for (let j = 0; j < d; j++) out[j] += dot * differences[i * d + j];
  }
  return out;
}

function normalise(v: Float64Array): Float64Array {
  let squares = 0;
  for (const value of v) squares += value * value;
  const norm = Math.sqrt(squares) || 1;
  return v.map((value) => value / norm);
}
