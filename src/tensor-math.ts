/** The few elementwise tensor operations teardown does in JavaScript (masks, means), with NumPy broadcasting. */
import { allocate, elementCount, type Tensor } from './tensor.ts';

/** C-order strides of `dims`, with 0 for axes of size 1 so that they broadcast. */
function broadcastStrides(dims: readonly number[], rank: number): number[] {
  const padded = [...Array(rank - dims.length).fill(1), ...dims];
  const strides = new Array(rank).fill(0);
  let stride = 1;
  for (let axis = rank - 1; axis >= 0; axis--) {
    strides[axis] = padded[axis] === 1 ? 0 : stride;
    stride *= padded[axis];
  }
  return strides;
}

/** `a` and `b` combined elementwise by `op` over their broadcast shape; the result takes a's float dtype. */
export function broadcastBinary(
  a: Tensor,
  b: Tensor,
  op: (x: number, y: number) => number,
): Tensor {
  const rank = Math.max(a.dims.length, b.dims.length);
  const padA = [...Array(rank - a.dims.length).fill(1), ...a.dims];
  const padB = [...Array(rank - b.dims.length).fill(1), ...b.dims];
  const dims = padA.map((size, axis) => Math.max(size, padB[axis]));
  const stridesA = broadcastStrides(a.dims, rank);
  const stridesB = broadcastStrides(b.dims, rank);
  const out = allocate(a.dtype, elementCount(dims)) as Float32Array;
  const index = new Array(rank).fill(0);
  let offsetA = 0;
  let offsetB = 0;
  for (let flat = 0; flat < out.length; flat++) {
    out[flat] = op(Number(a.data[offsetA]), Number(b.data[offsetB]));
    // Advance the multi-index like an odometer, keeping both offsets in step.
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]++;
      offsetA += stridesA[axis];
      offsetB += stridesB[axis];
      if (index[axis] < dims[axis]) break;
      offsetA -= stridesA[axis] * dims[axis];
      offsetB -= stridesB[axis] * dims[axis];
      index[axis] = 0;
    }
  }
  return { dtype: a.dtype, dims, data: out };
}

export const multiply = (a: Tensor, b: Tensor) => broadcastBinary(a, b, (x, y) => x * y);
export const add = (a: Tensor, b: Tensor) => broadcastBinary(a, b, (x, y) => x + y);

/** Elementwise f(x) of a float tensor. */
export function map(t: Tensor, f: (x: number) => number): Tensor {
  const out = allocate(t.dtype, t.data.length) as Float32Array;
  for (let i = 0; i < out.length; i++) out[i] = f(Number(t.data[i]));
  return { dtype: t.dtype, dims: [...t.dims], data: out };
}

/** Running sum over the first axis, for means over datasets streamed in batches: [n, ...] → [1, ...] in float64. */
export class RowSum {
  private sum: Float64Array | undefined;
  private dims: number[] = [];
  count = 0;

  add(batch: Tensor): void {
    const rowSize = elementCount(batch.dims.slice(1));
    if (!this.sum) {
      this.sum = new Float64Array(rowSize);
      this.dims = [1, ...batch.dims.slice(1)];
    }
    for (let row = 0; row < batch.dims[0]; row++) {
      for (let i = 0; i < rowSize; i++) this.sum[i] += Number(batch.data[row * rowSize + i]);
    }
    this.count += batch.dims[0];
  }

  mean(dtype: 'float32' | 'float64'): Tensor {
    const mean = allocate(dtype, this.sum!.length) as Float32Array;
    for (let i = 0; i < mean.length; i++) mean[i] = this.sum![i] / this.count;
    return { dtype, dims: this.dims, data: mean };
  }
}

/** `t` broadcast to `dims` (NumPy rules), materialised. */
export function broadcastTo(t: Tensor, dims: readonly number[]): Tensor {
  // t spans the trailing axes of dims whole (a mean [1, ...] per row, or dims itself): copies of
  // its values, end to end, are the broadcast, without the odometer's per-element work.
  const first = t.dims.findIndex((size) => size !== 1);
  const core = first < 0 ? [] : t.dims.slice(first);
  const trailing = dims.slice(dims.length - core.length);
  const whole = core.length > 0 && core.length <= dims.length;
  if (whole && t.data.length > 0 && core.every((size, a) => size === trailing[a])) {
    const data = allocate(t.dtype, elementCount(dims)) as Float32Array;
    for (let at = 0; at < data.length; at += t.data.length) data.set(t.data as Float32Array, at);
    return { dtype: t.dtype, dims: [...dims], data };
  }
  const shape: Tensor = {
    dtype: t.dtype,
    dims: [...dims],
    data: allocate(t.dtype, elementCount(dims)),
  };
  return broadcastBinary(shape, t, (_, value) => value);
}

/**
 * The predicted class of every row of class scores (argmax over the last axis, first maximum on
 * ties; a single logit is class 1 when positive).
 */
export function predictedClasses(scores: Tensor): Int32Array {
  const width = scores.dims.length >= 2 ? scores.dims[scores.dims.length - 1] : 1;
  const rows = scores.data.length / width;
  return Int32Array.from({ length: rows }, (_, row) => {
    if (width === 1) return Number(scores.data[row]) > 0 ? 1 : 0;
    let best = 0;
    for (let c = 1; c < width; c++)
      if (Number(scores.data[row * width + c]) > Number(scores.data[row * width + best])) best = c;
    return best;
  });
}
