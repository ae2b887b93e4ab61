/**
 * The library's tensor: teardown's `{ dtype, dims, data }` (src/tensor.ts) with the reading
 * methods an analysis needs — `select`, `slice`, `mean`, `at`, `toArray`, `toNpy` — and
 * conversions to and from `Float32Array` and onnxruntime's `Tensor` that wrap the same buffer.
 *
 *   const mlp = cache.get('blocks.0.mlp');                 // [batch, seq, d_model]
 *   mlp.select(0, 0).select(0, -1);                    // [d_model]: example 0, last position
 *   mlp.mean(0);                                       // [seq, d_model]: the mean over examples
 */
import { encodeNpy } from '../data/npy.ts';
import { InputError } from '../errors.ts';
import { fromOrt, toOrt, type OrtTensor } from '../runtime/session.ts';
import {
  elementCount,
  shapeString,
  tensor as makeTensor,
  type DType,
  type Tensor as TensorLike,
  type TensorData,
} from '../tensor.ts';

export type { DType, TensorData, TensorLike, OrtTensor };

/** Nested arrays of numbers, one level per axis (a number for a scalar). */
export type NestedArray = number | NestedArray[];

export class Tensor implements TensorLike {
  readonly dtype: DType;
  readonly dims: number[];
  /** The values in C order; shared, never copied, with whatever the tensor was made from. */
  readonly data: TensorData;

  constructor(dtype: DType, dims: readonly number[], data: TensorData) {
    const checked = makeTensor(dtype, [...dims], data);
    this.dtype = checked.dtype;
    this.dims = checked.dims;
    this.data = checked.data;
  }

  /**
   * A tensor over the same buffer as `value`: a teardown tensor, onnxruntime's `Tensor`, or a
   * typed array with its `dims` (a flat vector when omitted).
   */
  static from(value: TensorLike | OrtTensor | TensorData, dims?: readonly number[]): Tensor {
    if (value instanceof Tensor) return value;
    if (ArrayBuffer.isView(value))
      return new Tensor(dtypeOfArray(value), dims ?? [value.length], value);
    if (isOrtTensor(value)) return Tensor.from(fromOrt('tensor', value));
    return new Tensor(value.dtype, value.dims, value.data);
  }

  /** A float32 tensor of `dims` holding `values` (a copy, since a number[] is not a typed array). */
  static fromNumbers(values: readonly number[], dims: readonly number[] = [values.length]): Tensor {
    return new Tensor('float32', dims, Float32Array.from(values));
  }

  get rank(): number {
    return this.dims.length;
  }
  get size(): number {
    return this.data.length;
  }

  /** The value at one index per axis (negative indices count from the end). */
  at(...indices: number[]): number {
    if (indices.length !== this.rank)
      throw new InputError(
        `at() takes ${this.rank} indices for a tensor of shape ${shapeString(this.dims)}, got ${indices.length}.`,
      );
    let flat = 0;
    indices.forEach((index, axis) => {
      flat = flat * this.dims[axis] + resolveIndex(index, this.dims[axis], axis, this.dims);
    });
    return Number(this.data[flat]);
  }

  /** Entry `index` of `axis`, that axis removed: [a, b, c].select(1, i) → [a, c] (a copy). */
  select(axis: number, index: number): Tensor {
    const resolvedAxis = resolveAxis(axis, this.dims);
    const start = resolveIndex(index, this.dims[resolvedAxis], resolvedAxis, this.dims);
    const taken = this.slice(resolvedAxis, start, start + 1);
    return new Tensor(
      this.dtype,
      this.dims.filter((_, a) => a !== resolvedAxis),
      taken.data,
    );
  }

  /** Entries [start, end) of `axis` (negative counts from the end; end defaults to the axis's size), a copy. */
  slice(axis: number, start: number, end?: number): Tensor {
    const resolvedAxis = resolveAxis(axis, this.dims);
    const size = this.dims[resolvedAxis];
    const from = clampBound(start, size);
    const to = Math.max(from, clampBound(end ?? size, size));
    const outer = elementCount(this.dims.slice(0, resolvedAxis));
    const inner = elementCount(this.dims.slice(resolvedAxis + 1));
    const dims = this.dims.map((dim, a) => (a === resolvedAxis ? to - from : dim));
    const out = new (this.data.constructor as new (length: number) => TensorData)(
      elementCount(dims),
    ) as Float32Array;
    for (let o = 0; o < outer; o++) {
      out.set(
        (this.data as Float32Array).subarray((o * size + from) * inner, (o * size + to) * inner),
        o * (to - from) * inner,
      );
    }
    return new Tensor(this.dtype, dims, out);
  }

