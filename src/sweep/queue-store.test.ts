/**
 * What the queue's coordinator relies on in the store (store.recordRun, store.queueKey): a result
 * read back twice is recorded once and not counted; another run's result for a finished trial is a
 * counted duplicate; the sweep's queue key survives a resume.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { planConfigurations, planTrials } from './plan.ts';
import { parseSweepSpec } from './spec.ts';
import { SweepStore } from './store.ts';

const spec = parseSweepSpec({
  parameters: { x: { range: [0, 1] } },
  configurations: 2,
  seeds: 1,
  metric: 'm',
  success: 0,
  command: 'train {x} {seed}',
});
const plan = { configurations: planConfigurations(spec), trials: planTrials(spec) };

describe('sweep store: results of queued runs', () => {
  it('records a run once, ignores it read again, counts a second run as a late duplicate', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'teardown-queue-store-')), 'sweep');
    const store = await SweepStore.open(dir, spec, plan, false);
    const key = store.queueKey();
    assert.equal(store.queueKey(), key, 'made once');
    const first = { status: 'done' as const, metric: 1, seconds: 0.5 };
    assert.equal(store.recordRun('run-a', 1, first, 'wA'), 'recorded');
    assert.equal(store.recordRun('run-a', 1, first, 'wA'), 'seen');
    assert.equal(store.counts().duplicates, 0);
    assert.equal(store.recordRun('run-b', 1, { ...first, metric: 2 }, 'wB'), 'duplicate');
    assert.equal(store.recordRun('run-b', 1, { ...first, metric: 2 }, 'wB'), 'seen');
    assert.deepEqual(
      { ...store.counts() },
      {
        pending: 1,
        running: 0,
        done: 1,
        failed: 0,
        duplicates: 1,
      },
    );
    const trial = store.trials()[0];
    assert.deepEqual([trial.metric, trial.worker], [1, 'wA'], 'the first result stays');
    store.close();

    const resumed = await SweepStore.open(dir, spec, plan, true);
    assert.equal(resumed.queueKey(), key, 'the resumed coordinator finds its jobs');
    assert.equal(resumed.recordRun('run-a', 1, first, 'wA'), 'seen');
    resumed.close();
  });
});
