/**
 * A kNN's description: a few of its stored examples whose nearest-prototype rule (1-NN over the
 * prototypes, each carrying the kNN's own prediction at it) gives the kNN's predictions.
 *
 * 1. Hart's condensed nearest neighbour (1968), on the fitting rows labelled by the kNN's own
 *    predictions: the first row is a prototype; pass over the rows in order, and every row the
 *    current prototypes classify wrongly becomes one; repeat until a pass adds none. The result
 *    is consistent: it gives every fitting row the kNN's class.
 * 2. Greedy pruning, as inspect's circuit search prunes units: round after round, drop the
 *    prototype whose removal loses the least agreement, while agreement on the fitting rows stays
 *    at or above the target. Hart's set is consistent, not small: on 1,000 MNIST digits pruning
 *    removes most of it.
 *
 * Distances are squared Euclidean in float64; ties go to the prototype chosen first.
 */
import { predictedClasses } from '../tensor-math.ts';
import { NeighbourIndex } from './knn.ts';
import { gatherRows, type FeatureMatrix, type TrainedClassifier } from './contender.ts';
import {
  agreement,
  asTensor,
  DEFAULT_DESCRIPTION_TARGET,
  evenlySpacedRows,
  type DescriptionOptions,
  type DescriptionSize,
  type ExampleRows,
} from './description.ts';

/** Fitting rows by default: Hart's pass costs rows × features per prototype added. */
const DEFAULT_PROTOTYPE_ROWS = 2000;

export async function prototypeDescription(
  classifier: TrainedClassifier,
  train: ExampleRows,
  test: ExampleRows,
  options: DescriptionOptions,
): Promise<Omit<DescriptionSize, 'seconds'>> {
  const fitting = evenlySpacedRows(train, options.searchRows ?? DEFAULT_PROTOTYPE_ROWS);
  const own = await predictionsOf(classifier, fitting);
  const target = options.target ?? DEFAULT_DESCRIPTION_TARGET;
  const { chosen, fittedFaithfulness } = smallestPrototypes(fitting, own, target, options.signal);
  const prototypes: FeatureMatrix = {
    ...fitting,
    rows: chosen.length,
    values: gatherRows(fitting, chosen),
    labels: Int32Array.from(chosen, (row) => own[row]),
  };
  const index = await NeighbourIndex.open(prototypes, 1, options.threads ?? 1);
  try {
    const nearest = await index.nearest(asTensor(test));
    const described = Int32Array.from(nearest, (prototype) => prototypes.labels[prototype]);
    return {
      kind: 'prototypes',
      count: chosen.length,
      outOf: train.rows,
      faithfulness: agreement(described, await predictionsOf(classifier, test)),
      fittedFaithfulness,
    };
  } finally {
    await index.release();
  }
}

/**
 * Rows of `rows` (indices, in the order chosen) whose nearest-prototype rule agrees with `own` on
 * at least `target` of the rows: Hart's condensed set, then greedy pruning.
 */
export function smallestPrototypes(
  rows: FeatureMatrix,
  own: Int32Array,
  target: number,
  signal?: AbortSignal,
): { chosen: number[]; fittedFaithfulness: number } {
  const { chosen, distances } = condensedNearestNeighbours(rows, own, signal);
  return prunePrototypes(chosen, distances, own, target, signal);
}

/**
 * Hart's condensed nearest neighbour. Returns the prototypes in the order added and, for each,
 * its squared distance to every row ([prototypes][rows]).
 */
function condensedNearestNeighbours(rows: FeatureMatrix, labels: Int32Array, signal?: AbortSignal) {
  const chosen: number[] = [];
  const distances: Float64Array[] = [];
  const nearest = new Float64Array(rows.rows).fill(Infinity); // distance to the nearest prototype
  const nearestLabel = new Int32Array(rows.rows).fill(-1);
  const isPrototype = new Uint8Array(rows.rows);
  const add = (row: number) => {
    isPrototype[row] = 1;
    const column = squaredDistances(rows, row);
    column.forEach((d, r) => {
      if (d < nearest[r]) [nearest[r], nearestLabel[r]] = [d, labels[row]];
    });
    chosen.push(row);
    distances.push(column);
  };
  add(0);
  for (let changed = true; changed;) {
    signal?.throwIfAborted();
    changed = false;
    for (let r = 0; r < rows.rows; r++) {
      // A prototype stays wrong only under an identical earlier one: adding it again cannot help.
      if (nearestLabel[r] === labels[r] || isPrototype[r]) continue;
      add(r);
      changed = true;
    }
  }
  return { chosen, distances };
}

/**
 * Backward greedy selection: with each row's nearest and second-nearest remaining prototype,
 * dropping prototype p changes only the rows whose nearest is p (they go to their second), so
 * one pass over [rows × prototypes] scores every candidate of a round. Returns the prototypes
 * kept and their agreement with `labels`.
 */
function prunePrototypes(
  chosen: readonly number[],
  distances: readonly Float64Array[],
  labels: Int32Array,
  target: number,
  signal?: AbortSignal,
): { chosen: number[]; fittedFaithfulness: number } {
  const rows = labels.length;
  const alive = chosen.map(() => true);
  const labelOf = chosen.map((row) => labels[row]);
  let agreeing = 0;
  for (let left = chosen.length; ; left--) {
    signal?.throwIfAborted();
    const { first, second } = twoNearest(distances, alive, rows);
    agreeing = 0;
    const change = new Float64Array(chosen.length); // rows gained by dropping p (≤ 0)
    for (let r = 0; r < rows; r++) {
      const agreesNow = labelOf[first[r]] === labels[r];
      const agreesAfter = second[r] >= 0 && labelOf[second[r]] === labels[r];
      agreeing += Number(agreesNow);
      change[first[r]] += Number(agreesAfter) - Number(agreesNow);
    }
    if (left === 1) break;
    let best = -1;
    for (let p = 0; p < chosen.length; p++) {
      if (alive[p] && (best < 0 || change[p] > change[best])) best = p;
    }
    if ((agreeing + change[best]) / rows < target) break;
    alive[best] = false;
  }
  return { chosen: chosen.filter((_, p) => alive[p]), fittedFaithfulness: agreeing / rows };
}

/** For each row, the nearest and second-nearest live prototype (−1 when there is none). */
function twoNearest(distances: readonly Float64Array[], alive: readonly boolean[], rows: number) {
  const first = new Int32Array(rows).fill(-1);
  const second = new Int32Array(rows).fill(-1);
  for (let r = 0; r < rows; r++) {
    for (let p = 0; p < distances.length; p++) {
      if (!alive[p]) continue;
      const d = distances[p][r];
      if (first[r] < 0 || d < distances[first[r]][r]) [second[r], first[r]] = [first[r], p];
      else if (second[r] < 0 || d < distances[second[r]][r]) second[r] = p;
    }
  }
  return { first, second };
}

/** ‖x_r − x_row‖² for every row r, in float64. */
function squaredDistances(rows: FeatureMatrix, row: number): Float64Array {
  const { features, values } = rows;
  const out = new Float64Array(rows.rows);
  const base = row * features;
  for (let r = 0; r < rows.rows; r++) {
    let sum = 0;
    for (let f = 0, at = r * features; f < features; f++, at++) {
      const d = values[at] - values[base + f];
      sum += d * d;
    }
    out[r] = sum;
  }
  return out;
}

async function predictionsOf(classifier: TrainedClassifier, rows: ExampleRows) {
  const scores = await classifier.predictProba(asTensor(rows));
  return predictedClasses(scores);
}