  /** The mean over `axis`, that axis removed, or over every value (a scalar) without one; summed in float64. */
  mean(axis?: number): Tensor {
    const outDtype: DType = this.dtype === 'float32' ? 'float32' : 'float64';
    if (axis === undefined) {
      let sum = 0;
      for (let i = 0; i < this.size; i++) sum += Number(this.data[i]);
      return new Tensor(
        outDtype,
        [],
        outDtype === 'float32'
          ? Float32Array.of(sum / this.size)
          : Float64Array.of(sum / this.size),
      );
    }
    const resolvedAxis = resolveAxis(axis, this.dims);
    const size = this.dims[resolvedAxis];
    const outer = elementCount(this.dims.slice(0, resolvedAxis));
    const inner = elementCount(this.dims.slice(resolvedAxis + 1));
    const sums = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < size; k++) {
        const base = (o * size + k) * inner;
        for (let i = 0; i < inner; i++) sums[o * inner + i] += Number(this.data[base + i]);
      }
    }
    const means = sums.map((sum) => sum / size);
    return new Tensor(
      outDtype,
      this.dims.filter((_, a) => a !== resolvedAxis),
      outDtype === 'float32' ? Float32Array.from(means) : means,
    );
  }

  /** A new tensor of the same dtype and dims holding f(value) for every value (float and small integer dtypes). */
  map(f: (value: number, index: number) => number): Tensor {
    if (this.data instanceof BigInt64Array)
      throw new InputError(
        `map() works on numbers; this tensor holds int64 values: convert them with toArray() first.`,
      );
    return new Tensor(this.dtype, this.dims, (this.data as Float32Array).map(f));
  }

  /** The values as nested arrays of numbers (int64 values converted to numbers). */
  toArray(): NestedArray {
    const build = (axis: number, offset: number): NestedArray => {
      if (axis === this.rank) return Number(this.data[offset]);
      const stride = elementCount(this.dims.slice(axis + 1));
      return Array.from({ length: this.dims[axis] }, (_, k) =>
        build(axis + 1, offset + k * stride),
      );
    };
    return build(0, 0);
  }

  /** The same buffer when the tensor is float32; otherwise a float32 copy. */
  toFloat32Array(): Float32Array {
    if (this.data instanceof Float32Array) return this.data;
    return Float32Array.from(this.data as ArrayLike<number | bigint>, Number);
  }

  /** onnxruntime's `Tensor` over the same buffer. */
  toOrt(): OrtTensor {
    return toOrt(this);
  }

  /** The bytes of a .npy file holding this tensor (numpy.load reads it). */
  toNpy(): Uint8Array {
    return encodeNpy(this);
  }

  toString(): string {
    return `Tensor(${this.dtype} ${shapeString(this.dims)})`;
  }
}

function isOrtTensor(value: unknown): value is OrtTensor {
  const candidate = value as OrtTensor;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.type === 'string' &&
    Array.isArray(candidate.dims) &&
    'data' in candidate &&
    !('dtype' in candidate)
  );
}

function dtypeOfArray(array: ArrayBufferView): DType {
  if (array instanceof Float32Array) return 'float32';
  if (array instanceof Float64Array) return 'float64';
  if (array instanceof Int32Array) return 'int32';
  if (array instanceof BigInt64Array) return 'int64';
  if (array instanceof Uint8Array) return 'uint8';
  if (array instanceof Int8Array) return 'int8';
  throw new InputError(
    `A ${array.constructor.name} cannot be a tensor: use Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array or Int8Array.`,
  );
}

function resolveAxis(axis: number, dims: readonly number[]): number {
  const resolved = axis < 0 ? dims.length + axis : axis;
  if (!Number.isInteger(axis) || resolved < 0 || resolved >= dims.length) {
    throw new InputError(
      `Axis ${axis} does not exist in a tensor of shape ${shapeString(dims)}: use an axis from 0 to ${dims.length - 1} (or -1 for the last).`,
    );
  }
  return resolved;
}

function resolveIndex(index: number, size: number, axis: number, dims: readonly number[]): number {
  const resolved = index < 0 ? size + index : index;
  if (!Number.isInteger(index) || resolved < 0 || resolved >= size) {
    throw new InputError(
      `Index ${index} is out of range for axis ${axis} of a tensor of shape ${shapeString(dims)}: use 0 to ${size - 1} (or a negative index from the end).`,
    );
  }
  return resolved;
}

/** A slice bound as Python's: negative counts from the end, then clamped to [0, size]. */
function clampBound(bound: number, size: number): number {
  return Math.min(size, Math.max(0, bound < 0 ? size + bound : bound));
}
