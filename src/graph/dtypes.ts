/**
 * Element types of every value, inferred statically: graph inputs, initializers and value_info
 * say theirs; a node's outputs follow the rule of its op. Exporters rarely write value_info for
 * intermediate values, and hooks must know which values are float before anything runs.
 */
import { toNumber, type NodeProto, type AttributeProto } from '../onnx/proto.ts';
import { DataType } from '../onnx/proto.ts';

type OutputTypeRule = (
  inputTypes: (number | undefined)[],
  node: NodeProto,
) => (number | undefined)[];

const attribute = (node: NodeProto, name: string): AttributeProto | undefined =>
  node.attribute.find((a) => a.name === name);
const always =
  (code: number): OutputTypeRule =>
  (_, node) =>
    node.output.map(() => code);
const fromInput =
  (index: number): OutputTypeRule =>
  (types, node) =>
    node.output.map(() => types[index]);
const boolOut = always(DataType.BOOL);
const int64Out = always(DataType.INT64);

/** Ops whose outputs do not simply take the first input's type. */
const OUTPUT_TYPE_RULES: Record<string, OutputTypeRule> = {
  Shape: int64Out,
  Size: int64Out,
  NonZero: int64Out,
  ArgMax: int64Out,
  ArgMin: int64Out,
  Equal: boolOut,
  Less: boolOut,
  LessOrEqual: boolOut,
  Greater: boolOut,
  GreaterOrEqual: boolOut,
  Not: boolOut,
  And: boolOut,
  Or: boolOut,
  Xor: boolOut,
  IsNaN: boolOut,
  IsInf: boolOut,
  Cast: (_, node) => [toNumber(attribute(node, 'to')?.i)],
  CastLike: fromInput(1),
  Where: fromInput(1),
  Constant: (_, node) => [constantType(node)],
  ConstantOfShape: (_, node) => [attribute(node, 'value')?.t?.dataType ?? DataType.FLOAT],
  EyeLike: (types, node) => [
    attribute(node, 'dtype') ? toNumber(attribute(node, 'dtype')?.i) : types[0],
  ],
  RandomNormal: (_, node) => [
    attribute(node, 'dtype') ? toNumber(attribute(node, 'dtype')?.i) : DataType.FLOAT,
  ],
  RandomUniform: (_, node) => [
    attribute(node, 'dtype') ? toNumber(attribute(node, 'dtype')?.i) : DataType.FLOAT,
  ],
  // Second outputs that are indices or masks.
  TopK: (types) => [types[0], DataType.INT64],
  MaxPool: (types, node) =>
    node.output.map((_, index) => (index === 0 ? types[0] : DataType.INT64)),
  Dropout: (types, node) => node.output.map((_, index) => (index === 0 ? types[0] : DataType.BOOL)),
  Unique: (types, node) => node.output.map((_, index) => (index === 0 ? types[0] : DataType.INT64)),
  Gather: fromInput(0),
  GatherElements: fromInput(0),
  GatherND: fromInput(0),
  QuantizeLinear: (types) => [types[2] ?? DataType.UINT8],
  DequantizeLinear: always(DataType.FLOAT),
  DynamicQuantizeLinear: always(DataType.UINT8),
};

function constantType(node: NodeProto): number | undefined {
  const [value] = node.attribute;
  if (!value) return undefined;
  if (value.t) return value.t.dataType;
  if (value.name === 'value_float' || value.name === 'value_floats') return DataType.FLOAT;
  if (value.name === 'value_int' || value.name === 'value_ints') return DataType.INT64;
  if (value.name === 'value_string' || value.name === 'value_strings') return DataType.STRING;
  return undefined;
}

/** Extends `known` (value → ONNX element type) with the outputs of `nodes`, in graph order. */
export function inferElementTypes(
  nodes: readonly NodeProto[],
  known: Map<string, number>,
): Map<string, number> {
  const types = new Map(known);
  for (const node of nodes) inferNodeOutputTypes(node, types);
  return types;
}

/** Adds the element types of `node`'s outputs to `types`, from its inputs' types and its op's rule. */
export function inferNodeOutputTypes(node: NodeProto, types: Map<string, number>): void {
  const inputTypes = node.input.map((name) => (name ? types.get(name) : undefined));
  const rule =
    OUTPUT_TYPE_RULES[node.opType] ??
    ((firstTypes, n) => n.output.map(() => firstTypes.find((t) => t !== undefined)));
  rule(inputTypes, node).forEach((code, index) => {
    const name = node.output[index];
    if (name && code !== undefined && !types.has(name)) types.set(name, code);
  });
}
