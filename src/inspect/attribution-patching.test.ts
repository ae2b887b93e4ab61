import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readNpy } from '../data/npy.ts';
import { loadFixture } from '../../test/helpers.ts';
import { tensor } from '../tensor.ts';
import { attributionPatching, targetLogitMetric } from './attribution-patching.ts';
import { patchSweep } from './patch-sweep.ts';
import { comparePatching } from './input-attribution.ts';
import type { ProgressEvent } from '../progress.ts';

describe('attribution patching vs exact activation patching (gpt fixture)', () => {
  it('is exact where the metric is linear in the hook (ln_f feeds the unembedding) and an estimate elsewhere', async () => {
    const fixture = loadFixture('gpt');
    const clean = { input: fixture.input };
    const corrupted = {
      input: {
        ...fixture.input,
        data: (fixture.input.data as BigInt64Array).map((_, i, all) => all[(i + 12) % all.length]),
      },
    };
    const target = tensor(
      'int64',
      [4],
      Array.from(readNpy(`${fixture.dir}/target.npy`).data as BigInt64Array, Number).filter(
        (_, i) => i % 12 === 11,
      ),
    );
    const hooks = ['ln_f', 'blocks.1', 'blocks.0'];
    const estimate = await attributionPatching(fixture.model, clean, corrupted, hooks, target);
    const exact = await patchSweep(
      fixture.model,
      clean,
      corrupted,
      hooks,
      'all',
      targetLogitMetric(target),
    );
    for (let p = 0; p < 12; p++)
      assert.ok(
        Math.abs(estimate[0][p] - exact.effects[0][p]) < 1e-4,
        `ln_f @${p}: ${estimate[0][p]} vs ${exact.effects[0][p]}`,
      );
    // Elsewhere only an estimate: it must at least move the same way where patching matters most.
    const strongest = exact.effects[1].reduce(
      (best, value, p, all) =>
        Math.abs(value - exact.cleanMetric) > Math.abs(all[best] - exact.cleanMetric) ? p : best,
      0,
    );
    assert.equal(
      Math.sign(estimate[1][strongest] - exact.cleanMetric),
      Math.sign(exact.effects[1][strongest] - exact.cleanMetric),
    );
    await fixture.model.release();
  });

  it('comparePatching reports the clean and corrupted runs, then every sweep run, and stops when aborted', async () => {
    const fixture = loadFixture('gpt');
    const clean = { input: fixture.input };
    const corrupted = {
      input: {
        ...fixture.input,
        data: (fixture.input.data as BigInt64Array).map((_, i, all) => all[(i + 12) % all.length]),
      },
    };
    const target = tensor('int64', [4], [1, 2, 3, 4]);
    const events: ProgressEvent[] = [];
    const hooks = ['blocks.1', 'blocks.0'];
    const comparison = await comparePatching(fixture.model, clean, corrupted, hooks, target, {
      onProgress: (event) => events.push(event),
    });
    assert.equal(comparison.rows.length, 2 * 12);
    // 12 positions × 4 examples stack into one run a hook here: 1 + 2 runs.
    assert.deepEqual(
      events.map((event) => [event.task, event.done, event.total]),
      [
        ['patch sweep', 1, 3],
        ['patch sweep', 2, 3],
        ['patch sweep', 3, 3],
      ],
    );
    const controller = new AbortController();
    await assert.rejects(
      comparePatching(fixture.model, clean, corrupted, hooks, target, {
        signal: controller.signal,
        onProgress: () => controller.abort(),
      }),
      { name: 'AbortError' },
    );
    await fixture.model.release();
  });
});
