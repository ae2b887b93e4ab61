import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadTask } from './tasks.ts';

describe('built-in tasks', () => {
  it('mnist: a seeded 8,000/2,000 split of the 10,000 digits, the same for the same data seed', () => {
    const task = loadTask('mnist');
    assert.deepEqual(
      [task.train.inputs.dims, task.test.inputs.dims],
      [
        [8000, 1, 28, 28],
        [2000, 1, 28, 28],
      ],
    );
    assert.deepEqual(loadTask('mnist').test.labels.data, task.test.labels.data);
    assert.notDeepEqual(loadTask('mnist', { dataSeed: 1 }).test.labels.data, task.test.labels.data);
  });

  it('colored-mnist follows the IRM construction: label noise 25%, colour agreement 90% / 80% / 10%', () => {
    const task = loadTask('colored-mnist');
    assert.deepEqual(task.train.inputs.dims, [8000, 2, 14, 14]);
    const agreement = (split: typeof task.train, environment: number) => {
      let agree = 0;
      let count = 0;
      for (let k = 0; k < split.labels.dims[0]; k++) {
        if (split.attributes!.environment[k] !== environment) continue;
        const colour = split.attributes!.color[k];
        // The image is drawn only in its colour channel.
        const pixels = split.inputs.data.subarray(k * 392, (k + 1) * 392) as Float32Array;
        assert.equal(
          pixels.subarray((1 - colour) * 196, (2 - colour) * 196).some((v) => v !== 0),
          false,
        );
        if (colour === Number(split.labels.data[k])) agree++;
        count++;
      }
      return agree / count;
    };
    // Binomial standard errors at n = 4000 and 2000 are under 0.01: allow 3.5 of them.
    assert.ok(Math.abs(agreement(task.train, 0) - 0.9) < 0.035);
    assert.ok(Math.abs(agreement(task.train, 1) - 0.8) < 0.035);
    assert.ok(Math.abs(agreement(task.test, 2) - 0.1) < 0.035);
  });

  it('modular-addition: every pair once, [a, b, =] tokens, label (a + b) mod p, the training fraction as asked', () => {
    const task = loadTask('modular-addition', { modulus: 7, trainFraction: 0.3 });
    assert.equal(task.train.labels.dims[0] + task.test.labels.dims[0], 49);
    assert.equal(task.train.labels.dims[0], Math.round(0.3 * 49));
    const seen = new Set<string>();
    for (const split of [task.train, task.test]) {
      for (let k = 0; k < split.labels.dims[0]; k++) {
        const [a, b, equals] = Array.from(
          split.inputs.data.subarray(3 * k, 3 * k + 3) as BigInt64Array,
          Number,
        );
        assert.equal(equals, 7);
        assert.equal(Number(split.labels.data[k]), (a + b) % 7);
        seen.add(`${a},${b}`);
      }
    }
    assert.equal(seen.size, 49);
    assert.deepEqual(
      [task.input, task.classes, task.lossPositions],
      [{ kind: 'tokens', length: 3, vocab: 8 }, 7, 'last'],
    );
  });
});
