/**
 * The grokked transformer shipped as examples/modadd-113.onnx (trained by teardown, Nanda et al.
 * 2023's setup): it solves a + b mod 113 on the pairs it never saw, its metadata carries its
 * training spec and curve, and the Fourier analysis finds the algorithm Nanda et al. describe —
 * a handful of key frequencies whose directions carry the logits (restricted loss close to the
 * full loss, excluded loss far above it on the training pairs).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadTask, modularAdditionTrainPairs } from '../src/data/tasks.ts';
import { fourierAnalysis } from '../src/inspect/fourier.ts';
import { Model } from '../src/runtime/model.ts';
import { runWithCache } from '../src/runtime/run.ts';
import { scoreRows } from '../src/train/evaluate.ts';

const path = fileURLToPath(new URL('../examples/modadd-113.onnx', import.meta.url));

describe('examples/modadd-113.onnx', () => {
  const model = Model.load(path, { threads: 2 });
  const meta = new Map(model.proto.metadataProps.map((entry) => [entry.key, entry.value]));
  const spec = JSON.parse(meta.get('teardown.train_spec')!);

  it('carries its training spec (Nanda et al. 2023) and curve', () => {
    assert.equal(spec.task, 'modular-addition');
    assert.match(
      spec.model,
      /^transformer:layers=1,heads=4,d_model=128,d_mlp=512,act=relu,ln=false/,
    );
    assert.deepEqual(
      [spec.optimizer.kind, spec.lr, spec.optimizer.weightDecay, spec.optimizer.betas, spec.batch],
      ['adamw', 0.001, 1, [0.9, 0.98], 'full'],
    );
    const curve = JSON.parse(meta.get('teardown.train_curve')!);
    assert.ok(curve.at(-1).testAccuracy > 0.99);
  });

  it('solves the held-out pairs (accuracy recomputed here, not read from the curve)', async () => {
    const task = loadTask('modular-addition', spec.taskOptions);
    const { outputs } = await runWithCache(model, { input: task.test.inputs }, []);
    const scored = scoreRows(outputs.logits, task.test.labels, 'last');
    assert.ok(scored.correct / scored.rows > 0.99, `test accuracy ${scored.correct / scored.rows}`);
  });

  it('--fourier 113: a handful of key frequencies, restricted loss close to full, excluded far above', async () => {
    const trainPairs = modularAdditionTrainPairs(
      113,
      spec.taskOptions.trainFraction,
      spec.taskOptions.dataSeed,
    );
    const result = await fourierAnalysis(model, 113, { trainPairs });
    assert.ok(
      result.keyFrequencies.length >= 3 && result.keyFrequencies.length <= 7,
      `key frequencies ${result.keyFrequencies}`,
    );
    assert.ok(result.varianceExplained > 0.8, `variance explained ${result.varianceExplained}`);
    assert.ok(result.loss.restricted < result.loss.full + 0.1, JSON.stringify(result.loss));
    assert.ok(result.loss.excluded > Math.log(113), JSON.stringify(result.loss)); // worse than guessing uniformly
    await model.release();
  });
});
