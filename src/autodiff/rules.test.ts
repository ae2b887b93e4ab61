/**
 * Every gradient rule against central finite differences, one line per case. In float64 where
 * onnxruntime's CPU build runs the op in float64; in float32 (with a looser tolerance) for ops
 * it runs in float32 only (Conv, ConvTranspose, pooling, Resize, Erf, Gelu, the trigonometric
 * ops, …; its float64 Shrink computes in float32). The loss is MSE against a fixed random target, so every output element matters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  float,
  GraphBuilder,
  int,
  ints,
  string as str,
  type AttributeValue,
} from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { seededRandom } from '../random.ts';
import { tensor, type DType, type Feeds, type Tensor } from '../tensor.ts';
import { computeGradients } from './gradients.ts';
import { checkAgainstFiniteDifferences } from '../../test/finite-differences.ts';
import { NO_GRADIENT, RULE_FAMILIES, RULES } from './rules/index.ts';
import { RECURRENT_RULES } from './recurrent.ts';

interface Operand {
  dims: number[];
  /** Fixed values (else seeded uniform in [-1, 1)); integer operands are constants. */
  values?: number[];
  dtype?: DType;
  /** A constant initializer rather than a differentiated input (default: floats are inputs). */
  constant?: boolean;
  /** Keep random values away from 0 (for Log, Sqrt, Div, Pow bases) or from kinks. */
  positive?: boolean;
}

interface Case {
  name: string;
  op: string;
  operands: Operand[];
  attrs?: Record<string, AttributeValue>;
  /** float32 only in onnxruntime's CPU build. */
  float32?: boolean;
  outputs?: number;
  /** The graph's opset, when the case needs one other than OPSET_FOR's or 17. */
  opset?: number;
  /** Combine several outputs into the scored one. */
  combine?: (g: GraphBuilder, outputs: string[]) => string;
}

const f = (dims: number[], extra: Partial<Operand> = {}): Operand => ({ dims, ...extra });
const i64 = (values: number[], dims = [values.length]): Operand => ({
  dims,
  values,
  dtype: 'int64',
  constant: true,
});
/** Constant float32 values (Resize's roi and scales); none gives an empty tensor, an input left out. */
const f32 = (values: number[] = []): Operand => ({
  dims: [values.length],
  values,
  dtype: 'float32',
  constant: true,
});

