/**
 * Models exported at PyTorch 1.13's default opset 14 differentiate exactly like the same model at
 * opset 17 (autodiff/opset.ts): on every corpus model whose ops all have gradient rules, the loss
 * and the gradients with respect to every parameter and module hook agree between the two exports.
 * (Parameters the exporter named differently in the two files are matched by name only where they
 * share it; module hooks always do.) The gradients themselves are checked against central finite
 * differences of the whole model along the input gradient's direction.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { computeGradients, type GradientResult } from '../src/autodiff/gradients.ts';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { predictedClasses } from '../src/tensor-math.ts';
import { relativeError, tensor, type Feeds, type Tensor } from '../src/tensor.ts';
import { runWithCache } from '../src/runtime/run.ts';
import { CORPUS, corpusManifest, inputsOf } from './corpus-oracle.ts';
import { assertClose } from './helpers.ts';

/** Models of the corpus whose every op has a gradient rule today (the gradients issue adds the rest). */
const DIFFERENTIABLE = [
  'audio_conv1d',
  'bare_transformer',
  'efficientnet_b0',
  'encoder',
  'gpt2',
  'gru',
  'lstm',
  'mobilenet_v3_small',
  'norms',
  'resnet18',
  'token_classifier',
  'unet',
  'vit',
];

/** Class targets unlike the model's own predictions, one per scored row. */
function targetsFor(logits: Tensor): Tensor {
  const classes = logits.dims[logits.dims.length - 1];
  return tensor(
    'int64',
    logits.dims.slice(0, -1),
    Array.from(predictedClasses(logits), (c, i) => (c + 1 + i) % classes),
  );
}

async function gradientsAt(
  dir: string,
  file: string,
  feeds: Feeds,
  target: Tensor,
  hooks: string[],
): Promise<GradientResult> {
  const model = Model.load(join(dir, file), { threads: 1 });
  try {
    return await computeGradients(model, feeds, target, {
      loss: { kind: 'cross-entropy' },
      wrt: ['params', ...hooks.filter((hook) => model.hooks.get(hook))],
    });
  } finally {
    await model.release();
  }
}

/** Mean cross-entropy of class scores [rows, classes] against integer targets, in float64. */
function crossEntropy(scores: Tensor, target: Tensor): number {
  const classes = scores.dims[scores.dims.length - 1];
  const rows = scores.data.length / classes;
  let sum = 0;
  for (let row = 0; row < rows; row++) {
    const logits = Array.from({ length: classes }, (_, k) =>
      Number(scores.data[row * classes + k]),
    );
    const top = Math.max(...logits);
    const logSum =
      top + Math.log(logits.reduce((total, value) => total + Math.exp(value - top), 0));
    sum += logSum - logits[Number(target.data[row])];
  }
  return sum / rows;
}

describe('gradients of whole corpus models vs finite differences along the input gradient', () => {
  // Models whose loss moves with their float input at random init (efficientnet_b0's and
  // mobilenet_v3_small's barely do: their input gradients are ~1e-6, too small to check).
  for (const name of ['audio_conv1d', 'norms', 'resnet18', 'unet', 'vit']) {
    it(name, async () => {
      const dir = join(CORPUS, name);
      const manifest = corpusManifest(name);
      const feeds = inputsOf(dir, manifest);
      const input = manifest.inputs[0].name;
      const target = targetsFor(readNpy(join(dir, manifest.outputs[0].file)));
      const model = Model.load(join(dir, manifest.files['14']), { threads: 1 });
      const { gradients } = await computeGradients(model, feeds, target, {
        loss: { kind: 'cross-entropy' },
        wrt: ['input'],
      });
      // Along the gradient itself (scaled to unit RMS per element), where the loss moves fastest:
      // a gradient wrong in scale or in any sizeable component disagrees with the difference quotient.
      const gradient = Float64Array.from(gradients.get('input')!.data as Float32Array);
      const rms = Math.sqrt(gradient.reduce((sum, g) => sum + g * g, 0) / gradient.length);
      const direction = Float32Array.from(gradient, (g) => g / rms);
      const analytic = direction.reduce((sum, v, k) => sum + v * gradient[k], 0); // ⟨∇L, v⟩
      const lossAt = async (step: number) => {
        const data = Float32Array.from(
          feeds[input].data as Float32Array,
          (value, k) => value + step * direction[k],
        );
        const { outputs } = await runWithCache(
          model,
          { ...feeds, [input]: { ...feeds[input], data } },
          [],
        );
        return crossEntropy(outputs[model.outputNames[0]], target);
      };
      // Small enough that few ReLU and max-pool kinks are crossed (resnet18 along a random direction:
      // 0.321 at 1e-2, 0.3955 at 1e-3, 0.4064 at 3e-4, 0.4070 at 1e-4 vs 0.4061), large enough for float32.
      const step = 3e-4;
      const numeric = ((await lossAt(step)) - (await lossAt(-step))) / (2 * step);
      // float32 losses: a difference quotient carries ~1e-7·L/step ≈ 1e-3 of rounding noise.
      assert.ok(Math.abs(analytic) > 5e-3, `the loss moves along the direction (${analytic})`);
      assert.ok(
        Math.abs(numeric - analytic) <= 1e-2 * Math.abs(analytic) + 1e-3,
        `directional derivative ${analytic} vs finite difference ${numeric}`,
      );
      await model.release();
    });
  }
});

