/**
 * Integrated gradients against independent facts: completeness on the PyTorch fixtures
 * (Σ attributions = F(x) − F(baseline) within 1%), and exactness where the score is linear in the
 * attributed value — at an input ((x − x′)·w) and at hooks, one of them with its batch axis second.
 * Completeness on every model of the conformance corpus: test/corpus-integrated-gradients.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, int, ints } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { tensor } from '../tensor.ts';
import { loadFixture } from '../../test/helpers.ts';
import { hookIntegratedGradients, integratedGradients } from './integrated-gradients.ts';

describe('integrated gradients at the input', () => {
  for (const name of ['mlp', 'cnn'] as const) {
    it(`completeness on the ${name} fixture: Σ attributions = F(x) − F(0) within 1% (of the mean |F(x) − F(0)|)`, async () => {
      const fixture = loadFixture(name);
      const target = tensor(
        'int64',
        [fixture.input.dims[0]],
        Array.from({ length: fixture.input.dims[0] }, (_, i) => i % 3),
      );
      const result = await integratedGradients(
        fixture.model,
        { input: fixture.input },
        'input',
        target,
        { steps: 128 },
      );
      assert.ok(result.completenessError < 0.01, `completeness error ${result.completenessError}`);
      await fixture.model.release();
    });
  }

  it('is exact on a linear score: attrᵢ = (xᵢ − x′ᵢ)·wᵢ', async () => {
    const g = new GraphBuilder('linear', 17);
    const w = tensor('float32', [2, 3], [0.5, -1, 2, 1, 1, 1]);
    g.output(
      g.node(
        'Gemm',
        [g.input('input', 'float32', ['batch', 3]), g.initializer('w', w)],
        { transB: int(1) },
        '/head/Gemm',
        'scores',
      ),
      'float32',
    );
    const model = Model.fromProto(g.build(), 'linear', { threads: 1 });
    const x = tensor('float32', [1, 3], [2, 3, -1]);
    const result = await integratedGradients(
      model,
      { input: x },
      'input',
      tensor('int64', [1], [0]),
      { steps: 4, baseline: tensor('float32', [1, 3], [1, 1, 1]) },
    );
    assert.deepEqual(Array.from(result.attributions.data as Float32Array), [0.5, -2, -4]);
    assert.ok(result.completenessError < 1e-6);
    await model.release();
  });
});

describe('integrated gradients at a hook', () => {
  // scores = (2x)·wᵀ, read through a transposed copy [3, batch] of 2x and transposed back:
  // at either hook a, F is linear in a, so attr = a·w[target] exactly (zero baseline).
  const w = [0.5, -1, 2, 1, 1, -3];
  const build = () => {
    const g = new GraphBuilder('hooked', 17);
    const doubled = g.node(
      'Mul',
      [g.input('input', 'float32', ['batch', 3]), g.initializer('two', tensor('float32', [], [2]))],
      {},
      '/double/Mul',
      'doubled',
    );
    const flipped = g.node(
      'Transpose',
      [doubled],
      { perm: ints([1, 0]) },
      '/flip/Transpose',
      'flipped',
    );
    const back = g.node('Transpose', [flipped], { perm: ints([1, 0]) }, '/back/Transpose', 'back');
    g.output(
      g.node(
        'Gemm',
        [back, g.initializer('w', tensor('float32', [2, 3], w))],
        { transB: int(1) },
        '/head/Gemm',
        'scores',
      ),
      'float32',
    );
    return Model.fromProto(g.build(), 'hooked', { threads: 1 });
  };
  const x = tensor('float32', [2, 3], [2, 3, -1, 0.5, -4, 1]);
  const target = tensor('int64', [2], [0, 1]);
  const expected = (b: number, i: number) =>
    2 * Number(x.data[b * 3 + i]) * w[Number(target.data[b]) * 3 + i];

  it("batch-first hook [batch, 3]: attr = a·w and the attributions are the hook's shape", async () => {
    const model = build();
    const result = await hookIntegratedGradients(model, { input: x }, 'double', target, {
      steps: 3,
    });
    assert.deepEqual(result.attributions.dims, [2, 3]);
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 3; i++)
        assert.ok(Math.abs(Number(result.attributions.data[b * 3 + i]) - expected(b, i)) < 1e-5);
    assert.ok(result.completenessError < 1e-6);
    await model.release();
  });

  it('hook with its batch axis second [3, batch]: points stack along that axis, attributions stay in its layout', async () => {
    const model = build();
    const result = await hookIntegratedGradients(model, { input: x }, 'flip', target, {
      steps: 5,
      maxRows: 4,
    });
    assert.deepEqual(result.attributions.dims, [3, 2]);
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 3; i++)
        assert.ok(
          Math.abs(Number(result.attributions.data[i * 2 + b]) - expected(b, i)) < 1e-5,
          `[${i}, ${b}]`,
        );
    assert.ok(result.completenessError < 1e-6);
    await model.release();
  });
});
