/** Conversion between ONNX TensorProto (initializers, Constant values) and teardown tensors. */
import { ModelError } from '../errors.ts';
import { allocate, elementCount, type DType, type Tensor } from '../tensor.ts';
import { DataType, makeTensorProto, toNumber, type TensorProto } from './proto.ts';

const DTYPE_OF_CODE: Record<number, DType> = {
  [DataType.FLOAT]: 'float32', [DataType.DOUBLE]: 'float64', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64',
  [DataType.UINT8]: 'uint8', [DataType.INT8]: 'int8', [DataType.BOOL]: 'bool',
};

const CODE_OF_DTYPE: Record<DType, number> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, int32: DataType.INT32, int64: DataType.INT64,
  uint8: DataType.UINT8, int8: DataType.INT8, bool: DataType.BOOL,
};

const NAME_OF_CODE = Object.fromEntries(Object.entries(DataType).map(([name, code]) => [code, name.toLowerCase()]));

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
    throw new ModelError(`Tensor '${proto.name}' has element type ${elementTypeName(proto.dataType)}, which teardown cannot read: it reads ${Object.values(DTYPE_OF_CODE).join(', ')}.`);
  }
  const dims = proto.dims.map(toNumber);
  const length = elementCount(dims);
  const data = allocate(dtype, length);
  if (proto.rawData && proto.rawData.length > 0) {
    // raw_data is little-endian, as is every platform Node runs on: copy the bytes into aligned storage.
    new Uint8Array(data.buffer).set(proto.rawData.subarray(0, data.byteLength));
  } else if (dtype === 'int64') {
    proto.int64Data.forEach((value, index) => { (data as BigInt64Array)[index] = BigInt(toNumber(value)); });
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

/** A TensorProto holding `tensor` in raw_data. */
export function tensorToProto(name: string, tensor: Tensor): TensorProto {
  const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return makeTensorProto({ name, dataType: codeOfDtype(tensor.dtype), dims: tensor.dims, rawData: bytes.slice() });
}
