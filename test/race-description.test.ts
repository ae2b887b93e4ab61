/**
 * The scorecard's comprehensibility figure against planted ground truth: a network where only k
 * hidden units carry the label gives a circuit of exactly those k (and, asked for less
 * faithfulness, drops carrying units at the planted cost of each); c well-separated clusters
 * need c prototypes; on tiny sets the prototypes found meet the target by a brute-force check and
 * are compared with the brute-force smallest set; trees and networks without hidden units are
 * their own description.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../src/errors.ts';
import { featureMatrix, type TrainedClassifier } from '../src/race/contender.ts';
import { describeClassifier as describeOrSkip } from '../src/race/description.ts';
import { smallestPrototypes } from '../src/race/description-prototypes.ts';
import { directFeedbackAlignment } from '../src/race/dfa.ts';
import { forwardForward } from '../src/race/ff.ts';
import { kNearestNeighbours } from '../src/race/knn.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import {
  initialLayers,
  mlpClassifier,
  MlpRunner,
  type LinearLayer,
  type MlpShape,
} from '../src/race/mlp.ts';
import { race } from '../src/race/race.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { gaussian, rowsOf, twoBlobs } from './race-oracles.ts';

/**
 * k signal features, two noise features; class j < k has feature j near 1, class k has none.
 * Classes in turn, so every class has exactly rows / (k + 1) rows.
 */
function plantedRows(rows: number, k: number, seed: number) {
  const random = seededRandom(seed);
  const features = k + 2;
  const labels = Int32Array.from({ length: rows }, (_, r) => r % (k + 1));
  const values = Float32Array.from({ length: rows * features }, () => 0.1 * gaussian(random));
  labels.forEach((label, r) => {
    if (label < k) values[r * features + label] += 1;
  });
  return { inputs: tensor('float32', [rows, features], values), labels, classes: k + 1 };
}

/** The description, which every case here is small enough to have. */
async function describeClassifier(...args: Parameters<typeof describeOrSkip>) {
  const found = await describeOrSkip(...args);
  assert.ok(found, 'a description');
  return found;
}

const CARRIERS = [1, 5, 8, 10]; // the hidden units that carry the label (k = 4 of 12)
// Units 0, 3, 6 and 9 keep all-zero weights: always 0.
const NOISE_UNITS = [2, 4, 7, 11]; // random input weights, no path to the logits

/**
 * One hidden layer of 12 relu units: carrier j is relu(x_j) and alone raises logit j; logit k is
 * a constant 0.5. A class-j row predicts j (h_j ≈ 1 > 0.5), a class-k row predicts k. Ablating
 * carrier j to its mean (≈ 1/(k + 1) < 0.5) turns every class-j row to k: it costs exactly
 * 1/(k + 1) of the agreement; the other units cost nothing.
 */
async function plantedNetwork(k: number): Promise<TrainedClassifier> {
  const features = k + 2;
  const hidden = 12;
  const shape: MlpShape = { features, hidden: [hidden], classes: k + 1, act: 'relu' };
  const random = seededRandom(5);
  const fc1: LinearLayer = {
    module: 'fc1',
    inFeatures: features,
    outFeatures: hidden,
    weight: new Float32Array(hidden * features),
    bias: new Float32Array(hidden),
  };
  CARRIERS.forEach((unit, j) => (fc1.weight[unit * features + j] = 1));
  for (const unit of NOISE_UNITS) {
    for (let f = 0; f < features; f++) fc1.weight[unit * features + f] = gaussian(random);
    fc1.bias[unit] = 0.5;
  }
  const head: LinearLayer = {
    module: 'head',
    inFeatures: hidden,
    outFeatures: k + 1,
    weight: new Float32Array((k + 1) * hidden),
    bias: new Float32Array(k + 1),
  };
  CARRIERS.forEach((unit, j) => (head.weight[j * hidden + unit] = 1));
  head.bias[k] = 0.5;
  return mlpClassifier(await MlpRunner.open(shape, 1), [fc1, head]);
}

