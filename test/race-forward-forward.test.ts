/**
 * Forward-forward's per-layer learning signal against finite differences of each layer's own loss
 * (softplus(θ − G⁺) + softplus(G⁻ − θ), G the sum of squared activities of unit-length inputs),
 * written in float64 apart from src/race: layer l's gradient is that of L_l in W_l alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../src/random.ts';
import { embedLabels, ForwardForwardRunner, forwardForwardGradients } from '../src/race/ff.ts';
import { flattenLayers, initialLayers, type LinearLayer, type MlpShape } from '../src/race/mlp.ts';
import { finiteDifferenceGradient, gaussian } from './race-oracles.ts';

const shape: MlpShape = { features: 3, hidden: [6, 4], classes: 3, act: 'relu' };
const threshold = 0.5;
const rows = 24;
const random = seededRandom(4);
const values = Float32Array.from({ length: rows * shape.features }, () => gaussian(random));
const labels = Int32Array.from({ length: rows }, (_, r) => r % 3);
const wrong = labels.map((label) => (label + 1) % 3);
const positive = embedLabels(values, rows, shape.features, shape.classes, labels, 1.5);
const negative = embedLabels(values, rows, shape.features, shape.classes, wrong, 1.5);

const softplus = (z: number) => Math.log1p(Math.exp(z));

/** Layer `at`'s loss with its parameters replaced by `flat` (weight then bias), in float64. */
function layerLoss(layers: readonly LinearLayer[], at: number, flat: Float64Array): number {
  let loss = 0;
  for (const [inputs, sign] of [
    [positive, 1],
    [negative, -1],
  ] as const) {
    const width = shape.features + shape.classes;
    for (let r = 0; r < rows; r++) {
      let x = Array.from(inputs.subarray(r * width, (r + 1) * width), Number);
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
      const goodness = x.reduce((s, h) => s + h * h, 0);
      loss += softplus(sign * (threshold - goodness)) / rows;
    }
  }
  return loss;
}

describe('race: forward-forward', () => {
  it('gives each layer the gradient of its own loss, and the same losses', async () => {
    const layers = initialLayers({ ...shape, features: 6, classes: 1 }, 8).slice(0, -1);
    // Larger weights than the initialisation, so that goodness crosses the threshold for some rows.
    for (const layer of layers)
      layer.weight.forEach((w, i) => {
        layer.weight[i] = 4 * w;
      });
    const runner = await ForwardForwardRunner.open(shape, 1);
    try {
      const passes = [
        await runner.run(layers, positive, rows),
        await runner.run(layers, negative, rows),
      ] as const;
      const { gradients, loss } = forwardForwardGradients(
        shape,
        layers,
        passes[0],
        passes[1],
        rows,
        threshold,
      );
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
      });
      assert.ok(Math.abs(loss - plainTotal) < 1e-5, `loss ${loss} vs ${plainTotal}`);
    } finally {
      await runner.release();
    }
  });
});
