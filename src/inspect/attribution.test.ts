/**
 * Attribution against independent facts: integrated gradients' completeness on the PyTorch
 * fixtures (Σ attributions = F(x) − F(baseline) within 1%), exactness on a linear model
 * ((x − x′)·w), and gradient × activation against the change a zero-ablation actually makes
 * on a unit that enters the score linearly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, int } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { tensor } from '../tensor.ts';
import { loadFixture } from '../../test/helpers.ts';
import { gradientTimesActivation, integratedGradients } from './attribution.ts';

describe('integrated gradients', () => {
  for (const name of ['mlp', 'cnn'] as const) {
    it(`completeness on the ${name} fixture: Σ attributions = F(x) − F(0) within 1% (of the mean |F(x) − F(0)|)`, async () => {
      const fixture = loadFixture(name);
      const target = tensor('int64', [fixture.input.dims[0]], Array.from({ length: fixture.input.dims[0] }, (_, i) => i % 3));
      const result = await integratedGradients(fixture.model, 'input', fixture.input, target, { steps: 128 });
      assert.ok(result.completenessError < 0.01, `completeness error ${result.completenessError}`);
      await fixture.model.release();
    });
  }

  it('is exact on a linear score: attrᵢ = (xᵢ − x′ᵢ)·wᵢ', async () => {
    const g = new GraphBuilder('linear', 17);
    const w = tensor('float32', [2, 3], [0.5, -1, 2, 1, 1, 1]);
    g.output(g.node('Gemm', [g.input('input', 'float32', ['batch', 3]), g.initializer('w', w)], { transB: int(1) }, '/head/Gemm', 'scores'), 'float32');
    const model = Model.fromProto(g.build(), 'linear', { threads: 1 });
    const x = tensor('float32', [1, 3], [2, 3, -1]);
    const result = await integratedGradients(model, 'input', x, tensor('int64', [1], [0]), { steps: 4, baseline: tensor('float32', [1, 3], [1, 1, 1]) });
    assert.deepEqual(Array.from(result.attributions.data as Float32Array), [0.5, -2, -4]);
    assert.ok(result.completenessError < 1e-6);
  });
});

describe('gradient × activation', () => {
  it('equals the score change of zeroing a unit that enters the score linearly (mlp fixture, act2 → head)', async () => {
    // score = head.w · act2 + b, so zeroing unit u of act2 lowers the score by w_u·a_u exactly: gradient × activation.
    const fixture = loadFixture('mlp');
    const target = tensor('int64', [16], Array(16).fill(1));
    const attribution = (await gradientTimesActivation(fixture.model, { input: fixture.input }, target, ['act2'])).get('act2')!;
    const { runWithCache, runWithInterventions } = await import('../runtime/run.ts');
    const { ablate } = await import('../graph/interventions.ts');
    const clean = (await runWithCache(fixture.model, { input: fixture.input }, [])).outputs.output;
    for (const unit of [0, 7, 31]) {
      const ablated = (await runWithInterventions(fixture.model, { input: fixture.input }, [ablate('act2', 'zero', { units: [unit] })])).outputs.output;
      let drop = 0;
      for (let b = 0; b < 16; b++) drop += (Number(clean.data[b * 3 + 1]) - Number(ablated.data[b * 3 + 1])) / 16;
      assert.ok(Math.abs(drop - attribution[unit]) < 1e-5, `unit ${unit}: ${drop} vs ${attribution[unit]}`);
    }
    await fixture.model.release();
  });
});
