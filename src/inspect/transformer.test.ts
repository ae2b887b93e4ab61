import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readNpy } from '../data/npy.ts';
import { loadTask } from '../data/tasks.ts';
import { Model } from '../runtime/model.ts';
import { sliceRows } from '../tensor.ts';
import { loadFixture } from '../../test/helpers.ts';
import { transformerViews } from './transformer.ts';

describe('transformer views', () => {
  it('logit lens: the last layer read through the tail is the model itself (gpt fixture: loss = PyTorch loss)', async () => {
    const gpt = loadFixture('gpt');
    const views = (await transformerViews(
      gpt.model,
      { input: gpt.input },
      readNpy(`${gpt.dir}/target.npy`),
      'all',
    ))!;
    assert.deepEqual(
      views.logitLens.map((layer) => layer.layer),
      ['embedding', 'blocks.0', 'blocks.1'],
    );
    const pytorchLoss = JSON.parse(readFileSync(`${gpt.dir}/loss.json`, 'utf8')).loss;
    assert.ok(Math.abs(views.logitLens.at(-1)!.loss - pytorchLoss) < 1e-5);
    assert.equal(views.attention.length, 8); // 2 layers × 4 heads
    for (const head of views.attention)
      assert.ok(
        head.entropy >= 0 && head.entropy <= Math.log(12) && head.first <= 1 && head.self <= 1,
      );
    await gpt.model.release();
  });

  it('direct logit attribution adds up exactly to the label logit on a model without a final LayerNorm (modadd-113)', async () => {
    const { directLogitAttribution } = await import('./transformer.ts');
    const { runWithCache } = await import('../runtime/run.ts');
    const model = Model.load(new URL('../../examples/modadd-113.onnx', import.meta.url).pathname, {
      threads: 2,
    });
    const task = loadTask('modular-addition');
    const feeds = { input: sliceRows(task.test.inputs, 0, 300) };
    const labels = sliceRows(task.test.labels, 0, 300);
    const dla = (await directLogitAttribution(model, feeds, labels, 'last'))!;
    assert.equal(dla.exact, true);
    assert.deepEqual(
      dla.components.map((c) => c.component),
      [
        'embedding',
        'blocks.0.attn#0',
        'blocks.0.attn#1',
        'blocks.0.attn#2',
        'blocks.0.attn#3',
        'blocks.0.attn bias',
        'blocks.0.mlp',
      ],
    );
    const logits = (await runWithCache(model, feeds, [])).outputs.logits; // [300, 3, 113]
    let labelLogit = 0;
    for (let e = 0; e < 300; e++)
      labelLogit += Number(logits.data[(e * 3 + 2) * 113 + Number(labels.data[e])]) / 300;
    const total = dla.bias + dla.components.reduce((sum, c) => sum + c.contribution, 0);
    assert.ok(Math.abs(total - labelLogit) < 1e-3, `${total} vs ${labelLogit}`);
    await model.release();
  });

  it('logit lens on the grokked model: chance after the embedding, solved after its one block', async () => {
    const model = Model.load(new URL('../../examples/modadd-113.onnx', import.meta.url).pathname, {
      threads: 2,
    });
    const task = loadTask('modular-addition');
    const views = (await transformerViews(
      model,
      { input: sliceRows(task.test.inputs, 0, 1000) },
      sliceRows(task.test.labels, 0, 1000),
      'last',
    ))!;
    const [embedding, block] = views.logitLens;
    assert.ok(embedding.accuracy < 0.05, JSON.stringify(embedding));
    assert.ok(block.accuracy > 0.99, JSON.stringify(block));
    await model.release();
  });
});
