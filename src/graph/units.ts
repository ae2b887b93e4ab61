/**
 * Which axis of a hook's value holds its units, and which holds sequence positions
 * (DESIGN.md, "Units"): the last axis of dense and sequence values ([batch, d], [batch, seq, d]),
 * axis 1 of convolutional maps ([batch, channels, h, w], a unit per channel) and of attention
 * values with a head axis ([batch, heads, query, key], a unit per head).
 */
export function defaultUnitAxis(rank: number): number {
  if (rank <= 1) return 0;
  if (rank <= 3) return rank - 1;
  return 1;
}

/** The sequence-position axis: 1 for [batch, seq, d], 2 (query) for [batch, heads, seq, ·]; none otherwise. */
export function positionAxis(rank: number, unitAxis: number): number | undefined {
  if (rank === 3 && unitAxis === 2) return 1;
  if (rank === 4 && unitAxis === 1) return 2;
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
