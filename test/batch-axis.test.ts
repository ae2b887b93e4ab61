/**
 * Values whose examples are not on axis 0, or that have none, on corpus models nobody here
 * designed. ONNX's LSTM writes Y as [seq, dirs, batch, hidden]; PyTorch's `rnn` module output is
 * the same numbers as [batch, seq, dirs·hidden] (a Transpose and a Reshape later), so ablating
 * either over examples must change the model's output identically. A GPT-2 position table
 * [seq, d] is the same for every example: ablating it over examples must change nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readNpy } from '../src/data/npy.ts';
import { ablate } from '../src/graph/interventions.ts';
import { Model } from '../src/runtime/model.ts';
import { probeHookShapes } from '../src/runtime/probe.ts';
import { runWithInterventions } from '../src/runtime/run.ts';
import { relativeError } from '../src/tensor.ts';
import { assertClose } from './helpers.ts';

const corpus = (name: string) => fileURLToPath(new URL(`./corpus/${name}`, import.meta.url));

describe('batch axes found by the probe', () => {
  it("mean and resample ablation of the raw LSTM output [seq, dirs, batch, hidden] equal those of PyTorch's module output [batch, seq, dirs·hidden]", async () => {
    const model = Model.load(join(corpus('lstm'), 'opset17.onnx'), { threads: 1 });
    const feeds = { input_ids: readNpy(join(corpus('lstm'), 'inputs/input_ids.npy')) };
    const rawY = '/rnn/LSTM_1_output_0';
    assert.deepEqual((await probeHookShapes(model, feeds, [model.hooks.resolve(rawY)])).get(rawY), [
      10,
      2,
      'batch',
      16,
    ]);
    for (const method of ['mean', 'resample'] as const) {
      const donors = [2, 3, 1, 0];
      const raw = await runWithInterventions(model, feeds, [
        ablate(rawY, method, { donors: method === 'resample' ? donors : undefined }),
      ]);
      const module = await runWithInterventions(model, feeds, [
        ablate('rnn', method, { donors: method === 'resample' ? donors : undefined }),
      ]);
      assertClose(
        raw.outputs.logits,
        module.outputs.logits,
        1e-5,
        `${method} ablation of the raw Y vs the rnn module`,
      );
      const clean = readNpy(join(corpus('lstm'), 'outputs/logits.npy'));
      assert.ok(
        relativeError(module.outputs.logits, clean) > 1e-3,
        `${method} ablation changes the logits`,
      );
    }
    await model.release();
  });

  it('a position table [seq, d] has no batch axis: mean and resample ablation leave the logits unchanged, zero ablation does not', async () => {
    const model = Model.load(join(corpus('gpt2'), 'opset14.onnx'), { threads: 1 });
    const feeds = { input_ids: readNpy(join(corpus('gpt2'), 'inputs/input_ids.npy')) };
    const clean = readNpy(join(corpus('gpt2'), 'outputs/logits.npy'));
    assert.deepEqual(
      (await probeHookShapes(model, feeds, [model.hooks.resolve('wpe')])).get('wpe'),
      [10, 32],
    );
    for (const method of ['mean', 'resample'] as const) {
      const { outputs } = await runWithInterventions(model, feeds, [ablate('wpe', method)]);
      assertClose(outputs.logits, clean, 1e-6, `${method} ablation of wpe`);
    }
    const zeroed = await runWithInterventions(model, feeds, [ablate('wpe', 'zero')]);
    assert.ok(
      relativeError(zeroed.outputs.logits, clean) > 1e-3,
      'zero ablation of wpe changes the logits',
    );
    await model.release();
  });
});