const CASES: Case[] = [
  { name: 'Add broadcast', op: 'Add', operands: [f([2, 3, 4]), f([3, 1])] },
  { name: 'Sub broadcast', op: 'Sub', operands: [f([4]), f([2, 3, 4])] },
  { name: 'Mul broadcast', op: 'Mul', operands: [f([2, 3, 4]), f([1, 4])] },
  { name: 'Div', op: 'Div', operands: [f([2, 3]), f([2, 3], { positive: true })] },
  { name: 'Neg', op: 'Neg', operands: [f([2, 3])] },
  { name: 'Pow (both)', op: 'Pow', operands: [f([2, 3], { positive: true }), f([2, 3])] },
  {
    name: 'Pow, constant exponent 2 (a variance), negative bases',
    op: 'Pow',
    operands: [f([2, 3]), f([], { values: [2], constant: true })],
  },
  { name: 'Sqrt', op: 'Sqrt', operands: [f([2, 3], { positive: true })] },
  { name: 'Exp', op: 'Exp', operands: [f([2, 3])] },
  { name: 'Log', op: 'Log', operands: [f([2, 3], { positive: true })] },
  { name: 'Erf', op: 'Erf', operands: [f([2, 3])], float32: true },
  { name: 'Tanh', op: 'Tanh', operands: [f([2, 3])] },
  { name: 'Sigmoid', op: 'Sigmoid', operands: [f([2, 3])] },
  { name: 'Relu', op: 'Relu', operands: [f([3, 4])] },
  { name: 'LeakyRelu', op: 'LeakyRelu', operands: [f([3, 4])], attrs: { alpha: float(0.2) } },
  { name: 'Gelu exact (opset 20)', op: 'Gelu', operands: [f([3, 4])], float32: true },
  {
    name: 'Gelu tanh (opset 20)',
    op: 'Gelu',
    operands: [f([3, 4])],
    attrs: { approximate: str('tanh') },
    float32: true,
  },
  {
    name: 'Clip',
    op: 'Clip',
    operands: [
      f([3, 4]),
      f([], { values: [-0.5], constant: true }),
      f([], { values: [0.5], constant: true }),
    ],
  },
  {
    name: 'Where',
    op: 'Where',
    operands: [
      { dims: [2, 3], values: [1, 0, 1, 0, 0, 1], dtype: 'bool', constant: true },
      f([2, 3]),
      f([3]),
    ],
  },
  { name: 'Identity', op: 'Identity', operands: [f([2, 3])] },
  { name: 'Dropout (inference)', op: 'Dropout', operands: [f([2, 3])] },
  {
    name: 'Cast to float32',
    op: 'Cast',
    operands: [f([2, 3])],
    attrs: { to: int(1) },
    float32: true,
  },
  { name: 'Expand', op: 'Expand', operands: [f([3, 1]), i64([2, 3, 4])] },
  { name: 'Softmax', op: 'Softmax', operands: [f([2, 3, 4])], attrs: { axis: int(1) } },
  { name: 'LogSoftmax', op: 'LogSoftmax', operands: [f([3, 5])] },
  {
    name: 'SoftmaxCrossEntropyLoss mean',
    op: 'SoftmaxCrossEntropyLoss',
    operands: [f([4, 5]), i64([1, 0, 4, 1])],
  },
  {
    name: 'SoftmaxCrossEntropyLoss sum',
    op: 'SoftmaxCrossEntropyLoss',
    operands: [f([4, 5]), i64([1, 0, 4, 1])],
    attrs: { reduction: str('sum') },
  },
  {
    name: 'SoftmaxCrossEntropyLoss none',
    op: 'SoftmaxCrossEntropyLoss',
    operands: [f([4, 5]), i64([1, 0, 4, 1])],
    attrs: { reduction: str('none') },
  },
  {
    name: 'SoftmaxCrossEntropyLoss mean, ignore_index',
    op: 'SoftmaxCrossEntropyLoss',
    operands: [f([4, 5]), i64([1, 3, 4, 3])],
    attrs: { ignore_index: int(3) },
  },
  {
    name: 'SoftmaxCrossEntropyLoss, loss and log_prob both scored',
    op: 'SoftmaxCrossEntropyLoss',
    operands: [f([3, 4]), i64([2, 0, 1])],
    outputs: 2,
    combine: (g, [loss, logProbabilities]) =>
      g.node('Add', [
        loss,
        g.node('ReduceSum', [g.node('Mul', [logProbabilities, logProbabilities])], {
          keepdims: int(0),
        }),
      ]),
  },
  {
    name: 'LayerNormalization',
    op: 'LayerNormalization',
    operands: [f([2, 3, 4]), f([4]), f([4])],
    attrs: { axis: int(-1), epsilon: float(1e-5) },
  },
  {
    name: 'LayerNormalization over 2 axes',
    op: 'LayerNormalization',
    operands: [f([2, 3, 4]), f([3, 4]), f([3, 4])],
    attrs: { axis: int(1) },
  },
  {
    name: 'BatchNormalization (inference)',
    op: 'BatchNormalization',
    operands: [
      f([2, 3, 2, 2]),
      f([3]),
      f([3]),
      f([3], { constant: true }),
      f([3], { constant: true, positive: true }),
    ],
  },
  {
    name: 'BatchNormalization (training mode, batch statistics)',
    op: 'BatchNormalization',
    operands: [
      f([4, 3, 2, 2]),
      f([3]),
      f([3]),
      f([3], { constant: true }),
      f([3], { constant: true, positive: true }),
    ],
    attrs: { training_mode: int(1), momentum: float(0) },
    outputs: 3,
    combine: (_, [y]) => y,
  },
  {
    name: 'BatchNormalization (training mode, momentum 0.9: running averages out, batch statistics recomputed)',
    op: 'BatchNormalization',
    operands: [
      f([4, 3, 2, 2]),
      f([3]),
      f([3]),
      f([3], { constant: true }),
      f([3], { constant: true, positive: true }),
    ],
    attrs: { training_mode: int(1), momentum: float(0.9) },
    outputs: 3,
    combine: (_, [y]) => y,
  },
  { name: 'MatMul batched', op: 'MatMul', operands: [f([2, 3, 4]), f([4, 5])] },
  { name: 'MatMul broadcast batch', op: 'MatMul', operands: [f([2, 1, 3, 4]), f([3, 4, 2])] },
  { name: 'MatMul vector × batched matrices', op: 'MatMul', operands: [f([4]), f([2, 4, 3])] },
  { name: 'MatMul batched matrices × vector', op: 'MatMul', operands: [f([2, 3, 4]), f([4])] },
  { name: 'MatMul vector · vector', op: 'MatMul', operands: [f([4]), f([4])] },
  {
    name: 'Gemm',
    op: 'Gemm',
    operands: [f([3, 4]), f([5, 4]), f([5])],
    attrs: { transB: int(1), alpha: float(0.7), beta: float(1.3) },
  },
  {
    name: 'Gemm transA',
    op: 'Gemm',
    operands: [f([4, 3]), f([4, 5]), f([3, 5])],
    attrs: { transA: int(1) },
  },
  {
    name: 'Conv padding stride dilation',
    op: 'Conv',
    operands: [f([2, 2, 6, 7]), f([3, 2, 3, 2]), f([3])],
    attrs: { pads: ints([1, 0, 1, 1]), strides: ints([2, 1]), dilations: ints([1, 2]) },
    float32: true,
  },
  {
    name: 'Conv stride 1, asymmetric pads (dX as a full convolution)',
    op: 'Conv',
    operands: [f([2, 3, 5, 6]), f([4, 3, 3, 2]), f([4])],
    attrs: { pads: ints([1, 0, 2, 1]) },
    float32: true,
  },
  {
    name: 'Conv1d padding stride dilation',
    op: 'Conv',
    operands: [f([2, 3, 11]), f([4, 3, 3]), f([4])],
    attrs: { pads: ints([2, 1]), strides: ints([2]), dilations: ints([2]) },
    float32: true,
  },
  {
    name: 'Conv1d grouped, unpadded',
    op: 'Conv',
    operands: [f([2, 4, 7]), f([6, 2, 3])],
    attrs: { group: int(2) },
    float32: true,
  },
  {
    name: 'Conv stride 1, unpadded, 1×1 and 3×3',
    op: 'Conv',
    operands: [f([1, 2, 4, 4]), f([3, 2, 3, 3])],
    attrs: {},
    float32: true,
  },
  {
    name: 'Conv pads wider than the kernel (ConvTranspose path)',
    op: 'Conv',
    operands: [f([1, 2, 3, 3]), f([2, 2, 2, 2])],
    attrs: { pads: ints([2, 2, 2, 2]) },
    float32: true,
  },
  {
    name: 'Conv auto_pad SAME_UPPER, stride 2',
    op: 'Conv',
    operands: [f([1, 2, 5, 6]), f([3, 2, 3, 2])],
    attrs: { auto_pad: str('SAME_UPPER'), strides: ints([2, 2]) },
    float32: true,
  },
  {
    name: 'Conv auto_pad SAME_LOWER, stride 3 and 1 (an odd padding at the start)',
    op: 'Conv',
    operands: [f([1, 2, 5, 4]), f([2, 2, 3, 2])],
    attrs: { auto_pad: str('SAME_LOWER'), strides: ints([3, 1]) },
    float32: true,
  },
  {
    name: 'Conv1d auto_pad VALID, stride 2',
    op: 'Conv',
    operands: [f([2, 2, 7]), f([3, 2, 3])],
    attrs: { auto_pad: str('VALID'), strides: ints([2]) },
    float32: true,
  },
  {
    name: 'Conv depthwise, two filters per channel, stride 2',
    op: 'Conv',
    operands: [f([2, 3, 5, 5]), f([6, 1, 3, 3]), f([6])],
    attrs: { group: int(3), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) },
    float32: true,
  },
  {
    name: 'Conv groups',
    op: 'Conv',
    operands: [f([1, 4, 5, 5]), f([6, 2, 3, 3]), f([6])],
    attrs: { group: int(2), pads: ints([1, 1, 1, 1]) },
    float32: true,
  },
  {
    name: 'MaxPool',
    op: 'MaxPool',
    operands: [f([2, 2, 4, 4])],
    attrs: { kernel_shape: ints([2, 2]), strides: ints([2, 2]) },
  },
  {
    name: 'MaxPool overlapping, padded',
    op: 'MaxPool',
    operands: [f([1, 2, 5, 5])],
    attrs: { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) },
  },
  {
    name: 'MaxPool float32, windows apart (MaxUnpool path)',
    op: 'MaxPool',
    operands: [f([2, 2, 4, 4])],
    attrs: { kernel_shape: ints([2, 2]), strides: ints([2, 2]) },
    float32: true,
  },
  {
    name: 'MaxPool 3×2 windows apart',
    op: 'MaxPool',
    operands: [f([1, 2, 6, 4])],
    attrs: { kernel_shape: ints([3, 2]), strides: ints([3, 2]) },
  },
  {
    name: 'MaxPool float32, stride past the kernel, padded (MaxUnpool path)',
    op: 'MaxPool',
    operands: [f([1, 2, 7, 6])],
    attrs: { kernel_shape: ints([2, 2]), strides: ints([3, 2]), pads: ints([1, 0, 0, 1]) },
    float32: true,
  },
  {
    name: 'MaxPool float32, overlapping (scatter path)',
    op: 'MaxPool',
    operands: [f([1, 2, 5, 5])],
    attrs: { kernel_shape: ints([3, 3]), strides: ints([2, 2]) },
    float32: true,
  },
  {
    name: 'Relu then MaxPool with pads, float32, the pair at once (MaxUnpool path)',
    op: 'Relu',
    operands: [f([1, 2, 5, 5])],
    float32: true,
    combine: (g, [relu]) =>
      g.node('MaxPool', [relu], {
        kernel_shape: ints([2, 2]),
        strides: ints([2, 2]),
        pads: ints([1, 1, 0, 0]),
      }),
  },
  {
    name: 'Relu then MaxPool, float32, the pair at once (masked before unpooling)',
    op: 'Relu',
    operands: [f([2, 2, 4, 6])],
    float32: true,
    combine: (g, [relu]) =>
      g.node('MaxPool', [relu], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
  },
  {
    name: 'AveragePool tiling its input (matrix product and row copies)',
    op: 'AveragePool',
    operands: [f([2, 2, 4, 4])],
    attrs: { kernel_shape: ints([2, 2]), strides: ints([2, 2]) },
    float32: true,
  },
  {
    name: 'AveragePool tiling with a 3x2 window',
    op: 'AveragePool',
    operands: [f([1, 2, 6, 4])],
    attrs: { kernel_shape: ints([3, 2]), strides: ints([3, 2]) },
    float32: true,
  },
  {
    name: 'AveragePool tiling with a 1x2 window',
    op: 'AveragePool',
    operands: [f([1, 2, 3, 4])],
    attrs: { kernel_shape: ints([1, 2]), strides: ints([1, 2]) },
    float32: true,
  },
  {
    name: 'AveragePool not tiling (a last row left out)',
    op: 'AveragePool',
    operands: [f([1, 2, 5, 4])],
    attrs: { kernel_shape: ints([2, 2]), strides: ints([2, 2]) },
    float32: true,
  },
  {
    name: 'AveragePool with overlapping windows',
    op: 'AveragePool',
    operands: [f([1, 2, 5, 5])],
    attrs: { kernel_shape: ints([3, 3]), strides: ints([1, 1]) },
    float32: true,
  },
  {
    name: 'AveragePool padded, excluding pads',
    op: 'AveragePool',
    operands: [f([1, 2, 5, 5])],
    attrs: { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) },
    float32: true,
  },
  {
    name: 'AveragePool 1-D (AvgPool1d), padded, excluding pads',
    op: 'AveragePool',
    operands: [f([2, 3, 7])],
    attrs: { kernel_shape: ints([3]), strides: ints([2]), pads: ints([1, 1]) },
    float32: true,
  },
  {
    name: 'AveragePool 3-D',
    op: 'AveragePool',
    operands: [f([1, 2, 4, 5, 4])],
    attrs: {
      kernel_shape: ints([2, 3, 2]),
      strides: ints([2, 1, 2]),
      pads: ints([0, 1, 0, 0, 1, 1]),
      count_include_pad: int(1),
    },
    float32: true,
  },
  {
    name: 'MaxPool 3-D, overlapping',
    op: 'MaxPool',
    operands: [f([1, 2, 4, 4, 3])],
    attrs: { kernel_shape: ints([2, 2, 2]), strides: ints([1, 2, 1]) },
  },
  {
    name: 'MaxPool 1-D, ceil_mode (window past the end)',
    op: 'MaxPool',
    operands: [f([2, 2, 7])],
    attrs: { kernel_shape: ints([2]), strides: ints([2]), ceil_mode: int(1) },
    float32: true,
  },
  {
    name: 'AveragePool auto_pad SAME_UPPER, excluding pads',
    op: 'AveragePool',
    operands: [f([1, 2, 5, 5])],
    attrs: { kernel_shape: ints([2, 3]), strides: ints([2, 2]), auto_pad: str('SAME_UPPER') },
    float32: true,
  },
  {
    name: 'MaxPool auto_pad SAME_LOWER (the odd pad at the start)',
    op: 'MaxPool',
    operands: [f([1, 2, 5, 5])],
    attrs: { kernel_shape: ints([2, 2]), strides: ints([2, 2]), auto_pad: str('SAME_LOWER') },
  },
  {
    name: 'GlobalAveragePool',
    op: 'GlobalAveragePool',
    operands: [f([2, 3, 3, 2])],
    float32: true,
  },
  {
    name: 'ReduceMean keepdims',
    op: 'ReduceMean',
    operands: [f([2, 3, 4])],
    attrs: { axes: ints([1]), keepdims: int(1) },
  },
  { name: 'ReduceMean all', op: 'ReduceMean', operands: [f([2, 3])], attrs: { keepdims: int(0) } },
  {
    name: 'ReduceSum axes input',
    op: 'ReduceSum',
    operands: [f([2, 3, 4]), i64([0, 2])],
    attrs: { keepdims: int(0) },
  },
  {
    name: 'Pad constant',
    op: 'Pad',
    operands: [f([2, 3]), i64([1, 0, 2, 1])],
    attrs: { mode: str('constant') },
  },
  {
    name: 'Pad reflect (ReflectionPad2d)',
    op: 'Pad',
    operands: [f([1, 2, 3, 4]), i64([0, 0, 2, 1, 0, 0, 1, 3])],
    attrs: { mode: str('reflect') },
  },
  {
    name: 'Pad edge (ReplicationPad), axes input',
    op: 'Pad',
    operands: [
      f([2, 3, 4]),
      i64([2, 1, 0, 3]),
      f([], { values: [0], constant: true }),
      i64([1, 2]),
    ],
    attrs: { mode: str('edge') },
    opset: 18,
  },
  {
    name: 'Pad wrap (opset 19, circular)',
    op: 'Pad',
    operands: [f([2, 3, 4]), i64([0, 1, 2, 0, 2, 1])],
    attrs: { mode: str('wrap') },
    opset: 19,
  },
  {
    name: 'Pad constant, negative pads (cropping)',
    op: 'Pad',
    operands: [f([3, 5]), i64([1, -2, -1, 1])],
    attrs: { mode: str('constant') },
  },
  {
    name: 'CenterCropPad (opset 18), crop one axis and pad another',
    op: 'CenterCropPad',
    operands: [f([2, 5, 3]), i64([3, 6])],
    attrs: { axes: ints([1, 2]) },
    opset: 18,
    float32: true,
  },
  {
    name: 'ReverseSequence',
    op: 'ReverseSequence',
    operands: [f([4, 3, 2]), i64([4, 2, 1])],
    attrs: { batch_axis: int(1), time_axis: int(0) },
  },
  {
    name: 'Compress along an axis',
    op: 'Compress',
    operands: [f([3, 4]), { dims: [4], values: [1, 0, 1, 1], dtype: 'bool', constant: true }],
    attrs: { axis: int(1) },
  },
  {
    name: 'Compress flattened',
    op: 'Compress',
    operands: [f([2, 3]), { dims: [5], values: [0, 1, 1, 0, 1], dtype: 'bool', constant: true }],
  },
  { name: 'Flatten', op: 'Flatten', operands: [f([2, 3, 2])], attrs: { axis: int(1) } },
  { name: 'Reshape', op: 'Reshape', operands: [f([2, 6]), i64([3, -1])] },
  {
    name: 'Transpose',
    op: 'Transpose',
    operands: [f([2, 3, 4])],
    attrs: { perm: ints([2, 0, 1]) },
  },
  { name: 'Squeeze', op: 'Squeeze', operands: [f([2, 1, 3]), i64([1])] },
  { name: 'Unsqueeze', op: 'Unsqueeze', operands: [f([2, 3]), i64([0, 3])] },
  {
    name: 'Gather rows (embedding)',
    op: 'Gather',
    operands: [f([5, 3]), i64([0, 4, 4, -1, 2, 0], [2, 3])],
    attrs: { axis: int(0) },
  },
  {
    name: 'Gather along axis 1 with a scalar index (x[:, -1])',
    op: 'Gather',
    operands: [f([2, 3, 4]), i64([-1], [])],
    attrs: { axis: int(1) },
  },
  {
    name: 'Gather along axis 2 with an index matrix',
    op: 'Gather',
    operands: [f([2, 3, 4]), i64([3, 0, 3, 1], [2, 2])],
    attrs: { axis: int(2) },
  },
  {
    name: 'GatherElements',
    op: 'GatherElements',
    operands: [f([3, 4]), i64([0, 3, 3, 1, 2, 0], [3, 2])],
    attrs: { axis: int(1) },
  },
  {
    name: 'Split',
    op: 'Split',
    operands: [f([2, 6]), i64([2, 4])],
    attrs: { axis: int(1) },
    outputs: 2,
    combine: (g, [a, b]) => g.node('Concat', [g.node('Mul', [a, a]), b], { axis: int(1) }),
  },
  { name: 'Slice', op: 'Slice', operands: [f([4, 5]), i64([1, -4]), i64([100, 4]), i64([0, 1])] },
  {
    name: 'Slice with steps 2 and −1 (x[::2], flip)',
    op: 'Slice',
    operands: [f([5, 4]), i64([0, -1]), i64([100, -100]), i64([0, 1]), i64([2, -1])],
  },
  {
    name: 'Slice with step 3 from an offset, one axis',
    op: 'Slice',
    operands: [f([2, 8]), i64([1]), i64([7]), i64([-1]), i64([3])],
  },
  { name: 'Concat', op: 'Concat', operands: [f([2, 3]), f([2, 1])], attrs: { axis: int(1) } },
  { name: 'Abs', op: 'Abs', operands: [f([3, 4])] },
  { name: 'Reciprocal', op: 'Reciprocal', operands: [f([3, 4], { positive: true })] },
  { name: 'Sin', op: 'Sin', operands: [f([3, 4])] },
  { name: 'Cos', op: 'Cos', operands: [f([3, 4])] },
  { name: 'Softplus', op: 'Softplus', operands: [f([3, 4])], float32: true },
  { name: 'Softsign', op: 'Softsign', operands: [f([3, 4])], float32: true },
  { name: 'Elu', op: 'Elu', operands: [f([3, 4])], attrs: { alpha: float(0.7) }, float32: true },
  { name: 'Selu', op: 'Selu', operands: [f([3, 4])], float32: true },
  { name: 'Celu', op: 'Celu', operands: [f([3, 4])], attrs: { alpha: float(1.5) }, float32: true },
  {
    name: 'HardSigmoid',
    op: 'HardSigmoid',
    operands: [f([3, 4])],
    attrs: { alpha: float(0.6), beta: float(0.4) },
    float32: true,
  },
  {
    name: 'HardSwish',
    op: 'HardSwish',
    operands: [{ dims: [2, 4], values: [-4, -2.5, -1, -0.2, 0.3, 1.7, 2.9, 3.5] }],
    float32: true,
  },
  { name: 'Mish', op: 'Mish', operands: [f([3, 4])], float32: true },
  { name: 'PRelu (per-channel slope)', op: 'PRelu', operands: [f([2, 3, 4]), f([3, 1])] },
  { name: 'Tan', op: 'Tan', operands: [f([3, 4])], float32: true },
  {
    name: 'Asin',
    op: 'Asin',
    operands: [{ dims: [2, 3], values: [-0.7, -0.3, 0.1, 0.4, 0.6, -0.5] }],
    float32: true,
  },
  {
    name: 'Acos',
    op: 'Acos',
    operands: [{ dims: [2, 3], values: [-0.7, -0.3, 0.1, 0.4, 0.6, -0.5] }],
    float32: true,
  },
  { name: 'Atan', op: 'Atan', operands: [f([3, 4])], float32: true },
  { name: 'Sinh', op: 'Sinh', operands: [f([3, 4])], float32: true },
  { name: 'Cosh', op: 'Cosh', operands: [f([3, 4])], float32: true },
  { name: 'Asinh', op: 'Asinh', operands: [f([3, 4])], float32: true },
  {
    name: 'Acosh',
    op: 'Acosh',
    operands: [{ dims: [2, 3], values: [1.2, 1.5, 2, 3, 1.8, 2.5] }],
    float32: true,
  },
  {
    name: 'Atanh',
    op: 'Atanh',
    operands: [{ dims: [2, 3], values: [-0.7, -0.3, 0.1, 0.4, 0.6, -0.5] }],
    float32: true,
  },
  {
    name: 'Mod (fmod, floats), broadcast divisor',
    op: 'Mod',
    operands: [
      { dims: [2, 3], values: [2.3, -1.7, 0.4, -3.1, 1.1, 2.9] },
      { dims: [3], values: [0.9, 0.7, -1.3] },
    ],
    attrs: { fmod: int(1) },
  },
  {
    name: 'CastLike (float32 to float64, cast back)',
    op: 'CastLike',
    operands: [f([2, 3]), { dims: [1], values: [0], dtype: 'float64', constant: true }],
    float32: true,
    combine: (g, [y]) => g.node('Cast', [y], { to: int(1) }),
  },
  {
    name: 'ThresholdedRelu',
    op: 'ThresholdedRelu',
    operands: [{ dims: [2, 4], values: [-0.9, -0.5, 0.1, 0.2, 0.45, 0.6, 0.8, -0.1] }],
    attrs: { alpha: float(0.3) },
    float32: true,
  },
  {
    name: 'Shrink (Softshrink)',
    op: 'Shrink',
    operands: [{ dims: [2, 4], values: [-0.9, -0.5, -0.3, 0.1, 0.3, 0.6, 0.8, -0.1] }],
    attrs: { lambd: float(0.4), bias: float(0.4) },
    float32: true,
  },
  { name: 'Sum of three, broadcast', op: 'Sum', operands: [f([2, 3]), f([3]), f([2, 1])] },
  { name: 'Mean of two', op: 'Mean', operands: [f([2, 3]), f([2, 3])], float32: true },
  { name: 'Max of three, broadcast', op: 'Max', operands: [f([2, 3]), f([3]), f([2, 1])] },
  { name: 'Min of two', op: 'Min', operands: [f([2, 3]), f([2, 3])] },
  {
    name: 'InstanceNormalization',
    op: 'InstanceNormalization',
    operands: [f([2, 3, 4, 5]), f([3]), f([3])],
    attrs: { epsilon: float(1e-3) },
    float32: true,
  },
  {
    name: 'GroupNormalization opset 18 (scale and bias per group)',
    op: 'GroupNormalization',
    operands: [f([2, 6, 3, 2]), f([3]), f([3])],
    attrs: { num_groups: int(3), epsilon: float(1e-3) },
    opset: 18,
    float32: true,
  },
  {
    name: 'GroupNormalization opset 21 (scale and bias per channel), 1-D positions',
    op: 'GroupNormalization',
    operands: [f([2, 4, 5]), f([4]), f([4])],
    attrs: { num_groups: int(2) },
    opset: 21,
    float32: true,
  },
  {
    name: 'ReduceMax over one axis',
    op: 'ReduceMax',
    operands: [f([3, 4, 2])],
    attrs: { axes: ints([1]), keepdims: int(0) },
  },
  { name: 'ReduceMin, all axes', op: 'ReduceMin', operands: [f([3, 4])] },
  {
    name: 'ReduceMax with ties (split equally)',
    op: 'ReduceMax',
    operands: [{ dims: [2, 3], values: [0.5, 0.5, -1, 0.2, 0.9, 0.9] }],
    attrs: { axes: ints([1]) },
  },
  {
    name: 'ReduceL2',
    op: 'ReduceL2',
    operands: [f([3, 4])],
    attrs: { axes: ints([1]), keepdims: int(0) },
  },
  {
    name: 'ReduceLogSumExp',
    op: 'ReduceLogSumExp',
    operands: [f([3, 4])],
    attrs: { axes: ints([0]) },
  },
  {
    name: 'ReduceSumSquare',
    op: 'ReduceSumSquare',
    operands: [f([3, 4])],
    attrs: { axes: ints([1]), keepdims: int(1) },
  },
  {
    name: 'ConvTranspose stride 2, pads, output_padding',
    op: 'ConvTranspose',
    operands: [f([2, 3, 4, 5]), f([3, 2, 3, 3]), f([2])],
    attrs: { strides: ints([2, 2]), pads: ints([1, 0, 1, 1]), output_padding: ints([1, 0]) },
    float32: true,
  },
  {
    name: 'ConvTranspose 2×2 stride 2 (U-Net up)',
    op: 'ConvTranspose',
    operands: [f([1, 2, 3, 3]), f([2, 4, 2, 2])],
    attrs: { strides: ints([2, 2]), kernel_shape: ints([2, 2]) },
    float32: true,
  },
  {
    name: 'ConvTranspose grouped, stride, dilation, pads, output_padding',
    op: 'ConvTranspose',
    operands: [f([2, 4, 3, 4]), f([4, 3, 2, 3]), f([6])],
    attrs: {
      group: int(2),
      strides: ints([2, 3]),
      dilations: ints([2, 1]),
      pads: ints([1, 0, 0, 2]),
      output_padding: ints([1, 2]),
    },
    float32: true,
  },
  {
    name: 'ConvTranspose depthwise',
    op: 'ConvTranspose',
    operands: [f([1, 3, 3, 3]), f([3, 1, 3, 3])],
    attrs: { group: int(3), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) },
    float32: true,
  },
  {
    name: 'ConvTranspose 1-D grouped, stride 2, output_padding',
    op: 'ConvTranspose',
    operands: [f([2, 4, 5]), f([4, 2, 3]), f([4])],
    attrs: { group: int(2), strides: ints([2]), pads: ints([1, 0]), output_padding: ints([1]) },
    float32: true,
  },
  {
    name: 'ConvTranspose 3-D, stride 2',
    op: 'ConvTranspose',
    operands: [f([1, 2, 2, 3, 2]), f([2, 3, 2, 2, 3]), f([3])],
    attrs: { strides: ints([2, 1, 2]), pads: ints([0, 1, 1, 0, 0, 1]) },
    float32: true,
  },
  {
    name: 'Conv 3-D, stride, pads, groups (ConvTranspose path)',
    op: 'Conv',
    operands: [f([1, 4, 4, 3, 5]), f([4, 2, 2, 2, 3]), f([4])],
    attrs: { group: int(2), strides: ints([2, 1, 2]), pads: ints([1, 0, 1, 0, 1, 1]) },
    float32: true,
  },
  {
    name: 'Conv 3-D, stride 1 (dX as a full convolution)',
    op: 'Conv',
    operands: [f([2, 2, 3, 4, 3]), f([3, 2, 2, 3, 2]), f([3])],
    attrs: { pads: ints([1, 1, 0, 0, 1, 1]) },
    float32: true,
  },
  {
    name: 'ConvTranspose output_shape (the odd pad at the start)',
    op: 'ConvTranspose',
    operands: [f([1, 2, 3, 3]), f([2, 3, 3, 3])],
    attrs: { strides: ints([2, 2]), output_shape: ints([6, 5]) },
    float32: true,
  },
  {
    name: 'ConvTranspose auto_pad SAME_UPPER, stride 2',
    op: 'ConvTranspose',
    operands: [f([1, 2, 3, 2]), f([2, 2, 3, 2])],
    attrs: { strides: ints([2, 2]), auto_pad: str('SAME_UPPER') },
    float32: true,
  },
  { name: 'Tile', op: 'Tile', operands: [f([2, 3]), i64([2, 3])] },
  { name: 'CumSum', op: 'CumSum', operands: [f([3, 4]), i64([1], [])] },
  {
    name: 'CumSum exclusive reverse',
    op: 'CumSum',
    operands: [f([3, 4]), i64([0], [])],
    attrs: { exclusive: int(1), reverse: int(1) },
  },
  {
    name: 'Resize nearest ×2 (nn.Upsample)',
    op: 'Resize',
    operands: [
      f([1, 2, 3, 2]),
      { dims: [0], values: [], dtype: 'float32', constant: true },
      { dims: [4], values: [1, 1, 2, 3], dtype: 'float32', constant: true },
    ],
    attrs: {
      mode: str('nearest'),
      coordinate_transformation_mode: str('asymmetric'),
      nearest_mode: str('floor'),
    },
    float32: true,
  },
  {
    name: 'Resize linear, half_pixel, scales ×2 and ×1.5 (bilinear, align_corners=False)',
    op: 'Resize',
    operands: [f([1, 2, 3, 4]), f32(), f32([1, 1, 2, 1.5])],
    attrs: { mode: str('linear') },
    float32: true,
  },
  {
    name: 'Resize linear, align_corners, sizes (up and down)',
    op: 'Resize',
    operands: [f([1, 2, 3, 4]), f32(), f32(), i64([1, 2, 5, 3])],
    attrs: { mode: str('linear'), coordinate_transformation_mode: str('align_corners') },
    float32: true,
  },
  {
    name: 'Resize linear, pytorch_half_pixel, halving to one column',
    op: 'Resize',
    operands: [f([1, 1, 4, 2]), f32(), f32([1, 1, 0.5, 0.5])],
    attrs: { mode: str('linear'), coordinate_transformation_mode: str('pytorch_half_pixel') },
    float32: true,
  },
  {
    name: 'Resize linear 1-D, asymmetric, ×1.6',
    op: 'Resize',
    operands: [f([2, 3, 5]), f32(), f32([1, 1, 1.6])],
    attrs: { mode: str('linear'), coordinate_transformation_mode: str('asymmetric') },
    float32: true,
  },
  {
    name: 'Resize linear 3-D (trilinear), half_pixel',
    op: 'Resize',
    operands: [f([1, 1, 2, 3, 2]), f32(), f32([1, 1, 2, 1.5, 2])],
    attrs: { mode: str('linear') },
    float32: true,
  },
  {
    name: 'Resize nearest, half_pixel, round_prefer_floor, sizes (down)',
    op: 'Resize',
    operands: [f([1, 1, 5, 5]), f32(), f32(), i64([1, 1, 3, 2])],
    attrs: { mode: str('nearest') },
    float32: true,
  },
  {
    name: 'Resize nearest, align_corners, round_prefer_ceil, ×1.5',
    op: 'Resize',
    operands: [f([1, 2, 4, 3]), f32(), f32([1, 1, 1.5, 1.5])],
    attrs: {
      mode: str('nearest'),
      coordinate_transformation_mode: str('align_corners'),
      nearest_mode: str('round_prefer_ceil'),
    },
    float32: true,
  },
  {
    name: 'Resize linear, opset 18 axes and keep_aspect_ratio_policy not_larger',
    op: 'Resize',
    operands: [f([1, 2, 3, 4]), f32(), f32(), i64([6, 6])],
    attrs: { mode: str('linear'), axes: ints([2, 3]), keep_aspect_ratio_policy: str('not_larger') },
    opset: 18,
    float32: true,
  },
  {
    name: 'Resize linear, opset 19 half_pixel_symmetric, ×1.7',
    op: 'Resize',
    operands: [f([1, 1, 3, 4]), f32(), f32([1, 1, 1.7, 0.6])],
    attrs: { mode: str('linear'), coordinate_transformation_mode: str('half_pixel_symmetric') },
    opset: 19,
    float32: true,
  },
  {
    name: 'GridSample bilinear, zeros padding (points off the image)',
    op: 'GridSample',
    operands: [
      f([2, 2, 4, 5]),
      {
        dims: [2, 1, 3, 2],
        values: [-0.65, -0.09, 0.89, 0.55, 1.1, 0.1, 1.11, -0.12, 0.11, 0.1, -0.88, 0.57],
      },
    ],
    attrs: { mode: str('bilinear'), padding_mode: str('zeros') },
    opset: 16,
    float32: true,
  },
  {
    name: 'GridSample bilinear, border padding, align_corners',
    op: 'GridSample',
    operands: [
      f([2, 2, 4, 5]),
      {
        dims: [2, 1, 3, 2],
        values: [-0.65, -0.09, 0.89, 0.55, 1.1, 0.1, 1.11, -0.12, 0.11, 0.1, -0.88, 0.57],
      },
    ],
    attrs: { mode: str('bilinear'), padding_mode: str('border'), align_corners: int(1) },
    opset: 16,
    float32: true,
  },
  {
    name: 'GridSample nearest (opset 20)',
    op: 'GridSample',
    operands: [
      f([2, 2, 4, 5]),
      {
        dims: [2, 1, 3, 2],
        values: [-0.65, -0.09, 0.89, 0.55, 1.1, 0.1, 1.11, -0.12, 0.11, 0.1, -0.88, 0.57],
      },
    ],
    attrs: { mode: str('nearest') },
    opset: 20,
    float32: true,
  },
  {
    name: 'GridSample linear (opset 20)',
    op: 'GridSample',
    operands: [
      f([1, 3, 4, 5]),
      {
        dims: [1, 2, 3, 2],
        values: [-0.65, -0.09, 0.89, 0.55, 1.1, 0.1, 1.11, -0.12, 0.11, 0.1, -0.88, 0.57],
      },
    ],
    attrs: { mode: str('linear') },
    opset: 20,
    float32: true,
  },
  {
    name: 'Einsum, attention scores',
    op: 'Einsum',
    operands: [f([2, 3, 4, 5]), f([2, 3, 6, 5])],
    attrs: { equation: str('bhpe,bhqe->bhpq') },
  },
  {
    name: 'Einsum, projection with a weight',
    op: 'Einsum',
    operands: [f([2, 4, 5]), f([3, 6, 5])],
    attrs: { equation: str('bpd,hed->bhpe') },
  },
  {
    name: 'Einsum, an index summed away',
    op: 'Einsum',
    operands: [f([3, 4]), f([4, 2])],
    attrs: { equation: str('ij,jk->k') },
  },
  {
    name: 'Einsum, one operand (transpose and sum)',
    op: 'Einsum',
    operands: [f([2, 3, 4])],
    attrs: { equation: str('abc->ca') },
  },
  {
    name: 'GatherND with batch_dims 1, repeated rows',
    op: 'GatherND',
    operands: [f([2, 3, 4]), i64([2, 2, 0, 1], [2, 2, 1])],
    attrs: { batch_dims: int(1) },
  },
  {
    name: 'Einsum, three operands',
    op: 'Einsum',
    operands: [f([2, 3]), f([3, 4]), f([4, 2])],
    attrs: { equation: str('ij,jk,kl->il') },
  },
  {
    name: 'Einsum, ellipsis broadcast over batch axes',
    op: 'Einsum',
    operands: [f([2, 1, 3, 4]), f([2, 3, 4, 5])],
    attrs: { equation: str('...ij,...jk->...ik') },
  },
  {
    name: 'Einsum, ellipsis on one operand',
    op: 'Einsum',
    operands: [f([2, 3, 3, 4]), f([4, 5])],
    attrs: { equation: str('...ij,jk->...ik') },
  },
  {
    name: 'Einsum, implicit output',
    op: 'Einsum',
    operands: [f([3, 4]), f([4, 2])],
    attrs: { equation: str('ij,jk') },
  },
  {
    name: 'GatherND, rows and elements',
    op: 'GatherND',
    operands: [f([3, 4]), i64([2, 0, 1, 3, 2, 0], [3, 2])],
  },
  {
    name: 'ScatterElements (data and updates)',
    op: 'ScatterElements',
    operands: [f([3, 4]), i64([1, 3, 0, 2], [2, 2]), f([2, 2])],
    attrs: { axis: int(1) },
  },
  {
    name: 'ScatterND (data and updates)',
    op: 'ScatterND',
    operands: [f([4, 3]), i64([2, 0], [2, 1]), f([2, 3])],
  },
  {
    name: 'ScatterElements add, repeated indices',
    op: 'ScatterElements',
    operands: [f([3, 4]), i64([1, 1, 0, 2, 2, 2], [2, 3]), f([2, 3])],
    attrs: { axis: int(1), reduction: str('add') },
  },
  {
    name: 'ScatterElements mul, repeated indices',
    op: 'ScatterElements',
    operands: [f([3, 4]), i64([3, 3, 0, 1, 1, 2], [2, 3]), f([2, 3], { positive: true })],
    attrs: { axis: int(1), reduction: str('mul') },
  },
  {
    name: 'ScatterElements max (opset 18), repeated indices',
    op: 'ScatterElements',
    operands: [f([3, 4]), i64([0, 0, 2, 1, 1, 2], [3, 2]), f([3, 2])],
    attrs: { axis: int(0), reduction: str('max') },
    opset: 18,
  },
  {
    name: 'ScatterElements max, ties split equally (tied values far from the targets, so the kink costs central differences little)',
    op: 'ScatterElements',
    operands: [
      { dims: [2, 3], values: [5, -1, 4, 0.9, 0.3, -0.4] },
      i64([0, 0, 0], [1, 3]),
      { dims: [1, 3], values: [5, 0.1, 4] },
    ],
    attrs: { axis: int(0), reduction: str('max') },
    opset: 18,
  },
  {
    name: 'ScatterND add, repeated rows',
    op: 'ScatterND',
    operands: [f([4, 3]), i64([2, 0, 2], [3, 1]), f([3, 3])],
    attrs: { reduction: str('add') },
  },
  {
    name: 'ScatterND min (opset 18), elements',
    op: 'ScatterND',
    operands: [f([3, 4]), i64([1, 2, 0, 3, 1, 2], [3, 2]), f([3])],
    attrs: { reduction: str('min') },
    opset: 18,
  },
  {
    name: 'ScatterND mul, rows',
    op: 'ScatterND',
    operands: [f([3, 2]), i64([1, 1], [2, 1]), f([2, 2], { positive: true })],
    attrs: { reduction: str('mul') },
  },
  {
    name: 'TopK values',
    op: 'TopK',
    operands: [f([3, 5]), i64([2])],
    attrs: { axis: int(1) },
    outputs: 2,
    combine: (_, [values]) => values,
  },
  {
    name: 'ReduceL1',
    op: 'ReduceL1',
    operands: [f([3, 4])],
    attrs: { axes: ints([1]), keepdims: int(0) },
  },
  {
    name: 'ReduceLogSum',
    op: 'ReduceLogSum',
    operands: [f([3, 4], { positive: true })],
    attrs: { axes: ints([0]) },
  },
  { name: 'GlobalMaxPool', op: 'GlobalMaxPool', operands: [f([2, 3, 3, 2])], float32: true },
  {
    name: 'DepthToSpace DCR',
    op: 'DepthToSpace',
    operands: [f([2, 8, 2, 3])],
    attrs: { blocksize: int(2) },
  },
  {
    name: 'DepthToSpace CRD (PixelShuffle)',
    op: 'DepthToSpace',
    operands: [f([1, 8, 2, 3])],
    attrs: { blocksize: int(2), mode: str('CRD') },
  },
  {
    name: 'SpaceToDepth',
    op: 'SpaceToDepth',
    operands: [f([2, 2, 4, 6])],
    attrs: { blocksize: int(2) },
  },
  {
    name: 'LpNormalization p=2 along axis 1',
    op: 'LpNormalization',
    operands: [f([2, 3, 4])],
    attrs: { axis: int(1) },
  },
  {
    name: 'LpNormalization p=1',
    op: 'LpNormalization',
    operands: [f([3, 4])],
    attrs: { p: int(1) },
  },
  {
    name: 'ReduceProd',
    op: 'ReduceProd',
    operands: [f([3, 4], { positive: true })],
    attrs: { axes: ints([1]) },
  },
  { name: 'Trilu', op: 'Trilu', operands: [f([3, 4]), i64([1], [])], attrs: { upper: int(0) } },
];

