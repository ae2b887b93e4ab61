/**
 * broadcastTo's copy path (a tensor spanning the trailing axes whole: a mean [1, ...] repeated
 * per row, or the shape itself) against the element-by-element broadcast of broadcastBinary, on
 * every shape pattern the sweeps give it and on shapes that must take the general path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { broadcastBinary, broadcastTo } from '../src/tensor-math.ts';
import { allocate, elementCount, type Tensor } from '../src/tensor.ts';

function filled(dims: number[], dtype: 'float32' | 'float64' = 'float32'): Tensor {
  const data = allocate(dtype, elementCount(dims)) as Float32Array;
  data.forEach((_, i) => (data[i] = i * 0.5 - 3));
  return { dtype, dims, data };
}

/** NumPy broadcasting by the odometer: every output element read from its input index. */
function byElement(t: Tensor, dims: number[]): Tensor {
  const zeros = { dtype: t.dtype, dims, data: allocate(t.dtype, elementCount(dims)) };
  return broadcastBinary(zeros, t, (_, value) => value);
}

const CASES: [number[], number[]][] = [
  [
    [1, 3, 4],
    [5, 3, 4],
  ], // a mean per row
  [
    [3, 4],
    [5, 3, 4],
  ], // fewer axes
  [
    [5, 3, 4],
    [5, 3, 4],
  ], // the shape itself
  [
    [1, 1, 4],
    [2, 3, 4],
  ], // only the last axis whole
  [
    [1, 1],
    [6, 1],
  ], // a scalar in a column
  [[1], [2, 3]], // a scalar
  [
    [3, 1],
    [2, 3, 4],
  ], // general: a broadcast inner axis
  [
    [1, 3, 1, 1],
    [2, 3, 5, 5],
  ], // general: a per-channel value
  [
    [2, 1, 4],
    [2, 3, 4],
  ], // general: a broadcast middle axis
  [
    [5, 3, 4],
    [2, 5, 3, 4],
  ], // repeated along a new leading axis
];

describe('broadcastTo', () => {
  for (const [from, to] of CASES) {
    it(`[${from}] → [${to}] equals the element-by-element broadcast`, () => {
      for (const dtype of ['float32', 'float64'] as const) {
        const t = filled(from, dtype);
        const found = broadcastTo(t, to);
        const expected = byElement(t, to);
        assert.deepEqual(found.dims, to);
        assert.equal(found.dtype, dtype);
        assert.deepEqual(
          Array.from(found.data as Float32Array),
          Array.from(expected.data as Float32Array),
        );
      }
    });
  }
});
