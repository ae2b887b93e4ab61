/**
 * The one interface every contender of `teardown race` has: a learner that trains on examples
 * within a time budget and returns a classifier the audit accepts as it is
 * (`{ classes, predictProba }`, api/audit.ts), with its size for the scorecard.
 *
 *   const knn = kNearestNeighbours({ k: 5 });
 *   const classifier = await knn.train(data, { seed: 1, budgetSeconds: 30 });
 *   await audit(classifier, { inputs, labels });
 */
import { InputError } from '../errors.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { ProgressOptions } from '../progress.ts';
import type { Tensor as TensorLike } from '../tensor.ts';

/** Training examples: inputs [examples, ...] (flattened to features), one class per example. */
export interface RaceData {
  inputs: TensorLike;
  /** One integer class per example: numbers, or a tensor (the data loaders give int64). */
  labels: ArrayLike<number> | TensorLike;
  /** Classes 0 .. classes−1; default the largest label + 1. */
  classes?: number;
}

export interface TrainOptions extends ProgressOptions {
  /** Every random choice (initial weights, minibatches, perturbations) follows from it. */
  seed: number;
  /** Wall-clock seconds the training may take; it stops at the first step past it. */
  budgetSeconds: number;
  /** onnxruntime intra-op threads (default 1: contenders are raced one at a time, each small). */
  threads?: number;
}

/** What the scorecard counts as the learned function's size. */
export interface ClassifierSize {
  kind: 'parameters' | 'prototypes' | 'nodes';
  count: number;
}

/** A trained learner: class probabilities [examples, classes], row-major, for a batch. */
export interface TrainedClassifier {
  classes: number;
  predictProba(inputs: TensorLike): Promise<TensorLike>;
  size: ClassifierSize;
  /**
   * Networks shaped as teardown's MLP: the trained network as a plain ONNX model, for the
   * analyses that read a network's insides (inspect, the audit's shortcut units).
   */
  model?: () => ModelProto;
  /** Frees the onnxruntime sessions it holds. */
  release(): Promise<void>;
}

export interface Contender {
  name: string;
  family: 'network' | 'neighbours' | 'linear' | 'trees';
  /** Whether training computes gradients by backpropagating the error through the layers. */
  usesBackprop: boolean;
  /**
   * The least budget, in seconds per seed, the contender can train in at all (a learner whose
   * library takes no time limit, a search that needs a few trials); the race refuses less.
   */
  minimumBudgetSeconds?: number;
  train(data: RaceData, options: TrainOptions): Promise<TrainedClassifier>;
}

/** The examples as a flat float32 matrix, checked once for every contender. */
export interface FeatureMatrix {
  /** [rows, features], row-major. */
  values: Float32Array;
  rows: number;
  features: number;
  labels: Int32Array;
  classes: number;
}

export function featureMatrix(data: RaceData): FeatureMatrix {
  const rows = data.inputs.dims[0];
  const features = data.inputs.dims.slice(1).reduce((a, b) => a * b, 1);
  if (!rows || !features)
    throw new InputError(
      'Race data needs at least one example with at least one feature; ' +
        `its inputs have shape [${data.inputs.dims.join(', ')}].`,
    );
  const labels = checkedLabels(data.labels, rows);
  const largest = labels.reduce((most, label) => Math.max(most, label), 0);
  const classes = data.classes ?? largest + 1;
  if (largest >= classes)
    throw new InputError(
      `Race labels must be below classes (${classes}); the largest is ${largest}.`,
    );
  return { values: finiteValues(data.inputs, features), rows, features, labels, classes };
}

function checkedLabels(labels: ArrayLike<number> | TensorLike, rows: number): Int32Array {
  const given = Array.from(labelValues(labels), Number);
  if (given.length !== rows)
    throw new InputError(
      `Race data has ${rows} examples but ${given.length} labels: ` + 'give one label per example.',
    );
  return Int32Array.from(given, (label, i) => {
    if (!Number.isInteger(label) || label < 0)
      throw new InputError(
        `Race labels must be non-negative integer classes; label ${i} is ${label}.`,
      );
    return label;
  });
}

/** The inputs as float32 (a copy), refused if any is NaN or infinite. */
function finiteValues(inputs: TensorLike, features: number): Float32Array {
  const values =
    inputs.data instanceof Float32Array
      ? inputs.data.slice()
      : Float32Array.from(inputs.data as ArrayLike<number>, Number);
  const bad = values.findIndex((value) => !Number.isFinite(value));
  if (bad >= 0) {
    const [row, feature] = [Math.floor(bad / features), bad % features];
    throw new InputError(
      `Race inputs must be finite; example ${row}, feature ${feature} is ${values[bad]}: ` +
        'impute or drop such values first.',
    );
  }
  return values;
}

function labelValues(labels: ArrayLike<number> | TensorLike): ArrayLike<number | bigint> {
  return 'dims' in labels ? (labels.data as ArrayLike<number | bigint>) : labels;
}

/** The values of `rows` of the matrix, in that order: [rows.length, features]. */
export function gatherRows(
  matrix: FeatureMatrix,
  rows: readonly number[],
): Float32Array<ArrayBuffer> {
  const { features, values } = matrix;
  const out = new Float32Array(rows.length * features);
  rows.forEach((row, k) =>
    out.set(values.subarray(row * features, (row + 1) * features), k * features),
  );
  return out;
}

/** Rows and features of a batch to predict, checked against the features trained on. */
export function queryMatrix(
  inputs: TensorLike,
  features: number,
): { values: Float32Array; rows: number } {
  const rows = inputs.dims[0];
  const given = inputs.dims.slice(1).reduce((a, b) => a * b, 1);
  if (given !== features)
    throw new InputError(
      `The classifier was trained on ${features} features per example; these inputs have ` +
        `${given} (shape [${inputs.dims.join(', ')}]).`,
    );
  const values =
    inputs.data instanceof Float32Array
      ? inputs.data
      : Float32Array.from(inputs.data as ArrayLike<number>, Number);
  return { values, rows };
}

/** Seconds since `start` (performance.now() milliseconds). */
export const secondsSince = (start: number): number => (performance.now() - start) / 1000;
