import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { sobolPoints } from './sobol.ts';

const oracle = JSON.parse(
  readFileSync(new URL('../../test/fixtures/sweep/sobol-256x21.json', import.meta.url), 'utf8'),
) as { scale: number; points: number[][] };

describe('Sobol sequence (Joe & Kuo direction numbers)', () => {
  it('starts with the published first points (Joe & Kuo 2008; Bratley & Fox 1988)', () => {
    const points = sobolPoints(8, 3);
    assert.deepEqual(points, [
      [0, 0, 0],
      [0.5, 0.5, 0.5],
      [0.75, 0.25, 0.25],
      [0.25, 0.75, 0.75],
      [0.375, 0.375, 0.625],
      [0.875, 0.875, 0.125],
      [0.625, 0.125, 0.875],
      [0.125, 0.625, 0.375],
    ]);
  });

  it("equals PyTorch's SobolEngine over 256 points in all 21 dimensions", () => {
    const points = sobolPoints(256, 21);
    points.forEach((point, n) => {
      assert.deepEqual(
        point.map((x) => x * oracle.scale),
        oracle.points[n],
        `point ${n}`,
      );
    });
  });

  it('continues from any start', () => {
    assert.deepEqual(sobolPoints(5, 21, 100), sobolPoints(105, 21).slice(100));
  });

  it('refuses more dimensions than its table holds', () => {
    assert.throws(() => sobolPoints(1, 22), /at most 21 parameters/);
  });
});
