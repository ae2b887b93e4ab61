import assert from 'node:assert/strict';
import { describe, it, after } from 'node:test';
import { ablate, patch, scale, type Intervention } from '../graph/interventions.ts';
import { runWithCache, runWithInterventions } from '../runtime/run.ts';
import type { Tensor } from '../tensor.ts';
import { loadFixture } from '../../test/helpers.ts';
import { sweepInterventions } from './sweep.ts';

const meanOf = (t: Tensor) =>
  Array.from(t.data as Float32Array).reduce((a, b) => a + b, 0) / t.data.length;
const sumSquares = (t: Tensor) => Array.from(t.data as Float32Array).reduce((a, b) => a + b * b, 0);

describe('sweepInterventions: stacked variants equal one run per variant', () => {
  it('mlp: each act1 unit mean-ablated alone, plus composed variants', async () => {
    const fixture = loadFixture('mlp');
    after(() => fixture.model.release());
    const feeds = { input: fixture.input };
    const variants: Intervention[][] = [
      ...Array.from({ length: 32 }, (_, unit) => [ablate('act1', 'mean', { units: [unit] })]),
      [],
      [
        scale('act1', 2, { units: [1, 2] }),
        ablate('act1', 'zero', { units: [2, 5] }),
        ablate('act2', 'resample', { units: [0], seed: 4 }),
      ],
    ];
    const stacked = await sweepInterventions(fixture.model, feeds, variants, sumSquares, {
      maxRows: 16 * 7,
    });
    for (const [index, variant] of variants.entries()) {
      const one = await runWithInterventions(fixture.model, feeds, variant);
      assert.ok(
        Math.abs(stacked[index] - sumSquares(one.outputs.output)) < 1e-4,
        `variant ${index}: ${stacked[index]} vs ${sumSquares(one.outputs.output)}`,
      );
    }
  });

  it('gpt: whole-hook and positional patches and head ablations in one stack', async () => {
    const fixture = loadFixture('gpt');
    after(() => fixture.model.release());
    const clean = { input: fixture.input };
    const corrupted = {
      input: {
        ...fixture.input,
        data: (fixture.input.data as BigInt64Array).map((_, i, all) => all[(i + 12) % all.length]),
      },
    };
    const cached = (await runWithCache(fixture.model, corrupted, ['blocks.0', 'embed'])).cache;
    const variants: Intervention[][] = [
      [patch('blocks.0', cached.get('blocks.0')!)],
      [patch('embed', cached.get('embed')!, { positions: [3, 4] })],
      [ablate('blocks.1.attn.softmax', 'zero', { units: [0, 2] })],
      [
        ablate('blocks.0.mlp.1', 'mean', { positions: [-1], units: [0, 1, 2] }),
        patch('embed', cached.get('embed')!, { positions: [0] }),
      ],
    ];
    const stacked = await sweepInterventions(fixture.model, clean, variants, meanOf);
    for (const [index, variant] of variants.entries()) {
      const one = await runWithInterventions(fixture.model, clean, variant);
      assert.ok(Math.abs(stacked[index] - meanOf(one.outputs.output)) < 1e-5, `variant ${index}`);
    }
  });
});
