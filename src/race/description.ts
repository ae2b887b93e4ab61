/**
 * The scorecard's comprehensibility figure: the size of the smallest faithful description of what
 * a trained classifier computes, found by the same rule for every kind of learner.
 *
 * Faithfulness, for every kind: the share of the test rows on which the description predicts the
 * classifier's own class — the most probable class of each, the first among equals (as the race
 * scores accuracy) — whatever the true label. A description is fitted on the training rows only
 * (at most `searchRows` of them, evenly spaced) and must agree with the classifier on at least
 * `target` (0.95) of them; its faithfulness is then measured on the test rows, so it can fall
 * slightly below the target there.
 *
 * - A network with hidden units (`model()`): the circuit found by inspect's greedy pruning
 *   (inspect/circuit.ts through the library's inspect(), every unit left out mean-ablated), with
 *   the network's own predictions as labels and accuracy as the metric. inspect defines
 *   faithfulness as the circuit's metric ÷ the full network's; against its own predictions the
 *   full network scores 1, so the ratio is the agreement defined above (description-circuit.ts).
 * - kNN (size in prototypes): a condensed set of stored examples whose nearest-prototype rule
 *   agrees with the kNN (Hart 1968, then greedy pruning; description-prototypes.ts).
 * - Trees (size in nodes): every node the library reports; the ensemble is its own description
 *   (faithfulness 1 by construction).
 * - A network without hidden units (logistic regression) or without `model()`: its parameters,
 *   the weights being the description (faithfulness 1 by construction).
 */
import type { Tensor as TensorLike } from '../tensor.ts';
import { tensor } from '../tensor.ts';
import { circuitDescription } from './description-circuit.ts';
import { prototypeDescription } from './description-prototypes.ts';
import {
  featureMatrix,
  type FeatureMatrix,
  type RaceData,
  type TrainedClassifier,
} from './contender.ts';

export interface DescriptionSize {
  kind: 'circuit units' | 'prototypes' | 'tree nodes' | 'parameters';
  count: number;
  /** What the description was cut down from (hidden units, stored examples); absent if whole. */
  outOf?: number;
  /** Agreement with the classifier's own predictions on the test rows (1: the whole model). */
  faithfulness: number;
  /** The same agreement on the rows the description was fitted on (at least the target). */
  fittedFaithfulness: number;
  /** Seconds spent finding and measuring the description. */
  seconds: number;
}

export interface DescriptionOptions {
  /** The least agreement a description keeps on the rows it is fitted on (default 0.95). */
  target?: number;
  /** Training rows a description is fitted on, at most (default 500 for circuits, 2,000 kNN). */
  searchRows?: number;
  threads?: number;
  signal?: AbortSignal;
}

export const DEFAULT_DESCRIPTION_TARGET = 0.95;

/** A description that is the classifier itself agrees with it everywhere. */
const WHOLE = { faithfulness: 1, fittedFaithfulness: 1 };

/** The smallest faithful description of `classifier`, fitted on `train`, measured on `test`. */
export async function describeClassifier(
  classifier: TrainedClassifier,
  rows: { train: RaceData; test: RaceData },
  options: DescriptionOptions = {},
): Promise<DescriptionSize> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const { size } = classifier;
  if (size.kind === 'nodes')
    return { kind: 'tree nodes', count: size.count, ...WHOLE, seconds: seconds() };
  const train = featureMatrix({ ...rows.train, classes: classifier.classes });
  const test = featureMatrix({ ...rows.test, classes: classifier.classes });
  const found =
    size.kind === 'prototypes'
      ? await prototypeDescription(classifier, train, test, options)
      : classifier.model
        ? await circuitDescription(classifier.model(), train, test, options)
        : undefined;
  return {
    ...(found ?? { kind: 'parameters', count: size.count, ...WHOLE }),
    seconds: seconds(),
  };
}

/** The most probable class of each row, the first among equals: [rows]. */
export function predictedClasses(scores: ArrayLike<number>, classes: number): Int32Array {
  const rows = scores.length / classes;
  const predicted = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (scores[r * classes + c] > scores[r * classes + best]) best = c;
    }
    predicted[r] = best;
  }
  return predicted;
}

/** The share of rows on which two predictions agree. */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let same = 0;
  for (let r = 0; r < a.length; r++) if (a[r] === b[r]) same++;
  return same / a.length;
}

/** At most `n` rows, evenly spaced (a set sorted by class is still sampled across classes). */
export function evenlySpacedRows(matrix: FeatureMatrix, n: number): FeatureMatrix {
  if (matrix.rows <= n) return matrix;
  const { features } = matrix;
  const chosen = Array.from({ length: n }, (_, k) => Math.floor((k * matrix.rows) / n));
  const values = new Float32Array(n * features);
  chosen.forEach((row, k) =>
    values.set(matrix.values.subarray(row * features, (row + 1) * features), k * features),
  );
  return {
    ...matrix,
    values,
    rows: n,
    labels: Int32Array.from(chosen, (row) => matrix.labels[row]),
  };
}

/** The matrix as a [rows, features] float32 tensor, as the classifiers and models take it. */
export const asTensor = (matrix: FeatureMatrix): TensorLike =>
  tensor('float32', [matrix.rows, matrix.features], matrix.values);
