/**
 * Forward-forward's per-layer learning signal against finite differences of each layer's own loss
 * (mean over positive and negative rows of softplus(s (θ − G)), G the sum of squared activities
 * of unit-length inputs), written in float64 apart from src/race: layer l's gradient is that of
 * L_l in W_l alone. The goodness that prediction sums is checked against the same reference.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../src/random.ts';
import { embedLabels, ForwardForwardRunner } from '../src/race/ff.ts';
import { flattenLayers, initialLayers, type LinearLayer, type MlpShape } from '../src/race/mlp.ts';
import { finiteDifferenceGradient, gaussian } from './race-oracles.ts';

const shape: MlpShape = { features: 3, hidden: [6, 4], classes: 3, act: 'relu' };
const threshold = 0.5;
const rows = 24;
const random = seededRandom(4);
const values = Float32Array.from({ length: rows * shape.features }, () => gaussian(random));
const labels = Int32Array.from({ length: rows }, (_, r) => r % 3);
// Positive rows (the label) then negative rows (a wrong label), as training feeds them.
const both = Float32Array.from([...values, ...values]);
const bothLabels = Int32Array.from([...labels, ...labels.map((label) => (label + 1) % 3)]);
const signs = Float32Array.from(bothLabels, (_, r) => (r < rows ? 1 : -1));
const embedded = embedLabels(both, shape.features, shape.classes, bothLabels, 1.5);

const softplus = (z: number) => Math.log1p(Math.exp(z));

/** Each row's goodness at layers 0 … `at`, layer `at`'s parameters replaced by `flat`. */
function plainGoodness(layers: readonly LinearLayer[], at: number, flat: Float64Array): number[] {
  const width = shape.features + shape.classes;
  return Array.from(signs, (_, r) => {
    let x = Array.from(embedded.subarray(r * width, (r + 1) * width), Number);
    for (let l = 0; l <= at; l++) {
      const { inFeatures, outFeatures } = layers[l];
      const weight = l === at ? flat.subarray(0, outFeatures * inFeatures) : layers[l].weight;
      const bias = l === at ? flat.subarray(outFeatures * inFeatures) : layers[l].bias;
      const length = Math.hypot(...x) + 1e-6;
      const unit = x.map((v) => v / length);
      x = Array.from({ length: outFeatures }, (_, o) =>
        Math.max(
          0,
          unit.reduce((s, v, i) => s + weight[o * inFeatures + i] * v, bias[o]),
        ),
      );
    }
    return x.reduce((s, h) => s + h * h, 0);
  });
}

function layerLoss(layers: readonly LinearLayer[], at: number, flat: Float64Array): number {
  const goodness = plainGoodness(layers, at, flat);
  return (
    goodness.reduce((sum, g, r) => sum + softplus(signs[r] * (threshold - g)), 0) / signs.length
  );
}

describe('race: forward-forward', () => {
  it('gives each layer its own loss gradient, the same losses and goodness', async () => {
    const layers = initialLayers({ ...shape, features: 6, classes: 1 }, 8).slice(0, -1);
    // Larger weights than the initialisation, so that goodness crosses the threshold for some rows.
    for (const layer of layers) layer.weight.forEach((w, i) => (layer.weight[i] = 4 * w));
    const learner = await ForwardForwardRunner.open(shape, 1, threshold);
    const measurer = await ForwardForwardRunner.open(shape, 1);
    try {
      const { gradients, loss } = await learner.gradients(layers, embedded, signs);
      const goodness = await measurer.goodness(layers, embedded, signs.length);
      let plainTotal = 0;
      layers.forEach((layer, l) => {
        const at = Float64Array.from(flattenLayers([layer]));
        plainTotal += layerLoss(layers, l, at);
        const expected = finiteDifferenceGradient((p) => layerLoss(layers, l, p), at, 1e-6);
        const actual = flattenLayers([gradients[l]]);
        const worst = Math.max(...Array.from(expected, (e, i) => Math.abs(e - actual[i])));
        const largest = Math.max(...Array.from(expected, Math.abs));
        assert.ok(largest > 1e-2, `layer ${l + 1} has a gradient to check`);
        assert.ok(worst < 1e-4, `layer ${l + 1}: worst difference ${worst} (largest ${largest})`);
        const plain = plainGoodness(layers, l, at);
        const goodnessError = Math.max(...plain.map((g, r) => Math.abs(g - goodness[l][r])));
        assert.ok(goodnessError < 1e-4, `layer ${l + 1} goodness: ${goodnessError}`);
      });
      assert.ok(Math.abs(loss - plainTotal) < 1e-5, `loss ${loss} vs ${plainTotal}`);
    } finally {
      await learner.release();
      await measurer.release();
    }
  });
});
