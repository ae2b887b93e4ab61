/**
 * The spec pass every built gradient graph goes through: onnxruntime-node is an inference
 * build, so emitted nodes must be standard ai.onnx ops (no com.microsoft training kernels),
 * and the whole graph must still be a valid, topologically ordered ONNX graph.
 */
import type { ModelProto, NodeProto } from '../onnx/proto.ts';
import { validateModel } from '../onnx/validate.ts';
import { builtByTeardown, InternalError } from '../errors.ts';

/** The ai.onnx ops gradient rules may emit. */
export const EMITTED_OPS = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Neg',
  'Pow',
  'Sqrt',
  'Reciprocal',
  'Exp',
  'Log',
  'Erf',
  'Tanh',
  'Sum',
  'Max',
  'Min',
  'Where',
  'Greater',
  'Less',
  'Cast',
  'Identity',
  'Expand',
  'Shape',
  'Size',
  'Gather',
  'Concat',
  'Split',
  'Slice',
  'Pad',
  'Reshape',
  'Transpose',
  'Unsqueeze',
  'Squeeze',
  'CumSum',
  'Einsum',
  'GatherElements',
  'GatherND',
  'ReduceSum',
  'ReduceMean',
  'MatMul',
  'Gemm',
  'Conv',
  'ConvTranspose',
  'AveragePool',
  'ScatterElements',
  'ScatterND',
  'MaxUnpool',
  'SpaceToDepth',
  'Range',
  'Trilu',
  'ReduceSumSquare',
  'OneHot',
  'Not',
  'Equal',
  'And',
  'Or',
  'Sign',
  'Abs',
  'Sin',
  'Cos',
  'Sigmoid',
  'HardSigmoid',
  'Softplus',
  'ConstantOfShape',
  'ReduceProd',
  'BatchNormalization',
  'Floor',
  'Round',
  'Sinh',
  'Cosh',
  'ReverseSequence',
  'Compress',
  'CenterCropPad', // Mod's trunc, GridSample's corners, Sinh's and Cosh's derivatives
  'Scan',
  'Relu', // recurrent rules: the recomputed forward and the backward recurrence (recurrent.ts)
]);

export function checkGradientGraph(proto: ModelProto, emitted: readonly NodeProto[]): void {
  for (const node of withBodies(emitted)) {
    if ((node.domain && node.domain !== 'ai.onnx') || !EMITTED_OPS.has(node.opType)) {
      throw new InternalError(
        `A check of the gradient graph failed: gradient node '${node.name}' uses '${node.domain ? `${node.domain}.` : ''}${node.opType}', which is not in the standard ai.onnx ops gradients may emit (autodiff/spec.ts).`,
      );
    }
  }
  builtByTeardown('the gradient graph', () => validateModel(proto, 'the gradient graph'));
}

/** The nodes and, depth first, the nodes of their subgraphs (Scan bodies). */
function withBodies(nodes: readonly NodeProto[]): NodeProto[] {
  return nodes.flatMap((node) => [
    node,
    ...withBodies(
      node.attribute
        .flatMap((attribute) => [
          ...(attribute.g ? [attribute.g] : []),
          ...(attribute.graphs ?? []),
        ])
        .flatMap((body) => body.node),
    ),
  ]);
}
