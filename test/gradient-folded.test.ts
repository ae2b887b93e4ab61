/**
 * Convs with a BatchNorm folded in by the exporter: their gradients, reported as
 * `<conv>.weight (+<batchnorm> folded)` and `<conv>.bias (+<batchnorm> folded)`, equal PyTorch's
 * autograd of the same loss after torch.nn.utils.fusion.fuse_conv_bn_eval
 * (test/corpus/make_fused_grads.py, <model>/grad/fused/), and with the unfused oracle (grad/)
 * they leave no PyTorch parameter of resnet18, mobilenet_v3_small, efficientnet_b0 and audio_conv1d
 * uncompared.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { computeGradients } from '../src/autodiff/gradients.ts';
import { foldedParameterName } from '../src/autodiff/parameter-names.ts';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import type { Tensor } from '../src/tensor.ts';
import { CORPUS, corpusManifest, inputsOf } from './corpus-oracle.ts';

interface FusedOracle {
  loss: number;
  pairs: { conv: string; batchnorm: string; weight: string; bias: string }[];
}

const maxAbs = (value: Tensor) => Math.max(...Array.from(value.data as Float32Array, Math.abs));

describe("gradients of Convs with a folded BatchNorm equal PyTorch's after fuse_conv_bn_eval", () => {
  for (const name of ['resnet18', 'mobilenet_v3_small', 'efficientnet_b0', 'audio_conv1d']) {
    for (const opset of ['14', '17']) {
      it(`${name}, opset ${opset}`, async () => {
        const dir = join(CORPUS, name);
        const manifest = corpusManifest(name);
        const fused: FusedOracle = JSON.parse(
          readFileSync(join(dir, 'grad/fused/index.json'), 'utf8'),
        );
        const model = Model.load(join(dir, manifest.files[opset]), { threads: 1 });
        const { loss, gradients } = await computeGradients(
          model,
          inputsOf(dir, manifest),
          readNpy(join(dir, manifest.gradients.target)),
          { loss: { kind: 'cross-entropy' }, wrt: ['params'] },
        );
        await model.release();
        assert.ok(
          Math.abs(loss - fused.loss) <= 1e-5 * fused.loss,
          `loss ${loss} vs PyTorch's fused ${fused.loss}`,
        );

        const references = new Map(
          fused.pairs.flatMap((pair) =>
            (['weight', 'bias'] as const).map(
              (role) =>
                [
                  foldedParameterName(
                    { conv: pair.conv, weight: '', batchNorm: pair.batchnorm },
                    role,
                  ),
                  readNpy(join(dir, pair[role])),
                ] as const,
            ),
          ),
        );
        // As in gradient-opsets.test.ts: a gradient near 0 is held to the model's largest, not to its own rounding.
        const largest = Math.max(...[...references.values()].map(maxAbs));
        for (const [parameter, reference] of references) {
          const gradient = gradients.get(parameter);
          assert.ok(
            gradient,
            `'${parameter}' has a gradient (names given: ${[...gradients.keys()]
              .filter((key) => key.includes('folded'))
              .slice(0, 3)
              .join(', ')}, ...)`,
          );
          assert.deepEqual(gradient.dims, reference.dims, `d/d${parameter}: shape`);
          const error = Math.max(
            ...Array.from(reference.data as Float32Array, (value, k) =>
              Math.abs(value - Number(gradient.data[k])),
            ),
          );
          const scale = Math.max(maxAbs(reference), 3e-2 * largest);
          assert.ok(
            error <= 1e-4 * scale,
            `d/d${parameter}: max |Δ| ${error.toExponential(2)} vs scale ${scale.toExponential(2)}`,
          );
        }

        // Every PyTorch parameter is compared: under its own name (grad/, gradient-opsets.test.ts) or inside a fused pair here.
        const inPairs = new Set(
          fused.pairs.flatMap((pair) => [
            `${pair.conv}.weight`,
            `${pair.conv}.bias`,
            `${pair.batchnorm}.weight`,
            `${pair.batchnorm}.bias`,
          ]),
        );
        const uncompared = Object.keys(manifest.gradients.params).filter(
          (parameter) => !gradients.has(parameter) && !inPairs.has(parameter),
        );
        assert.deepEqual(uncompared, [], 'every PyTorch parameter is compared');
        assert.deepEqual(
          [...gradients.keys()].filter((key) => key.startsWith('onnx::')),
          [],
          'no gradient left under an exporter-made name',
        );
      });
    }
  }
});
