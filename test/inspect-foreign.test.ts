/**
 * inspect on models nobody here designed: the PyTorch 1.13 exports of test/corpus (make.py).
 * - Default inspect runs on every corpus model; its census means equal PyTorch's recorded module
 *   outputs (the independent oracle), and every number is finite.
 * - Where labels are scored comes from the scores' shape: the LSTM/GRU classifiers read
 *   `out[:, -1]` and ViT its class token `x[:, 0]` (their PyTorch source), so probes read those
 *   positions; mean pooling is read as the mean; a GPT with one label per sequence is read at its
 *   last position. A planted check: an LSTM classifier's own predictions are read by the probe at
 *   the scored position.
 * - A scope-less model (bare nn.Parameters) gets one hook per nonlinearity, last-axis Softmax and
 *   residual Add — exactly those of its source — and --fourier runs on its [batch, P] logits, and
 *   on a GPT whose sequence axis is symbolic.
 * - A model with an attention_mask is inspected with every input; batching does not separate an
 *   example's inputs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../src/data/npy.ts';
import { unitAxisOf } from '../src/graph/units.ts';
import { fourierAnalysis } from '../src/inspect/fourier.ts';
import { inspectModel } from '../src/inspect/inspect.ts';
import { Model } from '../src/runtime/model.ts';
import { run } from '../src/runtime/run.ts';
import { seededRandom } from '../src/random.ts';
import { elementCount, sliceFeeds, tensor, type Feeds, type Tensor } from '../src/tensor.ts';

const root = fileURLToPath(new URL('./corpus', import.meta.url));
interface Manifest {
  classifier: boolean;
  inputs: { name: string; file: string }[];
  hooks: { hook: string; file: string; call: number }[];
}
const manifestOf = (name: string): Manifest =>
  JSON.parse(readFileSync(`${root}/${name}/manifest.json`, 'utf8'));
const CORPUS = [
  'resnet18',
  'mobilenet_v3_small',
  'efficientnet_b0',
  'vit',
  'gpt2',
  'encoder',
  'lstm',
  'gru',
  'token_classifier',
  'audio_conv1d',
  'norms',
  'bare_transformer',
  'unet',
];

function corpusFeeds(name: string): Feeds {
  return Object.fromEntries(
    manifestOf(name).inputs.map((input) => [input.name, readNpy(`${root}/${name}/${input.file}`)]),
  );
}

const dataset = (feeds: Feeds) => ({
  examples: Object.values(feeds)[0].dims[0],
  read: (start: number, end: number) => sliceFeeds(feeds, start, end),
});

/** The model's own top class per row of its scores ([batch] or [batch, seq]): labels it is 100% right on. */
async function ownPredictions(model: Model, feeds: Feeds): Promise<Tensor> {
  const scores = (await run(model, feeds)).outputs[model.outputNames[0]];
  const classes = scores.dims.at(-1)!;
  const rows = scores.data.length / classes;
  const best = Array.from({ length: rows }, (_, row) => {
    let top = 0;
    for (let c = 1; c < classes; c++)
      if (Number(scores.data[row * classes + c]) > Number(scores.data[row * classes + top]))
        top = c;
    return top;
  });
  return tensor('int64', scores.dims.slice(0, -1), best);
}

/** Mean of each unit (along `axis`) over examples and positions. */
function unitMeans(values: Tensor, axis: number): Float64Array {
  const units = values.dims[axis];
  const inner = elementCount(values.dims.slice(axis + 1));
  const sums = new Float64Array(units);
  for (let i = 0; i < values.data.length; i++)
    sums[Math.floor(i / inner) % units] += Number(values.data[i]) / (values.data.length / units);
  return sums;
}

