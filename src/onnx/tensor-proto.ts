/** Conversion between ONNX TensorProto (initializers, Constant values) and teardown tensors. */
import { ModelError } from '../errors.ts';
import { allocate, BYTES_PER_ELEMENT, elementCount, type DType, type Tensor } from '../tensor.ts';
import { DataType, makeTensorProto, toNumber, type TensorProto } from './proto.ts';

const DTYPE_OF_CODE: Record<number, DType> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.BOOL]: 'bool',
};

const CODE_OF_DTYPE: Record<DType, number> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  int32: DataType.INT32,
  int64: DataType.INT64,
  uint8: DataType.UINT8,
  int8: DataType.INT8,
  bool: DataType.BOOL,
};

const NAME_OF_CODE = Object.fromEntries(
  Object.entries(DataType).map(([name, code]) => [code, name.toLowerCase()]),
);

/** The teardown dtype of an ONNX element type, or undefined for those teardown does not compute with (float16, string...). */
export function dtypeOfCode(code: number): DType | undefined {
  return DTYPE_OF_CODE[code];
}

export function codeOfDtype(dtype: DType): number {
  return CODE_OF_DTYPE[dtype];
}

/** A readable element type name for any ONNX code ('float32', 'float16', 'string', ...). */
export function elementTypeName(code: number): string {
  return DTYPE_OF_CODE[code] ?? NAME_OF_CODE[code] ?? `type ${code}`;
}

/** The values of an in-file TensorProto (external data must already be resolved). */
export function tensorFromProto(proto: TensorProto): Tensor {
  const dtype = dtypeOfCode(proto.dataType);
  if (!dtype) {
    throw new ModelError(
      `Tensor '${proto.name}' has element type ${elementTypeName(proto.dataType)}, which teardown cannot read: it reads ${Object.values(DTYPE_OF_CODE).join(', ')}.`,
    );
  }
  const dims = proto.dims.map(toNumber);
  const length = elementCount(dims);
  requireStoredValues(proto, dtype, dims);
  const data = allocate(dtype, length);
  if (proto.rawData && proto.rawData.length > 0) {
    // raw_data is little-endian, as is every platform Node runs on: copy the bytes into aligned storage.
    new Uint8Array(data.buffer).set(proto.rawData.subarray(0, data.byteLength));
  } else if (dtype === 'int64') {
    proto.int64Data.forEach((value, index) => {
      (data as BigInt64Array)[index] = BigInt(toNumber(value));
    });
  } else if (dtype === 'float32') {
    (data as Float32Array).set(proto.floatData);
  } else if (dtype === 'float64') {
    (data as Float64Array).set(proto.doubleData);
  } else {
    // int32, uint8, int8 and bool are all stored in int32_data.
    (data as Int32Array).set(proto.int32Data);
  }
  return { dtype, dims, data };
}

/**
 * Refuses a tensor whose dims are not sizes or whose stored values are not as many as its dims
 * say: a damaged or cut file would otherwise read as zeros past its end, or allocate whatever its
 * dims claim (2^63 − 1 elements) before anything is read.
 */
function requireStoredValues(proto: TensorProto, dtype: DType, dims: readonly number[]): void {
  const fix = 'the file is damaged or cut short: export the model again';
  if (dims.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) {
    const what = `Tensor '${proto.name}' has dims [${dims.join(', ')}]`;
    throw new ModelError(`${what}, which are not sizes: ${fix}.`);
  }
  const length = elementCount(dims);
  const rawBytes = proto.rawData?.length ?? 0;
  const bytesPerValue = BYTES_PER_ELEMENT[dtype];
  const stored = rawBytes > 0 ? rawBytes / bytesPerValue : typedValues(proto, dtype).length;
  if (stored === length) return;
  const expected = `${length * bytesPerValue} expected`;
  const held = rawBytes > 0 ? `${rawBytes} bytes of raw_data (${expected})` : `${stored} values`;
  const what = `Tensor '${proto.name}' is ${dtype} [${dims.join(', ')}] (${length} values)`;
  throw new ModelError(`${what} but holds ${held}: ${fix}.`);
}

/** The typed field ONNX stores a dtype's values in when there is no raw_data. */
function typedValues(proto: TensorProto, dtype: DType): ArrayLike<unknown> {
  if (dtype === 'int64') return proto.int64Data;
  if (dtype === 'float32') return proto.floatData;
  if (dtype === 'float64') return proto.doubleData;
  return proto.int32Data; // int32, uint8, int8 and bool
}

/** A TensorProto holding `tensor` in raw_data. */
export function tensorToProto(name: string, tensor: Tensor): TensorProto {
  const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return makeTensorProto({
    name,
    dataType: codeOfDtype(tensor.dtype),
    dims: tensor.dims,
    rawData: bytes.slice(),
  });
}
