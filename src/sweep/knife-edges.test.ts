import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { knifeEdges } from './knife-edges.ts';
import type { Parameter } from './spec.ts';

describe('knife edges', () => {
  it('finds a planted working interval of lr in log space: [1e-3, 1e-2] of [1e-5, 1]', () => {
    // Success exactly when 1e-3 ≤ lr < 1e-2, i.e. u = (log10 lr + 5)/5 in [0.4, 0.6).
    const lr: Parameter = { name: 'lr', kind: 'log', low: 1e-5, high: 1 };
    const trials = Array.from({ length: 1000 }, (_, i) => {
      const u = (i + 0.5) / 1000;
      return { point: [u], success: u >= 0.4 && u < 0.6 };
    });
    const [edge] = knifeEdges([lr], trials, () => 10);
    assert.ok(
      Math.abs((edge.low as number) - 1e-3) < 1e-12 &&
        Math.abs((edge.high as number) - 1e-2) < 1e-12,
      `${edge.low} – ${edge.high}`,
    );
    assert.ok(Math.abs(edge.width - 0.2) < 1e-12);
    assert.equal(edge.runs, 1);
    assert.deepEqual(
      edge.bins.map((bin) => bin.rate),
      [0, 0, 0, 0, 1, 1, 0, 0, 0, 0],
    );
  });

  it('reports no range when nothing works, and separate runs when the region is split', () => {
    const x: Parameter = { name: 'x', kind: 'range', low: 0, high: 1 };
    const none = knifeEdges([x], [{ point: [0.5], success: false }], () => 4)[0];
    assert.equal(none.low, null);
    assert.equal(none.width, 0);
    const split = knifeEdges(
      [x],
      [0.1, 0.2, 0.8, 0.9].map((u) => ({ point: [u], success: u < 0.3 || u > 0.7 })),
      () => 4,
    )[0];
    assert.equal(split.runs, 2);
  });

  it('bins a categorical parameter by value', () => {
    const act: Parameter = { name: 'act', kind: 'values', values: ['relu', 'tanh'] };
    const [edge] = knifeEdges(
      [act],
      [
        { point: [0.25], success: false },
        { point: [0.75], success: true },
      ],
      () => 2,
    );
    assert.deepEqual([edge.low, edge.high, edge.width], ['tanh', 'tanh', 0.5]);
  });
});
