/**
 * Integrated gradients on every model of the conformance corpus (issue 12's oracle): Σ attributions
 * = F(x) − F(baseline) within 1% of the mean |F(x) − F(baseline)|, for the score of PyTorch's
 * gradient target, with a zero baseline, at 128 steps — at the float input of vision and audio
 * models and at the embedding of token models (other inputs, such as an attention mask, unchanged).
 *
 * Where that does not hold, the exception and its measured reason:
 * - mobilenet_v3_small and efficientnet_b0 at random init barely depend on their input (F(x) − F(0)
 *   is 1e-8 to 1e-6, float32 rounding of the scores): they are attributed at features.6, where
 *   F moves by 1e-4 to 5e-3.
 * - encoder, unet and norms: the midpoint rule's error at 128 steps is 2.5%, 1.3% and 3.9% (norms:
 *   GroupNorm and InstanceNorm turn sharply near the zero baseline, F changing most for
 *   α < 0.03); it falls as the steps grow (at 1024: 0.2%, under 0.1%, 0.7%), which a wrong
 *   gradient would not do, so they are checked at 1024 steps.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readNpy } from '../src/data/npy.ts';
import { inputAttribution } from '../src/inspect/input-attribution.ts';
import { Model } from '../src/runtime/model.ts';
import { CORPUS, corpusManifest, corpusModels, inputsOf } from './corpus-oracle.ts';

const EXCEPTIONS: Record<string, { at?: string; steps?: number }> = {
  mobilenet_v3_small: { at: 'features.6' },
  efficientnet_b0: { at: 'features.6' },
  encoder: { steps: 1024 },
  unet: { steps: 1024 },
  norms: { steps: 1024 },
};

describe('integrated gradients are complete on every corpus model (within 1%)', () => {
  for (const name of corpusModels()) {
    const { at, steps = 128 } = EXCEPTIONS[name] ?? {};
    it(`${name}${at ? ` at ${at}` : ''}, ${steps} steps`, async () => {
      const dir = join(CORPUS, name);
      const manifest = corpusManifest(name);
      const model = Model.load(join(dir, manifest.files['17']), { threads: 1 });
      try {
        const summary = await inputAttribution(
          model,
          inputsOf(dir, manifest),
          readNpy(join(dir, manifest.gradients.target)),
          { at, baseline: 'zero', steps },
        );
        assert.ok(
          summary.completenessError < 0.01,
          `completeness error ${summary.completenessError} at '${summary.at}'`,
        );
      } finally {
        await model.release();
      }
    });
  }
});
