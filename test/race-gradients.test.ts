/**
 * The learners without backprop against the true gradient, by central differences of a float64
 * loss written apart from src/race (test/race-oracles.ts):
 * - DFA with B_1 = W_headᵀ on one hidden layer is backprop, so it equals the gradient; with random
 *   B only the head's part does.
 * - ES (raw fitness, small σ) and SPSA estimates converge to it at the rate their sampling
 *   predicts: for ĝ = (1/n) Σ ε εᵀ g with ε ~ N(0, I), E‖ĝ − g‖² = (d + 1)‖g‖²/n; for Rademacher
 *   Δ, ĝ = (1/n) Σ Δ Δᵀ g and E‖ĝ − g‖² = (d − 1)‖g‖²/n.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../src/random.ts';
import { featureMatrix } from '../src/race/contender.ts';
import { DfaRunner, randomFeedback } from '../src/race/dfa.ts';
import { esGradient } from '../src/race/es.ts';
import {
  crossEntropy,
  flattenLayers,
  initialLayers,
  MlpRunner,
  unflattenLayers,
  type LinearLayer,
  type MlpShape,
} from '../src/race/mlp.ts';
import { NoiseTable } from '../src/race/network.ts';
import { spsaGradient } from '../src/race/spsa.ts';
import {
  finiteDifferenceGradient,
  norm,
  plainLoss,
  twoBlobs,
  type PlainLayers,
} from './race-oracles.ts';

const shape: MlpShape = { features: 4, hidden: [5], classes: 3, act: 'tanh' };
const blobs = twoBlobs(48, shape.features, 3, 1);
// Three classes: the blob label, with a third class where the first feature is large.
const values = blobs.inputs.data as Float32Array;
const labels = Int32Array.from(blobs.labels, (label, r) =>
  values[r * shape.features] > 0.8 ? 2 : label,
);
const rows = labels.length;

function plain(like: readonly LinearLayer[], flat: Float64Array): PlainLayers {
  const layers = unflattenLayers(like, Float32Array.from(flat));
  let offset = 0;
  return layers.map(({ inFeatures, outFeatures }) => {
    const weight = Array.from({ length: outFeatures }, (_, o) =>
      Array.from(flat.subarray(offset + o * inFeatures, offset + (o + 1) * inFeatures)),
    );
    offset += outFeatures * inFeatures;
    const bias = Array.from(flat.subarray(offset, offset + outFeatures));
    offset += outFeatures;
    return { weight, bias };
  });
}

function trueGradient(
  layers: readonly LinearLayer[],
  act: 'relu' | 'tanh' = shape.act,
): Float64Array {
  const at = Float64Array.from(flattenLayers(layers));
  return finiteDifferenceGradient((p) => plainLoss(plain(layers, p), act, values, labels), at);
}

const maxAbsDifference = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((worst, value, i) => Math.max(worst, Math.abs(value - b[i])), 0);

async function withRunner<T>(body: (runner: MlpRunner) => Promise<T>): Promise<T> {
  const runner = await MlpRunner.open(shape, 1);
  try {
    return await body(runner);
  } finally {
    await runner.release();
  }
}

describe('race: gradients of the learners without backprop', () => {
  for (const act of ['tanh', 'relu'] as const) {
    it(`DFA, B = W_headᵀ, one hidden layer: the gradient; random B: not (${act})`, async () => {
      const dfaShape: MlpShape = { ...shape, act };
      const dfa = await DfaRunner.open(dfaShape, 1);
      try {
        const layers = initialLayers(dfaShape, act === 'tanh' ? 5 : 6);
        const expected = trueGradient(layers, act);
        // The graph takes B_lᵀ [classes, width]: B_1 = W_headᵀ is fed as W_head itself.
        const alignedStep = await dfa.directions(layers, [layers[1].weight], values, labels);
        const aligned = flattenLayers(alignedStep.gradients);
        assert.ok(
          maxAbsDifference(aligned, expected) < 1e-5,
          `DFA(B = Wᵀ) vs finite differences: ${maxAbsDifference(aligned, expected)}`,
        );
        const randomStep = await dfa.directions(
          layers,
          randomFeedback(dfaShape, 9),
          values,
          labels,
        );
        const random = flattenLayers(randomStep.gradients);
        const hiddenCount = shape.features * 5 + 5;
        assert.ok(
          maxAbsDifference(random.subarray(0, hiddenCount), expected.subarray(0, hiddenCount)) >
            1e-3,
          'random feedback is not backprop',
        );
        assert.ok(
          maxAbsDifference(random.subarray(hiddenCount), expected.subarray(hiddenCount)) < 1e-5,
          'the head gets its own gradient',
        );
      } finally {
        await dfa.release();
      }
    });
  }

  /**
   * Mean squared relative error of an estimator with n samples over four draws, against the
   * predicted k/n (one draw's error spreads widely when a few components dominate the gradient).
   */
  async function convergence(
    estimate: (n: number, seed: number) => Promise<Float32Array>,
    expected: Float64Array,
    dimensionTerm: number,
  ) {
    const results = [];
    for (const n of [64, 1024]) {
      let squared = 0;
      for (let draw = 0; draw < 4; draw++) {
        squared +=
          (norm(Array.from(await estimate(n, 31 * draw + n), (g, i) => g - expected[i])) /
            norm(expected)) **
            2 /
          4;
      }
      results.push({ n, squared, predicted: dimensionTerm / n });
    }
    return results;
  }

  for (const method of ['ES', 'SPSA'] as const) {
    it(`${method}'s estimate converges to the gradient at the predicted rate`, async () => {
      await withRunner(async (runner) => {
        const layers = initialLayers(shape, 5);
        const theta = flattenLayers(layers);
        const matrix = featureMatrix({ inputs: blobs.inputs, labels, classes: 3 });
        const loss = async (p: Float32Array) =>
          crossEntropy(
            await runner.probabilities(unflattenLayers(layers, p), matrix.values, rows),
            labels,
            3,
          );
        const expected = trueGradient(layers);
        const d = theta.length;
        const results =
          method === 'ES'
            ? await convergence(
                (n, seed) =>
                  esGradient(loss, theta, {
                    pairs: n,
                    sigma: 1e-3,
                    shaping: 'raw',
                    noise: new NoiseTable(seed, theta.length),
                  }),
                expected,
                d + 1,
              )
            : await convergence(
                (n, seed) =>
                  spsaGradient(loss, theta, { c: 1e-3, estimates: n, uniform: seededRandom(seed) }),
                expected,
                d - 1,
              );
        for (const { n, squared, predicted } of results) {
          const ratio = squared / predicted;
          assert.ok(
            ratio > 0.6 && ratio < 1.5,
            `${method}, n = ${n}: mean squared relative error ${squared.toFixed(4)}, ` +
              `predicted ${predicted.toFixed(4)}`,
          );
        }
        assert.ok(
          results[1].squared < results[0].squared / 8,
          `16× the samples: ${results[0].squared} → ${results[1].squared}`,
        );
      });
    });
  }
});
