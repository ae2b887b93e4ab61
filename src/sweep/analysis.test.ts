import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeSweep } from './analysis.ts';
import { planConfigurations } from './plan.ts';
import { parseSweepSpec } from './spec.ts';
import type { TrialRecord } from './store.ts';

const spec = parseSweepSpec({
  parameters: { x: { range: [0, 1] } },
  sampler: 'grid',
  levels: 4,
  seeds: 2,
  metric: 'loss',
  direction: 'minimize',
  success: 0.5,
  command: 'train {x} {seed}',
});
const configurations = planConfigurations(spec);

function trials(metricOf: (x: number, seed: number) => number | null): TrialRecord[] {
  return configurations.flatMap((c) =>
    [0, 1].map((seed) => {
      const metric = metricOf(c.params.x as number, seed);
      return {
        id: c.index * 2 + seed + 1,
        configuration: c.index,
        seed,
        params: c.params,
        status: metric === null ? ('failed' as const) : ('done' as const),
        metric,
        seconds: 1,
        worker: 'w',
        error: metric === null ? 'exit status 1' : null,
        curve: null,
      };
    }),
  );
}

describe('sweep analysis', () => {
  it('minimize: success is metric ≤ threshold, the best configuration has the lowest mean', () => {
    const analysis = analyzeSweep(
      spec,
      configurations,
      trials((x, seed) => x + 0.01 * seed),
    );
    // x ∈ {0, 1/3, 2/3, 1}: x ≤ 0.49 works for both seeds.
    assert.deepEqual([analysis.success.successes, analysis.success.trials], [4, 8]);
    assert.equal(analysis.best!.params.x, 0);
    assert.ok(Math.abs(analysis.configurations[3].std! - 0.01 / Math.SQRT2) < 1e-12);
    assert.ok(Math.abs(analysis.configurations[3].range! - 0.01) < 1e-12);
    assert.deepEqual([analysis.knifeEdges[0].low, analysis.knifeEdges[0].width], [0, 0.5]);
  });

  it('failed trials count as not working and leave their configuration out of the variance table', () => {
    const analysis = analyzeSweep(
      spec,
      configurations,
      trials((x, seed) => (x === 1 && seed === 1 ? null : x)),
    );
    assert.deepEqual([analysis.success.successes, analysis.success.trials], [4, 8]);
    assert.equal(analysis.configurations[3].failed, 1);
    assert.equal(analysis.variance!.configurations, 3);
  });

  it('everything failed: no best, no variance, no importance, no working range', () => {
    const analysis = analyzeSweep(
      spec,
      configurations,
      trials(() => null),
    );
    assert.deepEqual([analysis.success.rate, analysis.success.trials], [0, 8]);
    assert.equal(analysis.best, null);
    assert.equal(analysis.variance, null);
    assert.deepEqual(analysis.importance, []);
    assert.equal(analysis.knifeEdges[0].low, null);
  });

  it('a constant metric: importance shares are zero, not NaN', () => {
    const analysis = analyzeSweep(
      spec,
      configurations,
      trials(() => 0.3),
    );
    assert.ok(
      analysis.importance.every((row) => row.share === 0 && Number.isFinite(row.low)),
      JSON.stringify(analysis.importance),
    );
  });
});
