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
    const views = (await transformerViews(gpt.model, { input: gpt.input }, readNpy(`${gpt.dir}/target.npy`), 'all'))!;
    assert.deepEqual(views.logitLens.map((layer) => layer.layer), ['embedding', 'blocks.0', 'blocks.1']);
    const pytorchLoss = JSON.parse(readFileSync(`${gpt.dir}/loss.json`, 'utf8')).loss;
    assert.ok(Math.abs(views.logitLens.at(-1)!.loss - pytorchLoss) < 1e-5);
    assert.equal(views.attention.length, 8); // 2 layers × 4 heads
    for (const head of views.attention) assert.ok(head.entropy >= 0 && head.entropy <= Math.log(12) && head.first <= 1 && head.self <= 1);
    await gpt.model.release();
  });

  it('logit lens on the grokked model: chance after the embedding, solved after its one block', async () => {
    const model = Model.load(new URL('../../examples/modadd-113.onnx', import.meta.url).pathname, { threads: 2 });
    const task = loadTask('modular-addition');
    const views = (await transformerViews(model, { input: sliceRows(task.test.inputs, 0, 1000) }, sliceRows(task.test.labels, 0, 1000), 'last'))!;
    const [embedding, block] = views.logitLens;
    assert.ok(embedding.accuracy < 0.05, JSON.stringify(embedding));
    assert.ok(block.accuracy > 0.99, JSON.stringify(block));
    await model.release();
  });
});
