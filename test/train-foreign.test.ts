/**
 * Fine-tuning models teardown did not build (train/fine-tune.ts) against PyTorch: for corpus
 * models without a folded BatchNorm (LSTM and GRU included), at opsets 14 and 17, 20 full-batch SGD steps from the
 * exported weights give PyTorch's loss at every step and its final parameters
 * (test/corpus/make_finetune.py: the same steps in eval() mode on the same weights), each within
 * 1e-4 of max |reference| — GPT-2's tied lm_head included, whose saved copy must be the new wteᵀ.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { tensorFromProto } from '../src/onnx/tensor-proto.ts';
import { moveAxis, relativeError } from '../src/tensor.ts';
import { fineTunedModel, setUpFineTuning } from '../src/train/fine-tune.ts';
import { valuesUnderPyTorchNames } from '../src/train/foreign.ts';
import { CORPUS, corpusManifest, inputsOf } from './corpus-oracle.ts';

interface FineTuneOracle { lr: number; momentum: number; steps: number; target: string; losses: number[]; params: Record<string, string> }

const TOLERANCE = 1e-4;
const MODELS = ['bare_transformer', 'encoder', 'gpt2', 'gru', 'lstm', 'norms', 'token_classifier', 'unet', 'vit'];

describe("fine-tuning a PyTorch export equals PyTorch's SGD steps in eval() mode", () => {
  for (const name of MODELS) {
    for (const opset of ['14', '17']) {
      it(`${name}, opset ${opset}`, async (t) => {
        const dir = join(CORPUS, name);
        const oraclePath = join(dir, 'finetune', 'finetune.json');
        assert.ok(existsSync(oraclePath), `${oraclePath} (make_finetune.py)`);
        const oracle = JSON.parse(readFileSync(oraclePath, 'utf8')) as FineTuneOracle;
        const manifest = corpusManifest(name);
        const feeds = inputsOf(dir, manifest);
        const target = readNpy(join(dir, oracle.target));
        const model = Model.load(join(dir, manifest.files[opset]), { threads: 1 });
        const optimizer = { kind: 'sgd' as const, momentum: oracle.momentum, weightDecay: 0, betas: [0.9, 0.999] as [number, number], eps: 1e-8 };
        const { plan, trainingModel, stepper } = await setUpFineTuning(model, {}, feeds, target, { kind: 'cross-entropy' }, optimizer, undefined, { threads: 1 });
        try {
          // Every PyTorch parameter trains, under its name, and nothing else does.
          assert.deepEqual([...new Set(plan.parameters.flatMap((p) => p.pytorchNames))].sort(), Object.keys(manifest.gradients.params).sort());
          const state = stepper.initialState(trainingModel);
          const steps = Array.from({ length: oracle.steps }, (_, k) => ({ feeds, target, lr: oracle.lr, t: k + 1 }));
          const losses = (await stepper.steps(state, steps)).map((step) => step.loss);
          const lossErrors = losses.map((loss, k) => Math.abs(loss - oracle.losses[k]) / Math.abs(oracle.losses[k]));
          lossErrors.forEach((error, k) => assert.ok(error <= TOLERANCE, `step ${k + 1}: loss ${losses[k]} vs PyTorch ${oracle.losses[k]} (relative ${error.toExponential(2)})`));
          const saved = fineTunedModel(model.proto, plan, state.parameters, []);
          const values = valuesUnderPyTorchNames(saved, plan);
          const parameterErrors = Object.entries(oracle.params).map(([parameter, file]) => {
            const error = relativeError(values.get(parameter)!, readNpy(join(dir, file)));
            assert.ok(error <= TOLERANCE, `${parameter} after ${oracle.steps} steps: relative error ${error.toExponential(2)}`);
            return error;
          });
          t.diagnostic(`loss ${oracle.losses[0].toFixed(4)} -> ${oracle.losses.at(-1)!.toFixed(4)}; max relative error: losses ${Math.max(...lossErrors).toExponential(1)}, final parameters ${Math.max(...parameterErrors).toExponential(1)}`);
          for (const { copy, source } of plan.tied) {
            const stored = tensorFromProto(saved.graph.initializer.find((t) => t.name === copy)!);
            assert.equal(relativeError(stored, moveAxis(values.get(source)!, 1, 0)), 0, `the tied copy ${copy} holds the trained ${source}ᵀ`);
          }
          if (name === 'gpt2') assert.equal(plan.tied.length, 1, "GPT-2's lm_head is a tied copy of wte");
        } finally {
          await stepper.release();
          await trainingModel.release();
          await model.release();
        }
      });
    }
  }
});