const OPSET_FOR: Record<string, number> = { Gelu: 20, Mish: 18 };

function operandTensor(operand: Operand, dtype: DType, random: () => number): Tensor {
  const count = operand.dims.reduce((a, b) => a * b, 1);
  const values =
    operand.values ??
    Array.from({ length: count }, () => (operand.positive ? 0.5 + random() : 2 * random() - 1));
  return tensor(operand.dtype ?? dtype, operand.dims, values);
}

/** A one-op model; differentiated operands are graph inputs, the rest initializers. */
function buildCase(testCase: Case, dtype: DType): { model: Model; feeds: Feeds } {
  const random = seededRandom(7);
  const g = new GraphBuilder(testCase.name, testCase.opset ?? OPSET_FOR[testCase.op] ?? 17);
  const feeds: Feeds = {};
  const names = testCase.operands.map((operand, k) => {
    const value = operandTensor(operand, dtype, random);
    if (operand.constant || operand.dtype) return g.initializer(`c${k}`, value);
    feeds[`x${k}`] = value;
    return g.input(`x${k}`, dtype, operand.dims);
  });
  const outputs = g.nodeN(
    testCase.op,
    names,
    testCase.attrs ?? {},
    `/${testCase.op}`,
    testCase.outputs ?? 1,
  );
  const scored = testCase.combine ? testCase.combine(g, outputs) : outputs[0];
  g.output(scored, dtype);
  return { model: Model.fromProto(g.build(), testCase.name, { threads: 1 }), feeds };
}