/** Exports whose every PyTorch parameter is an initializer or a transposed MatMul copy of one (no BatchNorm folded into a Conv). */
const NOTHING_FOLDED = [
  'bare_transformer',
  'encoder',
  'gpt2',
  'gru',
  'lstm',
  'norms',
  'token_classifier',
  'unet',
  'vit',
];

describe("gradients equal PyTorch's autograd, under PyTorch's parameter names", () => {
  for (const name of DIFFERENTIABLE) {
    for (const opset of ['14', '17']) {
      it(`${name}, opset ${opset}`, async () => {
        const dir = join(CORPUS, name);
        const manifest = corpusManifest(name);
        const feeds = inputsOf(dir, manifest);
        const oracle = manifest.gradients;
        const target = readNpy(join(dir, oracle.target));
        const model = Model.load(join(dir, manifest.files[opset]), { threads: 1 });
        const wrt = ['params', ...(Object.keys(oracle.inputs).length ? ['input'] : [])];
        const { loss, gradients } = await computeGradients(model, feeds, target, {
          loss: { kind: 'cross-entropy' },
          wrt,
        });
        // A gradient renamed from an exporter-made initializer must carry a name PyTorch has (a folded Conv's: gradient-folded.test.ts).
        const renamed = [...gradients.keys()].filter(
          (key) =>
            !model.graph.initializerNames.has(key) &&
            !(key in feeds) &&
            !model.graph.producer.has(key) &&
            !key.endsWith(' folded)'),
        );
        assert.deepEqual(
          renamed.filter((key) => !(key in oracle.params)),
          [],
          'renamed gradients carry PyTorch parameter names',
        );
        await model.release();
        assert.ok(
          Math.abs(loss - oracle.loss) <= 1e-5 * Math.abs(oracle.loss),
          `loss ${loss} vs PyTorch ${oracle.loss}`,
        );
        for (const [input, file] of Object.entries(oracle.inputs))
          assertClose(gradients.get(input)!, readNpy(join(dir, file)), 1e-4, `d/d${input}`);
        const missing: string[] = [];
        const references = new Map(
          Object.entries(oracle.params).map(([parameter, file]) => [
            parameter,
            readNpy(join(dir, file)),
          ]),
        );
        // A parameter whose true gradient is 0 (a bias before a normalization that removes it) is compared
        // against the model's largest gradient, not its own rounding noise.
        const largest = Math.max(
          ...[...references.values()].map((reference) =>
            Math.max(...Array.from(reference.data as Float32Array, Math.abs)),
          ),
        );
        for (const [parameter, reference] of references) {
          const gradient = gradients.get(parameter);
          if (!gradient) {
            missing.push(parameter);
            continue;
          }
          assert.deepEqual(gradient.dims, reference.dims, `d/d${parameter}: shape`);
          const scale = Math.max(
            ...Array.from(reference.data as Float32Array, Math.abs),
            3e-2 * largest,
          );
          const error = Math.max(
            ...Array.from(reference.data as Float32Array, (value, k) =>
              Math.abs(value - Number(gradient.data[k])),
            ),
          );
          assert.ok(
            error <= 1e-4 * scale,
            `d/d${parameter}: max |Δ| ${error.toExponential(2)} vs scale ${scale.toExponential(2)}`,
          );
        }
        if (NOTHING_FOLDED.includes(name))
          assert.deepEqual(missing, [], 'every PyTorch parameter has its gradient under its name');
        else
          assert.ok(
            missing.length < Object.keys(oracle.params).length,
            'some parameters are compared',
          );
      });
    }
  }
});

describe('gradients at opset 14 equal those at opset 17', () => {
  for (const name of DIFFERENTIABLE) {
    it(name, async () => {
      const dir = join(CORPUS, name);
      const manifest = corpusManifest(name);
      const feeds = inputsOf(dir, manifest);
      const target = targetsFor(readNpy(join(dir, manifest.outputs[0].file)));
      const hooks = manifest.hooks.filter((hook) => !hook.passthrough).map((hook) => hook.hook);
      const at17 = await gradientsAt(dir, manifest.files['17'], feeds, target, hooks);
      const at14 = await gradientsAt(dir, manifest.files['14'], feeds, target, hooks);
      assert.ok(
        Math.abs(at14.loss - at17.loss) <= 1e-5 * Math.abs(at17.loss),
        `loss ${at14.loss} vs ${at17.loss}`,
      );
      let compared = 0;
      for (const [gradient, value] of at17.gradients) {
        const other = at14.gradients.get(gradient);
        if (!other || String(other.dims) !== String(value.dims)) continue;
        compared++;
        assert.ok(
          relativeError(other, value) <= 1e-5,
          `${gradient}: relative error ${relativeError(other, value).toExponential(2)}`,
        );
      }
      const hookGradients = hooks.filter((hook) => at17.gradients.has(hook)).length;
      // Every module hook's gradient is compared (a model written with bare parameters has none: its parameters keep their names).
      assert.ok(
        compared > 0 && compared >= hookGradients,
        `${compared} gradients compared, ${hookGradients} of them module hooks`,
      );
    });
  }
});
