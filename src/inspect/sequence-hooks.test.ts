/**
 * sequenceHooks on a hand-built graph whose hook shapes are known: a and c are [batch, seq, 4],
 * pool is [batch, 4], and c is also a model output — so only a can be patched by position.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { GraphBuilder, int, ints } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { tensor } from '../tensor.ts';
import { sequenceHooks } from './sequence-hooks.ts';

function sequenceModel(): Model {
  const g = new GraphBuilder('sequence', 17);
  const x = g.input('input', 'float32', ['batch', 'seq', 4]);
  const a = g.node('Relu', [x], {}, '/a/Relu'); // [batch, seq, 4]
  const c = g.node('Sigmoid', [a], {}, '/c/Sigmoid', 'c'); // [batch, seq, 4], an output too
  const pool = g.node('ReduceMean', [a], { axes: ints([1]), keepdims: int(0) }, '/pool/ReduceMean'); // [batch, 4]
  const head = g.initializer('head.weight', tensor('float32', [4, 2], [1, 0, 0, 1, 1, 0, 0, 1]));
  g.output(g.node('MatMul', [pool, head], {}, '/head/MatMul', 'logits'), 'float32');
  g.output(c, 'float32');
  return Model.fromProto(g.build(), 'sequence', { threads: 1 });
}

describe('sequenceHooks', () => {
  const model = sequenceModel();
  after(() => model.release());
  const sample = {
    input: tensor(
      'float32',
      [2, 3, 4],
      Array.from({ length: 24 }, (_, k) => k - 12),
    ),
  };

  it('keeps the [batch, seq, d] module hooks that are not outputs', async () => {
    assert.deepEqual(await sequenceHooks(model, sample), ['a']);
  });

  it('refuses when none of the named hooks is a sequence', async () => {
    await assert.rejects(
      sequenceHooks(model, sample, ['pool', 'head']),
      (e: Error) =>
        e instanceof InputError && /needs sequence hooks \[batch, seq, d\]/.test(e.message),
    );
  });
});