async function checkCase(testCase: Case): Promise<void> {
  const { model, feeds } = buildCase(testCase, testCase.float32 ? 'float32' : 'float64');
  try {
    await checkAgainstFiniteDifferences(testCase.name, model, feeds);
  } finally {
    await model.release();
  }
}

describe('gradient rules vs finite differences', () => {
  for (const testCase of CASES) it(testCase.name, () => checkCase(testCase));
});

describe('rule coverage', () => {
  it('every op has its rule in one family only (a later spread would silently replace an earlier row)', () => {
    const families = Object.entries(RULE_FAMILIES).flatMap(([family, rules]) =>
      Object.keys(rules).map((op) => ({ op, family })),
    );
    const repeated = families.filter(
      ({ op }, k) => families.findIndex((entry) => entry.op === op) !== k,
    );
    assert.deepEqual(repeated, []);
  });

  it('every rule has a finite-difference case', () => {
    const tested = new Set([
      ...CASES.map((testCase) => testCase.op),
      ...Object.keys(RECURRENT_RULES),
    ]); // LSTM, GRU, RNN: recurrent.test.ts
    assert.deepEqual(
      Object.keys(RULES).filter((op) => !tested.has(op)),
      [],
    );
  });

  it('every op PyTorch exports for MLPs, CNNs and transformers (and every fixture op) has a rule or is listed as non-differentiable', async () => {
    const issueOps = [
      'Gemm',
      'MatMul',
      'Add',
      'Sub',
      'Mul',
      'Div',
      'Neg',
      'Pow',
      'Sqrt',
      'Exp',
      'Log',
      'Erf',
      'Tanh',
      'Sigmoid',
      'Relu',
      'LeakyRelu',
      'Gelu',
      'Softmax',
      'LogSoftmax',
      'SoftmaxCrossEntropyLoss',
      'LayerNormalization',
      'BatchNormalization',
      'Conv',
      'MaxPool',
      'AveragePool',
      'GlobalAveragePool',
      'Pad',
      'Flatten',
      'Reshape',
      'Transpose',
      'Gather',
      'Split',
      'Slice',
      'Concat',
      'Unsqueeze',
      'Squeeze',
      'Expand',
      'Where',
      'Cast',
      'ReduceMean',
      'ReduceSum',
      'Identity',
      'Dropout',
      'Clip',
      'Shape',
      'ConstantOfShape',
      'Trilu',
      'Equal',
      'ArgMax',
      'Constant',
    ];
    const { FIXTURE_NAMES, loadFixture } = await import('../../test/helpers.ts');
    const fixtureOps = FIXTURE_NAMES.flatMap((name) =>
      loadFixture(name).model.graph.nodes.map((node) => node.opType),
    );
    const uncovered = [...new Set([...issueOps, ...fixtureOps])].filter(
      (op) => !(op in RULES) && !NO_GRADIENT.has(op),
    );
    assert.deepEqual(uncovered, []);
  });
});

