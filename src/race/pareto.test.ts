/**
 * The Pareto front on points whose front is drawn by hand, and on random points against the
 * definition: no point of the front is dominated, every other point is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { paretoFront } from './pareto.ts';

type Point = { name: string; accuracy: number; seconds: number };
const objectives = [(p: Point) => p.accuracy, (p: Point) => -p.seconds];

describe('paretoFront', () => {
  it('keeps the points nothing beats on both accuracy and time', () => {
    const points: Point[] = [
      { name: 'fast, weak', accuracy: 0.7, seconds: 1 },
      { name: 'slow, strong', accuracy: 0.95, seconds: 60 },
      { name: 'middle', accuracy: 0.9, seconds: 10 },
      { name: 'beaten by middle', accuracy: 0.85, seconds: 20 },
      { name: 'tied with middle', accuracy: 0.9, seconds: 10 },
      { name: 'as fast, weaker', accuracy: 0.6, seconds: 1 },
    ];
    assert.deepEqual(
      paretoFront(points, objectives).map((p) => p.name),
      ['fast, weak', 'slow, strong', 'middle', 'tied with middle'],
    );
  });

  it('is the set of undominated points (random points)', () => {
    const point = fc.record({
      name: fc.constant(''),
      accuracy: fc.integer({ min: 0, max: 10 }).map((v) => v / 10),
      seconds: fc.integer({ min: 1, max: 10 }),
    });
    fc.assert(
      fc.property(fc.array(point, { maxLength: 12 }), (points) => {
        const front = new Set(paretoFront(points, objectives));
        const beats = (b: Point, a: Point) =>
          b.accuracy >= a.accuracy &&
          b.seconds <= a.seconds &&
          (b.accuracy > a.accuracy || b.seconds < a.seconds);
        for (const a of points) {
          const dominated = points.some((b) => beats(b, a));
          assert.equal(front.has(a), !dominated);
        }
      }),
    );
  });
});
