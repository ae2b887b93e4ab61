/**
 * The axes of a hook's value (DESIGN.md, "Units"): which holds the examples (the batch axis,
 * wherever the graph put it: ONNX LSTM's Y is [seq, dirs, batch, hidden]; none for values that
 * are the same for every example, such as a position table [seq, d]), which the units and which
 * the sequence positions.
 */

/** The axis whose size is the batch ('batch' or 'batch*k' in probed dims), if any. */
export function batchAxisOf(dims: readonly (number | string)[]): number | undefined {
  const axis = dims.findIndex((dim) => typeof dim === 'string' && /^batch(\*\d+)?$/.test(dim));
  return axis < 0 ? undefined : axis;
}

/**
 * The unit axis: axis 1 of batch-first maps of rank 4 or more (conv channels [batch, channels,
 * h, w], attention heads [batch, heads, query, key]); otherwise the last axis (dense and sequence
 * values [batch, d], [batch, seq, d], [seq, batch, d], LSTM's [seq, dirs, batch, hidden]).
 */
export function defaultUnitAxis(rank: number, batchAxis: number | undefined = 0): number {
  if (rank <= 1) return 0;
  if (rank >= 4 && batchAxis === 0) return 1;
  return rank - 1;
}

/**
 * The sequence-position axis: the axis that is neither batch nor unit in a sequence value
 * ([batch, seq, d] → 1, [seq, batch, d] → 0, a position table [seq, d] → 0), the query axis of
 * [batch, heads, query, key] (2); none otherwise.
 */
export function positionAxis(rank: number, unitAxis: number, batchAxis: number | undefined = 0): number | undefined {
  if (rank === 4 && batchAxis === 0 && unitAxis === 1) return 2;
  if (unitAxis !== rank - 1) return undefined;
  if (rank === 3 && batchAxis !== undefined && batchAxis < 2) return 1 - batchAxis;
  if (rank === 2 && batchAxis === undefined) return 0;
  return undefined;
}

/** Symbolic dims from probing at batch 1 and 2: 'batch' (or 'batch*k') where the size scaled with the batch. */
export function symbolicDims(atOne: readonly number[], atTwo: readonly number[]): (number | string)[] {
  return atOne.map((size, axis) => {
    if (atTwo[axis] === size) return size;
    if (atTwo[axis] === 2 * size) return size === 1 ? 'batch' : `batch*${size}`;
    return '?';
  });
}

/** Concrete dims of symbolic ones at a batch size. */
export function dimsAtBatch(dims: readonly (number | string)[], batch: number): number[] {
  return dims.map((dim) => {
    if (typeof dim === 'number') return dim;
    if (dim === 'batch') return batch;
    const factor = /^batch\*(\d+)$/.exec(dim);
    if (factor) return batch * Number(factor[1]);
    return -1;
  });
}
