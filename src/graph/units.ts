import { moveAxis, type Tensor } from '../tensor.ts';

/**
 * The axes of a hook's value (docs/design.md): which holds the examples (the batch axis,
 * wherever the graph put it: ONNX LSTM's Y is [seq, dirs, batch, hidden]; none for values that
 * are the same for every example, such as a position table [seq, d]), which the units and which
 * the sequence positions.
 */

/**
 * Where a value holds its examples: the axis, and how many entries per example it has there
 * (k > 1 when the exporter merged the batch with another axis, e.g. [batch·heads, seq, d]);
 * `interleaved` when the other axis is the outer one ([seq·batch, d]: entry j·batch + b).
 */
export interface BatchLayout {
  axis: number;
  perExample: number;
  interleaved: boolean;
}

const BATCH_DIM = /^(?:batch(?:\*(\d+))?|(\d+)\*batch)$/;

/** The layout of the batch in probed dims ('batch', 'batch*k', or 'k*batch' when interleaved), if any. */
export function batchLayoutOf(dims: readonly (number | string)[]): BatchLayout | undefined {
  for (const [axis, dim] of dims.entries()) {
    const match = typeof dim === 'string' ? BATCH_DIM.exec(dim) : null;
    if (match)
      return {
        axis,
        perExample: Number(match[1] ?? match[2] ?? 1),
        interleaved: match[2] !== undefined,
      };
  }
  return undefined;
}

/** The axis whose size is the batch, if any. */
export function batchAxisOf(dims: readonly (number | string)[]): number | undefined {
  return batchLayoutOf(dims)?.axis;
}

/** The value with its examples first, each example's k entries together: [examples·k, ...other axes]. */
export function examplesFirst(value: Tensor, layout: BatchLayout): Tensor {
  const front = moveAxis(value, layout.axis, 0);
  if (!layout.interleaved) return front;
  // [k·batch, ...] read as [k, batch, ...] → [batch, k, ...] → [batch·k, ...]
  const [size, ...rest] = front.dims;
  const split = moveAxis(
    { ...front, dims: [layout.perExample, size / layout.perExample, ...rest] },
    1,
    0,
  );
  return { ...split, dims: [size, ...rest] };
}

/** The inverse of examplesFirst: examples-first entries back into the value's own layout. */
export function fromExamplesFirst(rows: Tensor, layout: BatchLayout): Tensor {
  let front = rows;
  if (layout.interleaved) {
    const [size, ...rest] = rows.dims;
    const split = moveAxis(
      { ...rows, dims: [size / layout.perExample, layout.perExample, ...rest] },
      1,
      0,
    );
    front = { ...split, dims: [size, ...rest] };
  }
  return moveAxis(front, 0, layout.axis);
}

/**
 * The unit axis: axis 1 of batch-first channel maps (conv channels [batch, channels, ...], a
 * Conv1d's [batch, channels, length] included) and of other batch-first values of rank 4 or more
 * (attention heads [batch, heads, query, key]); otherwise the last axis (dense and sequence values
 * [batch, d], [batch, seq, d], [seq, batch, d], LSTM's [seq, dirs, batch, hidden]).
 */
export function defaultUnitAxis(
  rank: number,
  batchAxis: number | undefined = 0,
  channelMap = false,
): number {
  if (rank <= 1) return 0;
  if (batchAxis === 0 && (rank >= 4 || (channelMap && rank === 3))) return 1;
  return rank - 1;
}

/** The default unit axis of a hook's value of the given rank (channel maps: graph/channel-maps.ts). */
export function unitAxisOf(
  hook: { channelMap?: boolean } | undefined,
  rank: number,
  batchAxis: number | undefined = 0,
): number {
  return defaultUnitAxis(rank, batchAxis, hook?.channelMap ?? false);
}

/**
 * The sequence-position axis: the axis that is neither batch nor unit in a sequence value
 * ([batch, seq, d] → 1, [seq, batch, d] → 0, a position table [seq, d] → 0), the query axis of
 * [batch, heads, query, key] (2); none otherwise.
 */
export function positionAxis(
  rank: number,
  unitAxis: number,
  batchAxis: number | undefined = 0,
): number | undefined {
  if (rank === 4 && batchAxis === 0 && unitAxis === 1) return 2;
  if (unitAxis !== rank - 1) return undefined;
  if (rank === 3 && batchAxis !== undefined && batchAxis < 2) return 1 - batchAxis;
  if (rank === 2 && batchAxis === undefined) return 0;
  return undefined;
}

/**
 * Symbolic dims from probing at batch 1 and 2: 'batch' where the size grew from 1 to 2, and
 * where it grew from k to 2k, 'batch*k' or, when `interleaved(axis)` says the first example's
 * entries are every other one, 'k*batch'.
 */
export function symbolicDims(
  atOne: readonly number[],
  atTwo: readonly number[],
  interleaved: (axis: number) => boolean = () => false,
): (number | string)[] {
  return atOne.map((size, axis) => {
    if (atTwo[axis] === size) return size;
    if (atTwo[axis] !== 2 * size) return '?';
    if (size === 1) return 'batch';
    return interleaved(axis) ? `${size}*batch` : `batch*${size}`;
  });
}

/** Concrete dims of symbolic ones at a batch size. */
export function dimsAtBatch(dims: readonly (number | string)[], batch: number): number[] {
  return dims.map((dim) => {
    if (typeof dim === 'number') return dim;
    const match = BATCH_DIM.exec(dim);
    return match ? batch * Number(match[1] ?? match[2] ?? 1) : -1;
  });
}
