/**
 * Which values are channel-first maps ([batch, channels, ...spatial]): the outputs of
 * convolutions, pooling and per-channel normalization, and of the ops that keep their layout
 * (activations, elementwise arithmetic, padding, resizing, channel concatenation) applied to one.
 * Their units are channels (axis 1), whatever their rank: a Conv1d's [batch, channels, length]
 * too, which the rank rule alone would read as [batch, seq, d].
 */
import type { NodeProto } from '../onnx/proto.ts';
import type { GraphIndex } from './graph.ts';

/** Ops whose output is a channel-first map whenever they run on one (ai.onnx conv-family semantics). */
const CHANNEL_MAP_OPS = new Set([
  'Conv',
  'ConvTranspose',
  'ConvInteger',
  'QLinearConv',
  'MaxPool',
  'AveragePool',
  'LpPool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'GlobalLpPool',
  'BatchNormalization',
  'InstanceNormalization',
  'GroupNormalization',
  'LRN',
  'MaxUnpool',
  'DepthToSpace',
  'SpaceToDepth',
]);

/** Ops that keep their data input's layout: a channel map in, a channel map out. */
const LAYOUT_KEEPING_OPS = new Set([
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Elu',
  'Selu',
  'Celu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Softplus',
  'Softsign',
  'Mish',
  'Gelu',
  'Erf',
  'Exp',
  'Log',
  'Abs',
  'Neg',
  'Sqrt',
  'Reciprocal',
  'Clip',
  'Identity',
  'Dropout',
  'Cast',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Sin',
  'Cos',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Max',
  'Min',
  'Sum',
  'Mean',
  'Where',
  'Pad',
  'Resize',
  'Upsample',
  'Slice',
]);

export function channelMapValues(graph: GraphIndex): Set<string> {
  const maps = new Set<string>();
  for (const node of graph.nodes) {
    if (makesChannelMap(node, maps))
      for (const output of node.output.slice(0, 1)) if (output) maps.add(output);
  }
  return maps;
}

function makesChannelMap(node: NodeProto, maps: ReadonlySet<string>): boolean {
  if (CHANNEL_MAP_OPS.has(node.opType)) return true;
  const readsMap = node.input.some((input) => maps.has(input));
  if (node.opType === 'Concat') return readsMap && concatAxis(node) === 1;
  return readsMap && LAYOUT_KEEPING_OPS.has(node.opType);
}

function concatAxis(node: NodeProto): number | undefined {
  const axis = node.attribute.find((attribute) => attribute.name === 'axis')?.i;
  return axis === undefined || axis === null ? undefined : Number(axis);
}
