import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressLine, progressReporter } from './progress.ts';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 120, write: (text: string) => writes.push(text) } };
}

describe('progress on standard error', () => {
  it('off a terminal: one line every interval and one at the end, with rate and time left', () => {
    const { writes, stream } = fakeStream(false);
    let now = 0;
    const report = progressReporter({ stream, intervalSeconds: 5, now: () => now });
    for (let second = 1; second <= 12; second++) {
      now = 1000 * second;
      report({ task: 'audit', done: second, total: 12, status: 'shift' });
    }
    // Lines at 1 s (the first), 6 s, 11 s and at the end (12 s): never silent for longer than the interval.
    assert.equal(writes.length, 4);
    assert.ok(writes.every((line) => line.endsWith('\n') && !line.includes('\r')));
    // At 6 s, 6 of 12 done over 6 s since the reporter was made: 1.0/s, 6 left → 6.0 s.
    assert.match(writes[1], /^audit \[#{10}\.{10}\] 6\/12 1\.0\/s 6\.0 s left \(shift\)\n$/);
    assert.match(writes[3], /12\/12 .* done in 12\.0 s/);
  });

  it('on a terminal: the line is redrawn in place, at most ten times a second, ending with a newline', () => {
    const { writes, stream } = fakeStream(true);
    let now = 0;
    const report = progressReporter({ stream, now: () => now });
    for (let step = 1; step <= 100; step++) {
      now = 10 * step; // 100 events a second
      report({ task: 'train', done: step, total: 100 });
    }
    assert.ok(writes.length >= 9 && writes.length <= 12, `${writes.length} redraws in one second`);
    assert.ok(writes.every((text) => text.startsWith('\r')));
    assert.ok(writes.at(-1)!.endsWith('\n'));
  });

  it('draws nothing when quiet, and starts a task over when it runs again', () => {
    const quiet = fakeStream(false);
    progressReporter({ stream: quiet.stream, quiet: true })({ task: 'run', done: 1, total: 1 });
    assert.equal(quiet.writes.length, 0);
    const { writes, stream } = fakeStream(false);
    let now = 0;
    const report = progressReporter({ stream, now: () => now });
    report({ task: 'train', done: 2, total: 2 });
    now = 60_000;
    report({ task: 'train', done: 1, total: 2 });
    assert.equal(writes.length, 2);
  });

  it('drops the bar when the terminal is narrow', () => {
    assert.equal(
      progressLine({ task: 'grad', done: 5, total: 10 }, 10, 30),
      'grad 5/10 0.50/s 10.0 s left',
    );
  });
});
