/**
 * teardown's tensor: a dtype, dims and a flat C-order typed array. It is the currency between
 * files (.npy), graphs (initializers) and onnxruntime (only runtime/ converts to ORT's own).
 */
import { InputError } from './errors.ts';

export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'bool';

export type TensorData =
  Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export interface Tensor {
  dtype: DType;
  dims: number[];
  data: TensorData;
}

/** Named tensors fed to (or returned by) a model run. */
export type Feeds = Record<string, Tensor>;

export const DTYPES: readonly DType[] = [
  'float32',
  'float64',
  'int32',
  'int64',
  'uint8',
  'int8',
  'bool',
];

/** Bytes one value of each dtype takes (in a typed array, a .npy file or ONNX raw_data). */
export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int64: 8,
  uint8: 1,
  int8: 1,
  bool: 1,
};

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((count, dim) => count * dim, 1);
}

/** A zero-filled array of the dtype's storage type (bool is stored as one byte per element). */
export function allocate(dtype: DType, length: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'uint8':
    case 'bool':
      return new Uint8Array(length);
    case 'int8':
      return new Int8Array(length);
  }
}

export function tensor(dtype: DType, dims: number[], data?: TensorData | number[]): Tensor {
  const length = elementCount(dims);
  let storage: TensorData;
  if (data === undefined) storage = allocate(dtype, length);
  else if (Array.isArray(data)) {
    storage = allocate(dtype, length);
    if (storage instanceof BigInt64Array)
      data.forEach((value, index) => {
        storage[index] = BigInt(value);
      });
    else (storage as Float32Array).set(data);
  } else storage = data;
  if (storage.length !== length) {
    throw new InputError(
      `A ${dtype} tensor of shape [${dims}] needs ${length} values, got ${storage.length}.`,
    );
  }
  return { dtype, dims: [...dims], data: storage };
}

export function floatTensor(dims: number[], data?: Float32Array | number[]): Tensor {
  return tensor('float32', dims, data);
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** Rows [start, end) along the first axis, sharing no memory with `t`. */
export function sliceRows(t: Tensor, start: number, end: number): Tensor {
  const rowSize = elementCount(t.dims.slice(1));
  return {
    dtype: t.dtype,
    dims: [end - start, ...t.dims.slice(1)],
    data: t.data.slice(start * rowSize, end * rowSize),
  };
}

/** Concatenate tensors of equal dtype and trailing dims along the first axis. */
export function concatRows(parts: readonly Tensor[]): Tensor {
  const [first] = parts;
  const rows = parts.reduce((count, part) => count + part.dims[0], 0);
  const out = allocate(first.dtype, rows * elementCount(first.dims.slice(1)));
  let offset = 0;
  for (const part of parts) {
    (out as Float32Array).set(part.data as Float32Array, offset);
    offset += part.data.length;
  }
  return { dtype: first.dtype, dims: [rows, ...first.dims.slice(1)], data: out };
}

/**
 * Tensors of one dtype and shape stacked along a new first axis: n × [...] → [n, ...]; written
 * into `into` when it has that dtype and shape (a buffer reused from run to run).
 */
export function stack(parts: readonly Tensor[], into?: Tensor): Tensor {
  const [first] = parts;
  const mismatch = parts.find(
    (part) => part.dtype !== first.dtype || shapeString(part.dims) !== shapeString(first.dims),
  );
  if (mismatch)
    throw new Error(
      `stack: ${mismatch.dtype} ${shapeString(mismatch.dims)} does not match ${first.dtype} ${shapeString(first.dims)}`,
    );
  const dims = [parts.length, ...first.dims];
  const out =
    into && into.dtype === first.dtype && shapeString(into.dims) === shapeString(dims)
      ? into
      : tensor(first.dtype, dims);
  parts.forEach((part, k) =>
    (out.data as Float32Array).set(part.data as Float32Array, k * part.data.length),
  );
  return out;
}

/** Entry i along the first axis, without that axis; shares memory with `t`. */
export function unstack(t: Tensor, i: number): Tensor {
  const size = elementCount(t.dims.slice(1));
  return { dtype: t.dtype, dims: t.dims.slice(1), data: t.data.subarray(i * size, (i + 1) * size) };
}

/** `t` with axis `from` moved to position `to`, the other axes keeping their order (a copy). */
export function moveAxis(t: Tensor, from: number, to: number): Tensor {
  if (from === to) return t;
  const order = t.dims.map((_, axis) => axis).filter((axis) => axis !== from);
  order.splice(to, 0, from);
  const dims = order.map((axis) => t.dims[axis]);
  const strides = t.dims.map((_, axis) => elementCount(t.dims.slice(axis + 1)));
  const out = allocate(t.dtype, t.data.length) as Float32Array;
  const source = t.data as Float32Array;
  const index = new Array(dims.length).fill(0);
  let offset = 0;
  for (let flat = 0; flat < out.length; flat++) {
    out[flat] = source[offset];
    // Odometer over the output's axes, stepping the source offset by the matching source stride.
    for (let axis = dims.length - 1; axis >= 0; axis--) {
      index[axis]++;
      offset += strides[order[axis]];
      if (index[axis] < dims[axis]) break;
      offset -= strides[order[axis]] * dims[axis];
      index[axis] = 0;
    }
  }
  return { dtype: t.dtype, dims, data: out };
}

/** `times` copies of `t` stacked along the first axis: [n, ...] → [times·n, ...]. */
export function repeatRows(t: Tensor, times: number): Tensor {
  return concatRows(Array.from({ length: times }, () => t));
}

export function shapeString(dims: readonly (number | string)[]): string {
  return `[${dims.join(', ')}]`;
}

/** Largest |a − b| divided by the largest |b|: the "relative error" the fixture tests use. */
export function relativeError(actual: Tensor, expected: Tensor): number {
  let maxDiff = 0;
  let maxExpected = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const e = Number(expected.data[i]);
    maxDiff = Math.max(maxDiff, Math.abs(Number(actual.data[i]) - e));
    maxExpected = Math.max(maxExpected, Math.abs(e));
  }
  return maxExpected === 0 ? maxDiff : maxDiff / maxExpected;
}

/** Rows [start, end) of every feed. */
export function sliceFeeds(feeds: Feeds, start: number, end: number): Feeds {
  return Object.fromEntries(
    Object.entries(feeds).map(([name, value]) => [name, sliceRows(value, start, end)]),
  );
}
