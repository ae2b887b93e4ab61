/**
 * Models exported at PyTorch 1.13's default opset 14 differentiate exactly like the same model at
 * opset 17 (autodiff/opset.ts): on every corpus model whose ops all have gradient rules, the loss
 * and the gradients with respect to every parameter and module hook agree between the two exports.
 * (Parameters the exporter named differently in the two files are matched by name only where they
 * share it; module hooks always do.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { computeGradients, type GradientResult } from '../src/autodiff/gradients.ts';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { predictedClasses } from '../src/tensor-math.ts';
import { relativeError, tensor, type Feeds, type Tensor } from '../src/tensor.ts';
import { CORPUS, corpusManifest, inputsOf } from './corpus-oracle.ts';

/** Models of the corpus whose every op has a gradient rule today (the gradients issue adds the rest). */
const DIFFERENTIABLE = ['efficientnet_b0', 'encoder', 'gpt2', 'resnet18', 'token_classifier', 'vit'];

/** Class targets unlike the model's own predictions, one per scored row. */
function targetsFor(logits: Tensor): Tensor {
  const classes = logits.dims[logits.dims.length - 1];
  return tensor('int64', logits.dims.slice(0, -1), Array.from(predictedClasses(logits), (c, i) => (c + 1 + i) % classes));
}

async function gradientsAt(dir: string, file: string, feeds: Feeds, target: Tensor, hooks: string[]): Promise<GradientResult> {
  const model = Model.load(join(dir, file), { threads: 1 });
  try {
    return await computeGradients(model, feeds, target, { loss: { kind: 'cross-entropy' }, wrt: ['params', ...hooks.filter((hook) => model.hooks.get(hook))] });
  } finally {
    await model.release();
  }
}

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
      assert.ok(Math.abs(at14.loss - at17.loss) <= 1e-5 * Math.abs(at17.loss), `loss ${at14.loss} vs ${at17.loss}`);
      let compared = 0;
      for (const [gradient, value] of at17.gradients) {
        const other = at14.gradients.get(gradient);
        if (!other || String(other.dims) !== String(value.dims)) continue;
        compared++;
        assert.ok(relativeError(other, value) <= 1e-5, `${gradient}: relative error ${relativeError(other, value).toExponential(2)}`);
      }
      const hookGradients = hooks.filter((hook) => at17.gradients.has(hook)).length;
      assert.ok(hookGradients > 0 && compared >= hookGradients, `${compared} gradients compared, ${hookGradients} of them module hooks`);
    });
  }
});
