import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { planConfigurations, planTrials } from './plan.ts';
import { parseSweepSpec } from './spec.ts';
import { SweepStore } from './store.ts';

const specJson = {
  parameters: { x: { range: [0, 1] } },
  configurations: 2,
  seeds: 2,
  metric: 'm',
  success: 0,
  command: 'train {x} {seed}',
};
const spec = parseSweepSpec(specJson);
const plan = { configurations: planConfigurations(spec), trials: planTrials(spec) };
const done = { status: 'done' as const, metric: 1, seconds: 0.1 };

describe('sweep store (SQLite)', () => {
  it('holds every planned trial once, records each result once and counts late duplicates', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'teardown-store-')), 'sweep');
    const store = await SweepStore.open(dir, spec, plan, false);
    assert.deepEqual(
      store.pendingTrials().map((t) => [t.configuration, t.seed]),
      [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
      ],
    );
    store.markRunning(1, 'w1');
    assert.equal(store.record(1, done, 'w1'), true);
    assert.equal(
      store.record(1, { ...done, metric: 2 }, 'w2'),
      false,
      'a second result for a finished trial is discarded',
    );
    assert.equal(store.trials()[0].metric, 1);
    store.markRunning(2, 'w1');
    assert.deepEqual(
      { ...store.counts() },
      { pending: 2, running: 1, done: 1, failed: 0, duplicates: 1 },
    );
    store.close();

    await assert.rejects(SweepStore.open(dir, spec, plan, false), /already holds a sweep/);
    const other = parseSweepSpec({ ...specJson, seeds: 3 });
    await assert.rejects(
      SweepStore.open(dir, other, plan, true),
      (error: unknown) =>
        error instanceof InputError && /field 'seeds' differs/.test(error.message),
    );
    const resumed = await SweepStore.open(dir, spec, plan, true);
    assert.equal(resumed.requeueRunning(), 1);
    assert.deepEqual(
      { ...resumed.counts() },
      { pending: 3, running: 0, done: 1, failed: 0, duplicates: 1 },
    );
    resumed.close();
  });

  it('never shows a half-made store: a set-up killed before the plan was whole leaves no sweep.db', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'teardown-store-')), 'killed');
    mkdirSync(dir);
    // What a coordinator killed while writing the plan leaves: the side file, never sweep.db.
    writeFileSync(join(dir, 'sweep.db.partial'), 'half a database');
    await assert.rejects(SweepStore.open(dir, spec, plan, true), /holds no sweep/);
    const store = await SweepStore.open(dir, spec, plan, false);
    assert.equal(store.pendingTrials().length, 4);
    store.close();
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('sweep.db')),
      ['sweep.db', 'sweep.db-shm', 'sweep.db-wal'].filter((name) => existsSync(join(dir, name))),
    );
    assert.ok(!existsSync(join(dir, 'sweep.db.partial')));
  });

  it('refuses --resume where there is no sweep', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'teardown-store-')), 'none');
    await assert.rejects(SweepStore.open(dir, spec, plan, true), /holds no sweep/);
  });
});

describe('sweep store settings', () => {
  it('refuses a resume with other settings (a smoke-size sweep resumed at full size)', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'teardown-store-')), 'smoke');
    (await SweepStore.open(dir, spec, plan, false, { smoke: true, threads: 1 })).close();
    await assert.rejects(
      SweepStore.open(dir, spec, plan, true, { smoke: false, threads: 1 }),
      /started with smoke true, not false: resume with the same --smoke/,
    );
    (await SweepStore.open(dir, spec, plan, true, { smoke: true, threads: 1 })).close();
  });
});
