/**
 * Corpus models exported by PyTorch at opsets 13, 15 and 16 (test/corpus/make_opsets.py: the same
 * models, weights and inputs as make.py's opset-17 files) differentiate exactly like at opset 17:
 * the loss and every gradient — each PyTorch parameter under its name, and each module hook — agree.
 * Opsets 13–15 are differentiated as the same model importing opset 17 (autodiff/opset.ts); 16 at
 * its own opset. Together with gradient-opsets.test.ts (14 and 17 against PyTorch's autograd) this
 * covers every opset PyTorch 1.13 exports from 13 to 17.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { computeGradients, type GradientResult } from '../src/autodiff/gradients.ts';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { relativeError, type Feeds, type Tensor } from '../src/tensor.ts';
import { CORPUS, corpusManifest, inputsOf } from './corpus-oracle.ts';

/** The models make_opsets.py exports at opsets 13, 15 and 16. */
const MODELS = ['audio_conv1d', 'gpt2', 'lstm', 'norms', 'token_classifier', 'unet', 'vit'];
const OPSETS = [13, 15, 16];
/** Exports with a BatchNorm folded into a Conv: its parameters' gradients go under the Conv's names (gradient-folded.test.ts). */
const FOLDED = ['audio_conv1d'];

async function gradientsOf(
  path: string,
  feeds: Feeds,
  target: Tensor,
  hooks: string[],
): Promise<GradientResult> {
  const model = Model.load(path, { threads: 1 });
  try {
    return await computeGradients(model, feeds, target, {
      loss: { kind: 'cross-entropy' },
      wrt: ['params', ...hooks.filter((hook) => model.hooks.get(hook))],
    });
  } finally {
    await model.release();
  }
}

describe('gradients at opsets 13, 15 and 16 equal those at opset 17', () => {
  for (const name of MODELS) {
    const dir = join(CORPUS, name);
    const manifest = corpusManifest(name);
    const feeds = inputsOf(dir, manifest);
    const target = readNpy(join(dir, manifest.gradients.target));
    const hooks = manifest.hooks.filter((hook) => !hook.passthrough).map((hook) => hook.hook);
    let at17: GradientResult | undefined;
    for (const opset of OPSETS) {
      it(`${name}, opset ${opset}`, async () => {
        const path = join(dir, `opset${opset}.onnx`);
        assert.ok(existsSync(path), `${path} exists (test/corpus/make_opsets.py)`);
        at17 ??= await gradientsOf(join(dir, manifest.files['17']), feeds, target, hooks);
        const atOpset = await gradientsOf(path, feeds, target, hooks);
        assert.ok(
          Math.abs(atOpset.loss - at17.loss) <= 1e-5 * Math.abs(at17.loss),
          `loss ${atOpset.loss} vs ${at17.loss}`,
        );
        for (const [gradient, value] of at17.gradients) {
          const other = atOpset.gradients.get(gradient);
          assert.ok(other, `d/d${gradient} at opset ${opset}`);
          assert.deepEqual(other.dims, value.dims, `d/d${gradient}: shape`);
          assert.ok(
            relativeError(other, value) <= 1e-5,
            `d/d${gradient}: relative error ${relativeError(other, value).toExponential(2)}`,
          );
        }
        const parameters = FOLDED.includes(name) ? [] : Object.keys(manifest.gradients.params);
        assert.deepEqual(
          parameters.filter((parameter) => !atOpset.gradients.has(parameter)),
          [],
          "every PyTorch parameter's gradient is there, under its name",
        );
      });
    }
  }
});