describe('race: the smallest faithful description', () => {
  it('of a planted network is the circuit of the k units that carry the label', async () => {
    const k = CARRIERS.length;
    const [train, test] = [plantedRows(250, k, 1), plantedRows(250, k, 2)];
    const network = await plantedNetwork(k);
    try {
      // The planted network predicts every row's class: its own predictions are the labels.
      const own = (await network.predictProba(test.inputs)).data as Float32Array;
      const predicted = test.labels.map((_, r) => {
        const row = Array.from(own.subarray(r * (k + 1), (r + 1) * (k + 1)));
        return row.indexOf(Math.max(...row));
      });
      assert.deepEqual(predicted, test.labels);
      const found = await describeClassifier(network, { train, test });
      assert.equal(found.kind, 'circuit units');
      assert.equal(found.count, k);
      assert.equal(found.outOf, 12);
      assert.equal(found.faithfulness, 1);
      assert.equal(found.fittedFaithfulness, 1);
      // Asked for 55%: two carriers go (1 − 2/5 = 60% ≥ 55%), a third would leave 40%; on the
      // balanced test rows the two classes they carried are lost, exactly 2/5 of the rows.
      const loose = await describeClassifier(network, { train, test }, { target: 0.55 });
      assert.equal(loose.count, 2);
      assert.equal(loose.faithfulness, 0.6);
    } finally {
      await network.release();
    }
  });

  it('of forward-forward is a circuit of its hidden units under every label', async () => {
    const blobs = twoBlobs(300, 4, 3, 5);
    const [train, test] = [rowsOf(blobs, 0, 200), rowsOf(blobs, 200, 300)];
    const contender = forwardForward({ hidden: [6, 5], maxSteps: 200 });
    const classifier = await contender.train(train, { seed: 1, budgetSeconds: 30 });
    try {
      const found = await describeClassifier(classifier, { train, test });
      assert.equal(found.kind, 'circuit units');
      assert.equal(found.outOf, 11);
      assert.ok(found.count >= 1 && found.count < 11, `${found.count} units`);
      assert.ok(found.fittedFaithfulness >= 0.95, `${found.fittedFaithfulness}`);
      assert.ok(found.faithfulness >= 0.9, `${found.faithfulness}`);
    } finally {
      await classifier.release();
    }
  });

  it('gives a network of features the rows flat when the task has images', async () => {
    const blobs = twoBlobs(200, 4, 9, 5);
    const asImages = (rows: ReturnType<typeof rowsOf>) => ({
      ...rows,
      inputs: { ...rows.inputs, dims: [rows.inputs.dims[0], 1, 2, 2] },
    });
    const [train, test] = [asImages(rowsOf(blobs, 0, 120)), asImages(rowsOf(blobs, 120, 200))];
    const contender = directFeedbackAlignment({ hidden: [5], maxSteps: 100 });
    const classifier = await contender.train(train, { seed: 1, budgetSeconds: 30 });
    try {
      const found = await describeClassifier(classifier, { train, test });
      assert.equal(found.kind, 'circuit units');
      assert.equal(found.outOf, 5);
    } finally {
      await classifier.release();
    }
  });

  it('of kNN on c well-separated clusters is c prototypes', async () => {
    const c = 6;
    const [train, test] = [clusters(300, c, 1), clusters(120, c, 2)];
    const knn = await kNearestNeighbours({ k: 5 }).train(train, { seed: 1, budgetSeconds: 10 });
    try {
      const found = await describeClassifier(knn, { train, test });
      assert.deepEqual(
        { kind: found.kind, count: found.count, outOf: found.outOf },
        { kind: 'prototypes', count: c, outOf: 300 },
      );
      assert.equal(found.faithfulness, 1);
    } finally {
      await knn.release();
    }
  });

  it('finds prototypes that meet the target, compared with the brute-force smallest set', () => {
    const tight = featureMatrix(clusters(12, 3, 4));
    const tightFound = smallestPrototypes(tight, tight.labels, 0.95).chosen;
    assert.equal(tightFound.length, bruteForceSmallest(tight, tight.labels, 0.95));
    // Overlapping classes: greedy selection is an upper bound on the smallest set (finding that
    // set is NP-hard: Wilfong 1991); it must meet the target and never beat the true minimum.
    const gaps: number[] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const rows = featureMatrix(overlapping(13, seed));
      const { chosen, fittedFaithfulness } = smallestPrototypes(rows, rows.labels, 0.9);
      const checked = nearestPrototypeAgreement(rows, rows.labels, chosen);
      assert.equal(fittedFaithfulness, checked);
      assert.ok(checked >= 0.9, `seed ${seed}: ${checked}`);
      gaps.push(chosen.length - bruteForceSmallest(rows, rows.labels, 0.9));
    }
    assert.ok(Math.min(...gaps) >= 0, `gaps ${gaps}`);
    console.log(`greedy prototypes minus the brute-force smallest, 8 sets: ${gaps.join(', ')}`);
  });

  it('of trees is their node count, of logistic regression its weights', async () => {
    const trees: TrainedClassifier = {
      classes: 2,
      size: { kind: 'nodes', count: 417 },
      predictProba: async () => tensor('float32', [0, 2], []),
      release: async () => {},
    };
    const blobs = twoBlobs(200, 3, 6);
    const [train, test] = [rowsOf(blobs, 0, 100), rowsOf(blobs, 100, 200)];
    const whole = { faithfulness: 1, fittedFaithfulness: 1 };
    const forest = await describeClassifier(trees, { train, test });
    assert.deepEqual(
      { ...forest, seconds: 0 },
      { kind: 'tree nodes', count: 417, ...whole, seconds: 0 },
    );
    const logistic = await logisticRegression().train(train, { seed: 1, budgetSeconds: 10 });
    try {
      const found = await describeClassifier(logistic, { train, test });
      assert.deepEqual(
        { ...found, seconds: 0 },
        { kind: 'parameters', count: 8, ...whole, seconds: 0 },
      );
    } finally {
      await logistic.release();
    }
  });

  it('of a network whose search would take minutes is left out', async () => {
    // One hidden layer of 300 units: 300 units × 300 values × 100 rows is over the 2^23 bound.
    const shape: MlpShape = { features: 3, hidden: [300], classes: 2, act: 'relu' };
    const wide = mlpClassifier(await MlpRunner.open(shape, 1), initialLayers(shape, 1));
    const blobs = twoBlobs(40, 3, 8);
    try {
      const rows = { train: rowsOf(blobs, 0, 20), test: rowsOf(blobs, 20, 40) };
      assert.equal(await describeOrSkip(wide, rows), undefined);
    } finally {
      await wide.release();
    }
  });

  it('refuses a target outside (0, 1] and search rows that are not a count', async () => {
    const blobs = twoBlobs(40, 3, 8);
    const rows = { train: rowsOf(blobs, 0, 20), test: rowsOf(blobs, 20, 40) };
    const knn = await kNearestNeighbours({ k: 1 }).train(rows.train, { seed: 1, budgetSeconds: 5 });
    try {
      for (const options of [{ target: 0 }, { target: 1.5 }, { searchRows: 0.5 }]) {
        await assert.rejects(describeOrSkip(knn, rows, options), InputError);
      }
    } finally {
      await knn.release();
    }
  });

  it('is on every run of the race unless left out', async () => {
    const blobs = twoBlobs(200, 3, 7);
    const split = { train: rowsOf(blobs, 0, 120), test: rowsOf(blobs, 120, 200) };
    const knn = kNearestNeighbours({ k: 3 });
    const [measured] = await race([knn], split, { seeds: [1], budgetSeconds: 10 });
    assert.equal(measured.runs[0].description?.kind, 'prototypes');
    const options = { seeds: [1], budgetSeconds: 10, description: false as const };
    const [skipped] = await race([knn], split, options);
    assert.equal(skipped.runs[0].description, undefined);
  });
});

