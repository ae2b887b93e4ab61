import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../random.ts';
import { RidgeProbe } from './probe.ts';

describe('ridge probes', () => {
  const random = seededRandom(5);
  const rows = Array.from({ length: 2000 }, () =>
    Float64Array.from({ length: 6 }, () => 2 * random() - 1),
  );
  const fitAndScore = (labels: number[]) => {
    const probe = new RidgeProbe(6, 3);
    for (let start = 0; start < rows.length; start += 300)
      probe.fit(rows.slice(start, start + 300), labels.slice(start, start + 300), start); // streamed
    for (let start = 0; start < rows.length; start += 300)
      probe.score(rows.slice(start, start + 300), labels.slice(start, start + 300), start);
    return probe.accuracy();
  };

  it('reads a linearly encoded class out of held-out examples', () => {
    // class = which of three linear scores is largest
    const labels = rows.map((x) =>
      [x[0] + x[1], x[2] - x[0], 0.5 * x[3] - x[4]].reduce(
        (best, value, c, all) => (value > all[best] ? c : best),
        0,
      ),
    );
    assert.ok(fitAndScore(labels) > 0.9);
  });

  it('stays at chance on labels unrelated to the features', () => {
    const labels = rows.map(() => Math.floor(3 * random()));
    assert.ok(Math.abs(fitAndScore(labels) - 1 / 3) < 0.08);
  });
});
