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

export interface StringEntry {
  key: string;
  value: string;
}

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

export interface DimensionProto {
  dimValue?: Int64;
  dimParam?: string;
}

export interface TypeProto {
  tensorType?: { elemType: number; shape?: { dim: DimensionProto[] } };
  value?: string;
}

export interface ValueInfoProto {
  name: string;
  type?: TypeProto;
  docString?: string;
}

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

export interface OperatorSetId {
  domain: string;
  version: Int64;
}

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
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

const schemaText = readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8');
const root = protobuf.parse(schemaText, { keepCase: false }).root;
const ModelProtoType = root.lookupType('onnx.ModelProto');
const TensorProtoType = root.lookupType('onnx.TensorProto');

/** Decode ModelProto bytes; throws protobufjs' own error on malformed bytes (the caller words it). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return ModelProtoType.decode(bytes) as unknown as ModelProto;
}

const GraphProtoType = root.lookupType('onnx.GraphProto');

/** Where an initializer's raw data lies in a file: onnxruntime's external data (location relative to the folder it is given). */
export interface ExternalRegion {
  location: string;
  offset: number;
  length: number;
}

/**
 * The model's bytes, with each initializer's raw data copied once, straight into place: protobufjs
 * copies bytes fields twice (into its writer, then into the result), which cost 1.1 s for every
 * session made of a GPT-2-small (650 MB). The bytes are protobufjs' own (fields in number order):
 * each message is encoded in the parts before and after the field spliced in by hand.
 *
 * `external` may place an initializer in a file instead: it is then written without its raw data,
 * as external data at that region (TensorProto.data_location = EXTERNAL).
 */
export function encodeModel(
  model: ModelProto,
  external?: (tensor: TensorProto) => ExternalRegion | undefined,
): Uint8Array {
  const parts: Uint8Array[] = [];
  const [graphBefore, graphAfter] = encodeAround(GraphProtoType, model.graph, INITIALIZER_FIELD);
  parts.push(graphBefore);
  for (const tensor of model.graph.initializer) {
    const region = external?.(tensor);
    parts.push(...(region ? externalInitializerParts(tensor, region) : initializerParts(tensor)));
  }
  parts.push(graphAfter);
  const [modelBefore, modelAfter] = encodeAround(ModelProtoType, model, GRAPH_FIELD);
  return concatBytes([
    modelBefore,
    delimiter(GRAPH_FIELD, byteLength(parts)),
    ...parts,
    modelAfter,
  ]);
}

const GRAPH_FIELD = 7; // ModelProto.graph
const INITIALIZER_FIELD = 5; // GraphProto.initializer
const RAW_DATA_FIELD = 9; // TensorProto.raw_data

/** One GraphProto.initializer entry: tag and length, the tensor's fields, its raw data in place. */
function initializerParts(tensor: TensorProto): Uint8Array[] {
  const [before, after] = encodeAround(TensorProtoType, tensor, RAW_DATA_FIELD);
  const rawData = tensor.rawData; // read once: it may come from a file
  const raw = rawData?.length ? [delimiter(RAW_DATA_FIELD, rawData.length), rawData] : [];
  const body = [before, ...raw, after];
  return [delimiter(INITIALIZER_FIELD, byteLength(body)), ...body];
}

/** One GraphProto.initializer entry whose data lies in a file: no raw data, its location, offset and length. */
function externalInitializerParts(tensor: TensorProto, region: ExternalRegion): Uint8Array[] {
  const externalData = [
    ['location', region.location],
    ['offset', String(region.offset)],
    ['length', String(region.length)],
  ].map(([key, value]) => ({ key, value }));
  const [before, after] = encodeAround(
    TensorProtoType,
    { ...withoutRawData(tensor), externalData, dataLocation: EXTERNAL },
    RAW_DATA_FIELD,
  );
  const body = concatBytes([before, after]);
  return [delimiter(INITIALIZER_FIELD, body.length), body];
}

const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL

/** The tensor's fields but its raw data, without reading that (it may come from a file). */
function withoutRawData(tensor: TensorProto): Record<string, unknown> {
  const fields = tensor as unknown as Record<string, unknown>;
  return Object.fromEntries(
    TensorProtoType.fieldsArray
      .filter((entry) => entry.id !== RAW_DATA_FIELD && Object.hasOwn(fields, entry.name))
      .map((entry) => [entry.name, fields[entry.name]]),
  );
}

/**
 * The message's fields numbered below `field`, and those above it, each encoded by protobufjs. The
 * field itself is never read: it may be a property that reads a weight from a file (runtime/weight-file.ts).
 */
function encodeAround(
  type: protobuf.Type,
  message: object,
  field: number,
): [Uint8Array, Uint8Array] {
  const fields = message as Record<string, unknown>;
  const pick = (keep: (id: number) => boolean) =>
    Object.fromEntries(
      type.fieldsArray
        .filter((entry) => keep(entry.id) && Object.hasOwn(fields, entry.name))
        .map((entry) => [entry.name, fields[entry.name]]),
    );
  return [
    type.encode(pick((id) => id < field)).finish(),
    type.encode(pick((id) => id > field)).finish(),
  ];
}

/** The tag and length that open a length-delimited field. */
function delimiter(field: number, length: number): Uint8Array {
  return protobuf.Writer.create()
    .uint32((field << 3) | 2)
    .uint32(length)
    .finish();
}

function byteLength(parts: readonly Uint8Array[]): number {
  return parts.reduce((sum, part) => sum + part.length, 0);
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(byteLength(parts));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

/** A TensorProto with every repeated field present, so code can rely on the arrays. */
export function makeTensorProto(
  fields: Partial<TensorProto> & { name: string; dataType: number; dims: Int64[] },
): TensorProto {
  return TensorProtoType.create(fields) as unknown as TensorProto;
}

export function toNumber(value: Int64 | undefined | null): number {
  if (value === undefined || value === null) return 0;
  return typeof value === 'number' ? value : Long.fromValue(value).toNumber();
}
