/**
 * The scorecard's comprehensibility figure: the size of the smallest faithful description of what
 * a trained classifier computes, found by the same rule for every kind of learner.
 *
 * Faithfulness, for every kind: the share of the test rows on which the description predicts the
 * classifier's own class — the most probable class of each, the first among equals (as the race
 * scores accuracy) — whatever the true label. A description is fitted on the training rows only
 * (at most `searchRows` of them, evenly spaced) and must agree with the classifier on at least
 * `target` (0.95) of them; its faithfulness is then measured on the test rows, where it falls
 * below the target as far as the learner is surer of its training rows (5 to 15 points on 1,000
 * MNIST digits, docs/race.md). Both searches are greedy: a count is an upper bound on the
 * smallest such set.
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
import { InputError } from '../errors.ts';
import type { Tensor as TensorLike } from '../tensor.ts';
import { tensor } from '../tensor.ts';
import { circuitDescription } from './description-circuit.ts';
import { prototypeDescription } from './description-prototypes.ts';
import {
  featureMatrix,
  gatherRows,
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
  /**
   * Training rows a description is fitted on, at most (default: 100 to 500 for a circuit, by the
   * network's size; 2,000 for prototypes).
   */
  searchRows?: number;
  threads?: number;
  signal?: AbortSignal;
}

export const DEFAULT_DESCRIPTION_TARGET = 0.95;

/** A description that is the classifier itself agrees with it everywhere. */
const WHOLE = { faithfulness: 1, fittedFaithfulness: 1 };

/**
 * The smallest faithful description of `classifier`, fitted on `train`, measured on `test`;
 * undefined for a network whose circuit search exceeds the work bound (description-circuit.ts).
 */
export async function describeClassifier(
  classifier: TrainedClassifier,
  rows: { train: RaceData; test: RaceData },
  options: DescriptionOptions = {},
): Promise<DescriptionSize | undefined> {
  checkOptions(options);
  const started = performance.now();
  const withSeconds = (found: Omit<DescriptionSize, 'seconds'>): DescriptionSize => ({
    ...found,
    seconds: (performance.now() - started) / 1000,
  });
  const { size } = classifier;
  const whole = { kind: 'parameters', count: size.count, ...WHOLE } as const;
  if (size.kind === 'nodes') return withSeconds({ ...whole, kind: 'tree nodes' });
  const train = exampleRows(rows.train, classifier.classes);
  const test = exampleRows(rows.test, classifier.classes);
  if (size.kind === 'prototypes')
    return withSeconds(await prototypeDescription(classifier, train, test, options));
  if (!classifier.model) return withSeconds(whole);
  const circuit = await circuitDescription(classifier.model(), train, test, options);
  if (circuit === 'too costly') return undefined;
  return withSeconds(circuit === 'no hidden units' ? whole : circuit);
}

function checkOptions({ target, searchRows }: DescriptionOptions): void {
  if (target !== undefined && !(target > 0 && target <= 1))
    throw new InputError(`A description's target agreement must be in (0, 1]; got ${target}.`);
  if (searchRows !== undefined && !(Number.isInteger(searchRows) && searchRows > 0))
    throw new InputError(
      `A description's search rows must be a positive integer; got ${searchRows}.`,
    );
}

/** The share of rows on which two predictions agree. */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let same = 0;
  for (let r = 0; r < a.length; r++) if (a[r] === b[r]) same++;
  return same / a.length;
}

/** Examples flattened to features, with the shape of one as the classifier takes it. */
export interface ExampleRows extends FeatureMatrix {
  /** One example's dims: [features], or [channels, height, width] for images. */
  exampleDims: number[];
}

function exampleRows(data: RaceData, classes: number): ExampleRows {
  return { ...featureMatrix({ ...data, classes }), exampleDims: data.inputs.dims.slice(1) };
}

/** At most `n` rows, evenly spaced (a set sorted by class is still sampled across classes). */
export function evenlySpacedRows(matrix: ExampleRows, n: number): ExampleRows {
  if (matrix.rows <= n) return matrix;
  const chosen = Array.from({ length: n }, (_, k) => Math.floor((k * matrix.rows) / n));
  return {
    ...matrix,
    values: gatherRows(matrix, chosen),
    rows: n,
    labels: Int32Array.from(chosen, (row) => matrix.labels[row]),
  };
}

/** The rows as a float32 tensor [rows, ...one example's dims], as classifiers and models take them. */
export const asTensor = (matrix: ExampleRows): TensorLike =>
  tensor('float32', [matrix.rows, ...matrix.exampleDims], matrix.values);
