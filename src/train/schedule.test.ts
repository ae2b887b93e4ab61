import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { learningRate } from './schedule.ts';

describe('learning-rate schedules', () => {
  it('warms up linearly, then decays on a half cosine to 0 at the last step', () => {
    const schedule = { warmupSteps: 10, cosine: true };
    assert.equal(learningRate(1, schedule, 1, 110), 0.1);
    assert.equal(learningRate(1, schedule, 10, 110), 1);
    assert.ok(Math.abs(learningRate(1, schedule, 60, 110) - 0.5) < 1e-12);
    assert.ok(Math.abs(learningRate(1, schedule, 110, 110)) < 1e-12);
  });
  it('is constant without warm-up or cosine', () =>
    assert.equal(learningRate(0.3, { warmupSteps: 0, cosine: false }, 57, 100), 0.3));
});
