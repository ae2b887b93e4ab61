/**
 * Gradient × activation against the change a zero-ablation actually makes on a unit that enters
 * the score linearly (integrated gradients: integrated-gradients.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tensor } from '../tensor.ts';
import { loadFixture } from '../../test/helpers.ts';
import { gradientTimesActivation } from './attribution.ts';

describe('gradient × activation', () => {
  it('equals the score change of zeroing a unit that enters the score linearly (mlp fixture, act2 → head)', async () => {
    // score = head.w · act2 + b, so zeroing unit u of act2 lowers the score by w_u·a_u exactly: gradient × activation.
    const fixture = loadFixture('mlp');
    const target = tensor('int64', [16], Array(16).fill(1));
    const attribution = (
      await gradientTimesActivation(fixture.model, { input: fixture.input }, target, ['act2'])
    ).get('act2')!;
    const { runWithCache, runWithInterventions } = await import('../runtime/run.ts');
    const { ablate } = await import('../graph/interventions.ts');
    const clean = (await runWithCache(fixture.model, { input: fixture.input }, [])).outputs.output;
    for (const unit of [0, 7, 31]) {
      const ablated = (
        await runWithInterventions(fixture.model, { input: fixture.input }, [
          ablate('act2', 'zero', { units: [unit] }),
        ])
      ).outputs.output;
      let drop = 0;
      for (let b = 0; b < 16; b++)
        drop += (Number(clean.data[b * 3 + 1]) - Number(ablated.data[b * 3 + 1])) / 16;
      assert.ok(
        Math.abs(drop - attribution[unit]) < 1e-5,
        `unit ${unit}: ${drop} vs ${attribution[unit]}`,
      );
    }
    await fixture.model.release();
  });
});