/** Configurations a rule does not make exact: refused with the node and the setting (`message`) named. */
const REFUSALS: {
  name: string;
  op: string;
  operands: Operand[];
  attrs: Record<string, AttributeValue>;
  opset?: number;
  message: RegExp;
}[] = [
  {
    name: 'Resize cubic',
    op: 'Resize',
    operands: [f([1, 1, 3, 3]), f32(), f32([1, 1, 2, 2])],
    attrs: { mode: str('cubic') },
    message: /mode 'cubic'/,
  },
  {
    name: 'Resize antialiased (opset 18)',
    op: 'Resize',
    operands: [f([1, 1, 4, 4]), f32(), f32([1, 1, 0.5, 0.5])],
    attrs: { mode: str('linear'), antialias: int(1) },
    opset: 18,
    message: /antialias=1/,
  },
  {
    name: 'Resize tf_crop_and_resize',
    op: 'Resize',
    operands: [f([1, 1, 3, 3]), f32([0, 0, 0, 0, 1, 1, 1, 1]), f32([1, 1, 2, 2])],
    attrs: { mode: str('linear'), coordinate_transformation_mode: str('tf_crop_and_resize') },
    message: /coordinate_transformation_mode 'tf_crop_and_resize'/,
  },
  {
    name: 'GridSample bicubic',
    op: 'GridSample',
    operands: [
      f([2, 2, 4, 5]),
      {
        dims: [2, 1, 3, 2],
        values: [-0.65, -0.09, 0.89, 0.55, 1.1, 0.1, 1.11, -0.12, 0.11, 0.1, -0.88, 0.57],
      },
    ],
    attrs: { mode: str('bicubic') },
    opset: 16,
    message: /mode 'bicubic'/,
  },
  {
    name: 'GridSample reflection padding',
    op: 'GridSample',
    operands: [
      f([2, 2, 4, 5]),
      {
        dims: [2, 1, 3, 2],
        values: [-0.65, -0.09, 0.89, 0.55, 1.1, 0.1, 1.11, -0.12, 0.11, 0.1, -0.88, 0.57],
      },
    ],
    attrs: { padding_mode: str('reflection') },
    opset: 16,
    message: /padding_mode 'reflection'/,
  },
];