describe('default inspect on every corpus model', () => {
  for (const name of CORPUS) {
    it(name, async () => {
      const manifest = manifestOf(name);
      const model = Model.load(`${root}/${name}/opset17.onnx`, { threads: 2 });
      const feeds = corpusFeeds(name);
      // Classifiers and the language model are scored against their own predictions; the U-Net has no labels.
      const labels =
        manifest.classifier || name === 'gpt2' ? await ownPredictions(model, feeds) : undefined;
      const result = await inspectModel(model, dataset(feeds), labels, { batchSize: 2 });
      assert.ok(result.hooks.length > 0);
      assert.equal(result.metric.kind, labels ? 'loss' : 'output-change');
      for (const unit of result.units)
        assert.ok(
          Number.isFinite(unit.importance) && Number.isFinite(unit.census.mean),
          `${unit.hook}#${unit.unit}`,
        );
      // The census against PyTorch: each inspected module hook's unit means are those of the module's recorded output.
      // A Conv with a folded BatchNorm carries the BatchNorm's output (graph/hooks.ts), so it is compared with that.
      const recorded = new Map(manifest.hooks.map((hook) => [hook.hook, hook.file]));
      for (const folding of model.hooks.foldings)
        recorded.set(folding.conv, recorded.get(folding.batchNorm!)!);
      const checked = result.hooks.filter((hook) => recorded.has(hook.hook));
      if (manifest.hooks.length)
        assert.ok(checked.length > 0, 'some inspected hook was recorded by PyTorch');
      for (const hook of checked) {
        // teardown's unit axis (channels of conv maps) agrees with the corpus's own (test/corpus.test.ts).
        const reference = readNpy(`${root}/${name}/${recorded.get(hook.hook)}`);
        const expected = unitMeans(
          reference,
          unitAxisOf(model.hooks.resolve(hook.hook), reference.dims.length),
        );
        const found = result.units
          .filter((unit) => unit.hook === hook.hook)
          .sort((a, b) => a.unit - b.unit)
          .map((unit) => unit.census.mean);
        const scale = Math.max(1e-6, ...Array.from(expected, Math.abs));
        found.forEach((mean, unit) =>
          assert.ok(
            Math.abs(mean - expected[unit]) <= 1e-4 * scale,
            `${hook.hook}#${unit}: ${mean} vs PyTorch ${expected[unit]}`,
          ),
        );
      }
      if (name === 'gpt2' || name === 'vit') {
        const views = result.transformer!;
        assert.equal(
          views.logitLens[0]?.layer,
          'embedding',
          `${name}: logit lens has its embedding row (${views.notes.join(' ')})`,
        );
        assert.equal(views.logitLens.length, 3);
      }
      if (name === 'gpt2')
        assert.ok(
          result.transformer!.logitAttribution!.components.some(
            (c) => c.component === 'h.1.attn#3',
          ),
          'direct logit attribution per head on the GPT',
        );
      await model.release();
    });
  }
});

describe('where the labels are scored', () => {
  const readAt = async (
    name: string,
    labelsOf?: (model: Model, feeds: Feeds) => Promise<Tensor>,
  ) => {
    const model = Model.load(`${root}/${name}/opset17.onnx`, { threads: 2 });
    const feeds = corpusFeeds(name);
    const labels = await (labelsOf ?? ownPredictions)(model, feeds);
    const result = await inspectModel(model, dataset(feeds), labels, { batchSize: 4 });
    await model.release();
    return {
      scoring: result.scoring,
      at: Object.fromEntries(result.hooks.map((hook) => [hook.hook, hook.readAt])),
    };
  };

  it('an LSTM and a GRU classifier on out[:, -1]: [batch, classes] scores, the recurrent output read at its last step', async () => {
    for (const name of ['lstm', 'gru']) {
      const { scoring, at } = await readAt(name);
      assert.equal(scoring, 'example');
      assert.deepEqual(at.rnn, { position: 9 }, name);
    }
  });

  it("ViT reads its class token: the encoder's output at position 0", async () => {
    const { at } = await readAt('vit');
    assert.deepEqual(at.encoder, { position: 0 });
  });

  it('a mean-pooling token classifier is read as the mean over positions', async () => {
    const { scoring, at } = await readAt('token_classifier');
    assert.equal(scoring, 'example');
    assert.equal(at.embed, 'mean');
  });

  it('a GPT with one label per sequence is scored at its last position, with labels per position at every one', async () => {
    const lastOnly = async (model: Model, feeds: Feeds) => {
      const own = await ownPredictions(model, feeds); // [4, 10]
      return tensor(
        'int64',
        [4],
        Array.from({ length: 4 }, (_, example) => Number(own.data[example * 10 + 9])),
      );
    };
    const last = await readAt('gpt2', lastOnly);
    assert.equal(last.scoring, 'last');
    assert.deepEqual(last.at['h.1'], { position: 9 });
    const every = await readAt('gpt2');
    assert.equal(every.scoring, 'every');
    assert.equal(every.at['h.1'], 'every');
  });

  it('planted: probes of an LSTM classifier read at the scored step recover its own predictions', async () => {
    const model = Model.load(`${root}/lstm/opset17.onnx`, { threads: 2 });
    const random = seededRandom(3);
    const inputIds = tensor(
      'int64',
      [600, 10],
      Array.from({ length: 6000 }, () => Math.floor(random() * 40)),
    );
    const labels = await ownPredictions(model, { input_ids: inputIds });
    const result = await inspectModel(model, dataset({ input_ids: inputIds }), labels, {
      batchSize: 200,
      hooks: ['rnn'],
    });
    const rnn = result.hooks.find((hook) => hook.hook === 'rnn')!;
    assert.deepEqual(rnn.readAt, { position: 9 });
    assert.ok(rnn.probes.labels >= 0.9, `probe accuracy at the scored step ${rnn.probes.labels}`);
    await model.release();
  });
});

