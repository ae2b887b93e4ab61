/**
 * Logistic regression against its optimality condition: at the fitted parameters the gradient of
 * the penalised loss — by central differences of a float64 loss written apart from src/race —
 * vanishes (J is strictly convex, so that point is the one minimum); against scikit-learn's
 * coefficients for the same objective on a real table (test/fixtures/race-logistic/make.py); and
 * against a planted linearly separable set, which it classifies.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readTable } from '../src/data/csv.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { featureMatrix } from '../src/race/contender.ts';
import { fitLogisticRegression, logisticLayer, logisticRegression } from '../src/race/logistic.ts';
import { crossEntropy, MlpRunner } from '../src/race/mlp.ts';
import { accuracy, finiteDifferenceGradient, gaussian, norm, plainLoss } from './race-oracles.ts';

function penalisedLoss(
  parameters: Float64Array,
  features: number,
  classes: number,
  l2: number,
  inputs: Float32Array,
  labels: Int32Array,
) {
  const weight = Array.from({ length: classes }, (_, c) =>
    Array.from(parameters.subarray(c * features, (c + 1) * features)),
  );
  const bias = Array.from(parameters.subarray(classes * features));
  const penalty = weight.flat().reduce((sum, w) => sum + w * w, 0);
  return plainLoss([{ weight, bias }], 'relu', inputs, labels) + (l2 / 2) * penalty;
}

const normOfWeights = (p: Float64Array, count: number) => norm(p.subarray(0, count));

/** Labels from a random linear map: argmax_c (W* x)_c. */
function plantedLinear(rows: number, features: number, classes: number, seed: number) {
  const random = seededRandom(seed);
  const planted = Array.from({ length: classes * features }, () => gaussian(random));
  const values = Float32Array.from({ length: rows * features }, () => gaussian(random));
  const labels = Int32Array.from({ length: rows }, (_, r) => {
    const scores = Array.from({ length: classes }, (_, c) =>
      planted
        .slice(c * features, (c + 1) * features)
        .reduce((s, w, f) => s + w * values[r * features + f], 0),
    );
    return scores.indexOf(Math.max(...scores));
  });
  return { inputs: tensor('float32', [rows, features], values), labels, classes };
}

describe('race: logistic regression', () => {
  it('stops where the finite-difference gradient of the penalised loss vanishes', async () => {
    const [features, classes, l2] = [4, 3, 0.05];
    const random = seededRandom(7);
    const rows = 120;
    const values = Float32Array.from({ length: rows * features }, () => gaussian(random));
    const labels = Int32Array.from({ length: rows }, (_, r) =>
      values[r * features] + gaussian(random) > 0 ? r % 2 : 2,
    );
    const matrix = featureMatrix({
      inputs: tensor('float32', [rows, features], values),
      labels,
      classes,
    });
    const loss = (p: Float64Array) => penalisedLoss(p, features, classes, l2, values, labels);
    const zeros = new Float64Array((features + 1) * classes);
    assert.ok(
      norm(finiteDifferenceGradient(loss, zeros)) > 0.1,
      'the start is not already optimal',
    );
    const fitted = fitLogisticRegression(matrix, l2, {
      seed: 0,
      budgetSeconds: 30,
      maxIterations: 500,
    });
    const gradient = finiteDifferenceGradient(loss, fitted);
    assert.ok(norm(gradient) < 1e-6, `‖∇J‖ = ${norm(gradient)} at the fit`);
    // The onnxruntime forward pass with these weights gives the plain loss.
    const runner = await MlpRunner.open({ features, hidden: [], classes, act: 'relu' }, 1);
    try {
      const probabilities = await runner.probabilities(
        [logisticLayer(matrix, fitted)],
        values,
        rows,
      );
      assert.ok(
        Math.abs(
          crossEntropy(probabilities, labels, classes) -
            loss(fitted) +
            (l2 / 2) * normOfWeights(fitted, features * classes) ** 2,
        ) < 1e-5,
      );
    } finally {
      await runner.release();
    }
  });

  it("gives scikit-learn's coefficients on the digits table (the same λ, the same optimum)", () => {
    const fixtures = new URL('./fixtures/', import.meta.url);
    const sklearn = JSON.parse(
      readFileSync(new URL('race-logistic/sklearn.json', fixtures), 'utf8'),
    ) as { lambda: number; coefficients: number[][]; intercepts: number[] };
    const table = readTable(new URL('race-trees/digits-train.csv', fixtures).pathname, {
      labelColumn: 'label',
    });
    const matrix = featureMatrix({ inputs: table.features, labels: table.labels!, classes: 10 });
    const fitted = fitLogisticRegression(matrix, sklearn.lambda, {
      seed: 0,
      budgetSeconds: 60,
      maxIterations: 5000,
    });
    const weights = sklearn.coefficients.flat();
    const optimum = Float64Array.from([...weights, ...sklearn.intercepts]);
    // J by the float64 loss above: scikit-learn's point (newton-cg, gradient < 1e-9) is the
    // optimum to 1e-12; the fit must reach the same value.
    const values = matrix.values;
    const loss = (p: Float64Array) =>
      penalisedLoss(p, 64, 10, sklearn.lambda, values, matrix.labels);
    const [fittedLoss, optimalLoss] = [loss(fitted), loss(optimum)];
    const largest = Math.max(...weights.map(Math.abs));
    const weightError = Math.max(...weights.map((w, i) => Math.abs(w - fitted[i])));
    console.log(
      `logistic regression vs scikit-learn on digits: J ${fittedLoss} vs ${optimalLoss}, ` +
        `max |ΔW| ${weightError.toExponential(2)} (largest |W| ${largest.toFixed(3)})`,
    );
    assert.ok(fittedLoss - optimalLoss < 1e-7, `J = ${fittedLoss}, scikit-learn's ${optimalLoss}`);
    // W is well determined; the intercepts lie along a flat direction of J (they move J by
    // < 1e-8 here), so they are compared through J, not one by one.
    assert.ok(weightError < 2e-3 * largest, `max |ΔW| = ${weightError}`);
  });

  it('classifies a planted linearly separable set, through onnxruntime', async () => {
    const planted = plantedLinear(1000, 5, 3, 11);
    const rowsOf = (start: number, end: number) => ({
      inputs: tensor(
        'float32',
        [end - start, 5],
        (planted.inputs.data as Float32Array).slice(start * 5, end * 5),
      ),
      labels: planted.labels.slice(start, end),
      classes: 3,
    });
    const [train, heldOut] = [rowsOf(0, 600), rowsOf(600, 1000)];
    const started = performance.now();
    const classifier = await logisticRegression({ l2: 1e-6 }).train(train, {
      seed: 0,
      budgetSeconds: 20,
    });
    try {
      const seconds = (performance.now() - started) / 1000;
      const accuracyOn = async (data: typeof train) =>
        accuracy((await classifier.predictProba(data.inputs)).data as Float32Array, data.labels, 3);
      const [trainAccuracy, heldOutAccuracy] = [await accuracyOn(train), await accuracyOn(heldOut)];
      console.log(
        `logistic regression, planted linear: train ${trainAccuracy}, ` +
          `held-out ${heldOutAccuracy}, ${seconds.toFixed(2)} s`,
      );
      assert.ok(trainAccuracy > 0.99, `train accuracy ${trainAccuracy}`);
      assert.ok(heldOutAccuracy > 0.95, `held-out accuracy ${heldOutAccuracy}`);
      assert.deepEqual(classifier.size, { kind: 'parameters', count: 18 });
    } finally {
      await classifier.release();
    }
  });
});
