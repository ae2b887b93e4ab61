/**
 * Independent references for the race tests: planted data, and a float64 MLP forward pass and
 * loss written plainly (no onnxruntime, no code from src/race) for finite differences.
 */
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';

export function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** Two Gaussian blobs (σ = 1) centred at ±separation/2 along a random direction, labels 0 and 1. */
export function twoBlobs(rows: number, features: number, seed: number, separation = 4) {
  const random = seededRandom(seed);
  const direction = Array.from({ length: features }, () => gaussian(random));
  const norm = Math.hypot(...direction);
  const labels = Int32Array.from({ length: rows }, (_, r) => r % 2);
  const values = new Float32Array(rows * features);
  labels.forEach((label, r) => {
    for (let f = 0; f < features; f++) {
      values[r * features + f] =
        gaussian(random) + ((label ? 1 : -1) * separation * direction[f]) / (2 * norm);
    }
  });
  return { inputs: tensor('float32', [rows, features], values), labels, classes: 2 };
}

/** Rows [start, end) of a planted set, as a contender's training or test data. */
export function rowsOf(set: ReturnType<typeof twoBlobs>, start: number, end: number) {
  const features = set.inputs.dims[1];
  const values = (set.inputs.data as Float32Array).slice(start * features, end * features);
  return {
    inputs: tensor('float32', [end - start, features], values),
    labels: set.labels.slice(start, end),
    classes: set.classes,
  };
}

/** An MLP's parameters as plain arrays: per layer W [out][in] and b [out]. */
export type PlainLayers = { weight: number[][]; bias: number[] }[];

/** Mean cross-entropy of a tanh/relu MLP, in float64, by the definition. */
export function plainLoss(
  layers: PlainLayers,
  act: 'relu' | 'tanh',
  inputs: Float32Array,
  labels: ArrayLike<number>,
): number {
  const features = layers[0].weight[0].length;
  let total = 0;
  for (let r = 0; r < labels.length; r++) {
    let x = Array.from(inputs.subarray(r * features, (r + 1) * features));
    layers.forEach(({ weight, bias }, l) => {
      const z = weight.map((row, o) => row.reduce((sum, w, i) => sum + w * x[i], bias[o]));
      const hidden = l < layers.length - 1;
      x = hidden ? z.map((v) => (act === 'tanh' ? Math.tanh(v) : Math.max(0, v))) : z;
    });
    const largest = Math.max(...x);
    const logSum = largest + Math.log(x.reduce((sum, v) => sum + Math.exp(v - largest), 0));
    total += logSum - x[labels[r]];
  }
  return total / labels.length;
}

/** Central differences of f over a flat parameter vector. */
export function finiteDifferenceGradient(
  f: (parameters: Float64Array) => number,
  at: Float64Array,
  step = 1e-5,
): Float64Array {
  return at.map((_, i) => {
    const plus = at.slice();
    const minus = at.slice();
    plus[i] += step;
    minus[i] -= step;
    return (f(plus) - f(minus)) / (2 * step);
  });
}

export const norm = (v: ArrayLike<number>) =>
  Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

export function accuracy(
  probabilities: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): number {
  let correct = 0;
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (probabilities[r * classes + c] > probabilities[r * classes + best]) best = c;
    if (best === labels[r]) correct++;
  }
  return correct / labels.length;
}

/**
 * XOR: four Gaussian clusters (σ = 0.25) at (±1, ±1), label 1 where the signs differ. At best
 * Φ(4)² + (1 − Φ(4))² ≈ 99.99% accurate; no linear classifier does better than 75% on the
 * clusters' centres alone, so it needs a hidden layer.
 */
export function xorClusters(rows: number, seed: number) {
  const random = seededRandom(seed);
  const labels = new Int32Array(rows);
  const values = new Float32Array(rows * 2);
  for (let r = 0; r < rows; r++) {
    const [x, y] = [r % 2 ? 1 : -1, r % 4 < 2 ? 1 : -1];
    values[2 * r] = x + 0.25 * gaussian(random);
    values[2 * r + 1] = y + 0.25 * gaussian(random);
    labels[r] = x === y ? 0 : 1;
  }
  return { inputs: tensor('float32', [rows, 2], values), labels, classes: 2 };
}
