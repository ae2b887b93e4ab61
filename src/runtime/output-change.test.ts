import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { floatTensor } from '../tensor.ts';
import { OutputChangeTracker } from './output-change.ts';

describe('OutputChangeTracker', () => {
  it('accumulates mean and max absolute change and argmax flips over batches', () => {
    const tracker = new OutputChangeTracker();
    tracker.add(floatTensor([2, 3], [1, 0, 0, 0, 2, 1]), floatTensor([2, 3], [1, 0, 0, 0, 0.5, 1])); // row 2 flips 1 → 2
    tracker.add(floatTensor([1, 3], [0, 0, 3]), floatTensor([1, 3], [0, 0, 4]));
    const summary = tracker.summary();
    assert.equal(summary.meanAbsChange, (1.5 + 1) / 9);
    assert.equal(summary.maxAbsChange, 1.5);
    assert.equal(summary.argmaxFlipRate, 1 / 3);
    assert.equal(summary.rows, 3);
  });

  it('reports no flip rate for outputs without a class axis', () => {
    const tracker = new OutputChangeTracker();
    tracker.add(floatTensor([4, 1], [1, 2, 3, 4]), floatTensor([4, 1], [1, 2, 3, 5]));
    assert.equal(tracker.summary().argmaxFlipRate, undefined);
  });
});
