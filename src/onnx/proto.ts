/**
 * Decoding and encoding of ONNX ModelProto bytes with protobufjs and the schema in onnx.proto.
 *
 * The objects are protobufjs messages with camelCase field names (`opType`, `rawData`). int64
 * fields decode as `Long` so that values such as Slice's INT64_MAX survive a round trip; read
 * them as numbers with `toNumber`. The interfaces below list the fields teardown reads or
 * writes; every other field of the spec is still carried through untouched.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import Long from 'long';

export type Int64 = number | Long;

export interface StringEntry { key: string; value: string }

export interface TensorProto {
  name: string;
  dims: Int64[];
  dataType: number;
  rawData?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: Int64[];
  doubleData: number[];
  uint64Data: Int64[];
  stringData: Uint8Array[];
  externalData: StringEntry[];
  dataLocation?: number;
  docString?: string;
}

export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
}

export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
  docString?: string;
  metadataProps: StringEntry[];
}

export interface DimensionProto { dimValue?: Int64; dimParam?: string }

export interface TypeProto {
  tensorType?: { elemType: number; shape?: { dim: DimensionProto[] } };
  value?: string;
}

export interface ValueInfoProto { name: string; type?: TypeProto; docString?: string }

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  sparseInitializer: unknown[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  docString?: string;
  metadataProps: StringEntry[];
}

export interface OperatorSetId { domain: string; version: Int64 }

export interface ModelProto {
  irVersion: Int64;
  opsetImport: OperatorSetId[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: Int64;
  docString: string;
  graph: GraphProto;
  metadataProps: StringEntry[];
  functions: unknown[];
}

/** ONNX TensorProto.DataType codes teardown knows by name. */
export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16,
} as const;

export const AttributeType = {
  FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10,
} as const;

const schemaText = readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8');
const root = protobuf.parse(schemaText, { keepCase: false }).root;
const ModelProtoType = root.lookupType('onnx.ModelProto');
const TensorProtoType = root.lookupType('onnx.TensorProto');

/** Decode ModelProto bytes; throws protobufjs' own error on malformed bytes (the caller words it). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return ModelProtoType.decode(bytes) as unknown as ModelProto;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return ModelProtoType.encode(model as unknown as protobuf.Message).finish();
}

/** A TensorProto with every repeated field present, so code can rely on the arrays. */
export function makeTensorProto(fields: Partial<TensorProto> & { name: string; dataType: number; dims: Int64[] }): TensorProto {
  return TensorProtoType.create(fields) as unknown as TensorProto;
}

export function toNumber(value: Int64 | undefined | null): number {
  if (value === undefined || value === null) return 0;
  return typeof value === 'number' ? value : Long.fromValue(value).toNumber();
}
