/**
 * The queue worker's trial process (queue-trial-process.ts), run with command trials (the child
 * runs any trial): a child killed mid-trial fails that trial only and the next trial gets a new
 * child; one child serves trial after trial; a stopped trial ends at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TrialProcess } from './queue-trial-process.ts';
import type { TrialJob } from './trial.ts';

/** A command trial; `script` runs under sh, its parent ($PPID) is the trial process. */
function job(id: number, script: string): TrialJob {
  return {
    id,
    configuration: 0,
    template: { kind: 'command', command: ['sh', '-c', script] } as TrialJob['template'],
    params: {},
    seed: 0,
    metric: 'metric',
    timeoutSeconds: 30,
  };
}

describe('queue worker: the training trials process', () => {
  it('keeps one child between trials, fails only the trial whose child dies, and starts another', async () => {
    const trials = new TrialProcess();
    const signal = new AbortController().signal;
    try {
      const pid = 'echo "{\\"metric\\": $PPID}"';
      const first = await trials.run(job(1, pid), signal);
      const second = await trials.run(job(2, pid), signal);
      assert.equal(first.status, 'done');
      assert.equal(second.metric, first.metric, 'the same process ran both');
      const killed = await trials.run(job(3, 'echo dying >&2; kill -9 $PPID; sleep 5'), signal);
      assert.equal(killed.status, 'failed');
      assert.match(killed.error!, /the trial's process died \(killed by SIGKILL\)/);
      const after = await trials.run(job(4, pid), signal);
      assert.equal(after.status, 'done');
      assert.notEqual(after.metric, first.metric, 'a new process');
    } finally {
      trials.close();
    }
  });

  it('a stopped trial ends at once, as failed', async () => {
    const trials = new TrialProcess();
    const controller = new AbortController();
    try {
      const started = performance.now();
      const running = trials.run(job(1, 'sleep 20; echo "{\\"metric\\": 1}"'), controller.signal);
      setTimeout(() => controller.abort(), 300);
      const outcome = await running;
      assert.equal(outcome.status, 'failed');
      assert.match(outcome.error!, /stopped/);
      assert.ok(performance.now() - started < 5000);
    } finally {
      trials.close();
    }
  });
});