describe('a model with no module scopes (bare nn.Parameters)', () => {
  it('inspects one hook per Softmax, residual Add and Relu of its source, and says how they were chosen', async () => {
    const model = Model.load(`${root}/bare_transformer/opset17.onnx`, { threads: 2 });
    const feeds = corpusFeeds('bare_transformer');
    const result = await inspectModel(model, dataset(feeds), await ownPredictions(model, feeds), {
      batchSize: 4,
    });
    assert.equal(result.hookSource, 'nodes');
    // The source: x = W_E[tokens] + W_pos (a parameter: not two activations), softmax(scores), x + attn, relu(x W_in), x + mlp.
    assert.deepEqual(
      result.hooks.map((hook) => model.hooks.resolve(hook.hook).op),
      ['Softmax', 'Add', 'Relu', 'Add'],
    );
    assert.equal(result.scoring, 'example');
    await model.release();
  });

  it('--fourier runs on its [batch, P] logits (the last position only)', async () => {
    const model = Model.load(`${root}/bare_transformer/opset17.onnx`, { threads: 2 });
    const result = await fourierAnalysis(model, 23, { hooks: ['/Relu_output_0'] });
    assert.equal(result.embeddingEnergy.length, 11);
    assert.ok(Math.abs(result.embeddingEnergy.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    assert.ok(Number.isFinite(result.loss.full) && result.units['/Relu_output_0'].length === 64);
    await model.release();
  });

  it('--fourier runs on a GPT whose sequence axis is symbolic', async () => {
    const model = Model.load(`${root}/gpt2/opset17.onnx`, { threads: 2 });
    const result = await fourierAnalysis(model, 31, {});
    assert.ok(Number.isFinite(result.loss.full) && result.keyFrequencies.length > 0);
    await model.release();
  });
});

describe('a model with an attention_mask input', () => {
  it('is inspected with every input, and each example keeps its own mask however the data is batched', async () => {
    const model = Model.load(`${root}/encoder/opset17.onnx`, { threads: 2 });
    const feeds = corpusFeeds('encoder');
    const labels = await ownPredictions(model, feeds);
    const hooks = ['encoder.layers.1.linear2', 'embed'];
    const whole = await inspectModel(model, dataset(feeds), labels, { batchSize: 4, hooks });
    const single = await inspectModel(model, dataset(feeds), labels, { batchSize: 1, hooks });
    for (const [h, hook] of whole.hooks.entries())
      assert.ok(
        Math.abs(hook.wholeHook.importance - single.hooks[h].wholeHook.importance) < 1e-5,
        hook.hook,
      );
    // Masked positions change nothing downstream: the embedding's importance is what mean-ablating the kept positions does.
    assert.ok(whole.units.every((unit) => Number.isFinite(unit.importance)));
    await model.release();
  });
});