/** c Gaussian clusters (σ = 0.3) around centres 10 apart on the axes of a c-dimensional space. */
function clusters(rows: number, c: number, seed: number) {
  const random = seededRandom(seed);
  const labels = Int32Array.from({ length: rows }, (_, r) => r % c);
  const values = Float32Array.from({ length: rows * c }, () => 0.3 * gaussian(random));
  labels.forEach((label, r) => (values[r * c + label] += 10));
  return { inputs: tensor('float32', [rows, c], values), labels, classes: c };
}

/** Three classes in two dimensions whose clouds overlap. */
function overlapping(rows: number, seed: number) {
  const random = seededRandom(seed);
  const labels = Int32Array.from({ length: rows }, (_, r) => r % 3);
  const values = Float32Array.from({ length: rows * 2 }, () => gaussian(random));
  labels.forEach((label, r) => (values[r * 2] += 1.5 * label));
  return { inputs: tensor('float32', [rows, 2], values), labels, classes: 3 };
}

type Rows = ReturnType<typeof featureMatrix>;

/** Agreement of the 1-NN rule over `prototypes` (ties to the first listed) with `labels`. */
function nearestPrototypeAgreement(rows: Rows, labels: Int32Array, prototypes: number[]): number {
  const { features, values } = rows;
  let agreeing = 0;
  for (let r = 0; r < rows.rows; r++) {
    let [nearest, best] = [-1, Infinity];
    for (const p of prototypes) {
      let d = 0;
      for (let f = 0; f < features; f++)
        d += (values[r * features + f] - values[p * features + f]) ** 2;
      if (d < best) [nearest, best] = [p, d];
    }
    if (labels[nearest] === labels[r]) agreeing++;
  }
  return agreeing / rows.rows;
}

/** The size of the smallest subset meeting the target, by trying every subset (rows ≤ 16). */
function bruteForceSmallest(rows: Rows, labels: Int32Array, target: number): number {
  let smallest = rows.rows;
  for (let mask = 1; mask < 1 << rows.rows; mask++) {
    const subset = [...Array(rows.rows).keys()].filter((r) => mask & (1 << r));
    if (subset.length >= smallest) continue;
    if (nearestPrototypeAgreement(rows, labels, subset) >= target) smallest = subset.length;
  }
  return smallest;
}
