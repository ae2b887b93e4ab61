import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadFixture } from '../../test/helpers.ts';
import { seededRandom } from '../random.ts';
import { Model } from '../runtime/model.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { buildModel } from '../train/builders.ts';
import { parseModelSpec } from '../train/model-spec.ts';
import { computeGradients } from './gradients.ts';

/** Loss and parameter gradients with the whole sequence computed, and with only the last position after the last attention. */
async function compare(model: Model, input: Tensor, target: Tensor): Promise<void> {
  const run = (sliceEarly: boolean) =>
    computeGradients(model, { input }, target, {
      loss: { kind: 'cross-entropy', positions: 'last', sliceEarly },
      wrt: ['params'],
    });
  const [full, sliced] = [await run(false), await run(true)];
  assert.ok(
    Math.abs(full.loss - sliced.loss) < 1e-5 * Math.max(1, Math.abs(full.loss)),
    `loss ${full.loss} vs ${sliced.loss}`,
  );
  for (const [name, gradient] of full.gradients) {
    const other = sliced.gradients.get(name)!;
    let scale = 0,
      difference = 0;
    for (let i = 0; i < gradient.data.length; i++) {
      scale = Math.max(scale, Math.abs(Number(gradient.data[i])));
      difference = Math.max(difference, Math.abs(Number(gradient.data[i]) - Number(other.data[i])));
    }
    assert.ok(
      difference <= 1e-5 * Math.max(scale, 1e-3),
      `${name}: max |Δ| ${difference} (scale ${scale})`,
    );
  }
}

test('scoring the last position early gives the same loss and parameter gradients (teardown transformers with and without LayerNorm)', async () => {
  const random = seededRandom(2);
  for (const spec of [
    'transformer:layers=1,heads=4,d_model=32,d_mlp=64,act=relu,ln=false,init=nanda',
    'transformer:layers=2,heads=2,d_model=16,d_mlp=32,act=gelu,ln=true',
  ]) {
    const model = Model.fromProto(
      buildModel(parseModelSpec(spec), { kind: 'tokens', length: 5, vocab: 12 }, 11, 0).proto,
      spec,
      { threads: 1 },
    );
    const input = tensor(
      'int64',
      [6, 5],
      Array.from({ length: 30 }, () => Math.floor(random() * 12)),
    );
    await compare(
      model,
      input,
      tensor(
        'int64',
        [6],
        Array.from({ length: 6 }, () => Math.floor(random() * 11)),
      ),
    );
    await model.release();
  }
});

test('… and on the PyTorch-exported gpt fixture', async () => {
  const fixture = loadFixture('gpt');
  const [batch, seq] = fixture.input.dims;
  const last = tensor(
    'int64',
    [batch],
    Array.from({ length: batch }, (_, b) => Number(fixture.input.data[b * seq + seq - 1])),
  );
  await compare(fixture.model, fixture.input, last);
});