describe('configurations a rule refuses by name', () => {
  for (const refusal of REFUSALS) {
    it(refusal.name, async () => {
      const { model, feeds } = buildCase({ ...refusal }, 'float32');
      const output = (await runWithCache(model, feeds, [])).outputs[model.outputNames[0]];
      await assert.rejects(
        computeGradients(model, feeds, output, { loss: { kind: 'mse' }, wrt: ['input'] }),
        (error: Error) =>
          error.name === 'AutodiffError' &&
          error.message.includes(`node '/${refusal.op}'`) &&
          refusal.message.test(error.message),
      );
      await model.release();
    });
  }
});

describe('ops without a gradient rule', () => {
  it('fail with the op and the node named, and what the user can do', async () => {
    const g = new GraphBuilder('mvn', 17);
    g.output(
      g.node(
        'MeanVarianceNormalization',
        [g.input('x', 'float32', ['batch', 3, 2, 2])],
        {},
        '/mvn/MeanVarianceNormalization',
      ),
      'float32',
    );
    const model = Model.fromProto(g.build(), 'mvn', { threads: 1 });
    const x = tensor(
      'float32',
      [2, 3, 2, 2],
      Array.from({ length: 24 }, (_, k) => k % 7),
    );
    await assert.rejects(
      computeGradients(model, { x }, x, { loss: { kind: 'mse' }, wrt: ['input'] }),
      /No gradient rule for op 'MeanVarianceNormalization' \(node '\/mvn\/MeanVarianceNormalization', opset 17\).*ask for them with respect to values after '\/mvn\/MeanVarianceNormalization'.*report the op/,
    );
  });

  it('integer paths are never differentiated: a float value computed from a shape is a constant', async () => {
    // y = x · Cast(Shape(x)[1]): the gradient is the factor, with nothing flowing through Shape.
    const g = new GraphBuilder('shape-scale', 17);
    const x = g.input('x', 'float64', ['batch', 3]);
    const width = g.node(
      'Cast',
      [
        g.node('Gather', [g.node('Shape', [x]), g.initializer('one', tensor('int64', [], [1]))], {
          axis: int(0),
        }),
      ],
      { to: int(11) },
    );
    g.output(g.node('Mul', [x, width], {}, '/scale/Mul', 'y'), 'float64');
    const model = Model.fromProto(g.build(), 'shape-scale', { threads: 1 });
    const input = tensor('float64', [2, 3], [1, 2, 3, 4, 5, 6]);
    const target = tensor('float64', [2, 3]);
    const { gradients } = await computeGradients(model, { x: input }, target, {
      loss: { kind: 'mse' },
      wrt: ['input'],
    });
    // L = mean((3x)²) → dL/dx = 2·3x·3 / 6 = 3x
    assert.deepEqual(Array.from(gradients.get('x')!.data as Float64Array), [3, 6, 9, 12, 15, 18]);
  });
});
