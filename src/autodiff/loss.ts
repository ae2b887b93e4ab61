/**
 * Losses appended to a model's graph as ONNX nodes, so that the walker differentiates them like
 * any other op. The target is a new graph input, `teardown::target`.
 *
 * cross-entropy: the mean over every example and position of −log softmax(logits)[target], as
 *   PyTorch's F.cross_entropy on flattened logits; positions equal to `ignoreIndex` are left out
 *   of the sum and of the count; `positions: 'last'` scores only the last sequence position.
 * mse: the mean of (output − target)² over every element.
 */
import { int, valueInfo, type Dim } from '../graph/builder.ts';
import { derive } from '../graph/edit.ts';
import type { GraphIndex } from '../graph/graph.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { DType } from '../tensor.ts';
import { Emitter } from './emitter.ts';
import { AutodiffError } from './errors.ts';

export type LossKind = 'cross-entropy' | 'mse';

export interface LossSpec {
  kind: LossKind;
  /** Which model output is scored (default: the first). */
  output?: string;
  /** Cross-entropy on sequences: every position (default) or the last only. */
  positions?: 'all' | 'last';
  /** Cross-entropy: targets equal to this are ignored (PyTorch's ignore_index). */
  ignoreIndex?: number;
}

export const TARGET_INPUT = 'teardown::target';

export interface LossGraph {
  proto: ModelProto;
  loss: string;
  /** dtype the target must be fed as. */
  targetDtype: DType;
}

/** `outputShape`: the scored output's probed dims ('batch' marks the batch axis). */
export function appendLoss(index: GraphIndex, spec: LossSpec, outputShape: readonly Dim[]): LossGraph {
  const outputRank = outputShape.length;
  const proto = index.proto;
  const output = spec.output ?? proto.graph.output[0].name;
  const dtype = index.dtype(output);
  if (dtype !== 'float32' && dtype !== 'float64') throw new AutodiffError(`Output '${output}' holds ${dtype ?? 'values of unknown type'}: a loss needs float scores.`);
  const types = new Map(index.elementTypes);
  const emitter = new Emitter(new Set([...index.valueNames(), ...index.initializerNames, ...proto.graph.node.map((node) => node.name)]), types);
  const hint = 'teardown/loss';
  let loss: string;
  let targetDtype: DType;
  if (spec.kind === 'mse') {
    targetDtype = dtype;
    const difference = emitter.op('Sub', [output, TARGET_INPUT], {}, hint);
    loss = emitter.op('ReduceMean', [emitter.op('Mul', [difference, difference], {}, hint)], { keepdims: int(0) }, hint, 'loss');
  } else {
    targetDtype = 'int64';
    let logits = output;
    let target = TARGET_INPUT;
    if (spec.positions === 'last') {
      if (outputRank < 3) throw new AutodiffError(`--loss-positions last needs sequence scores [batch, seq, classes]; '${output}' has rank ${outputRank}.`);
      const last = emitter.int64s([-1]);
      logits = emitter.op('Slice', [logits, last, emitter.int64s([Number.MAX_SAFE_INTEGER]), emitter.int64s([1])], {}, hint); // [batch, 1, classes]
      // Targets may be one per sequence [batch] or one per position [batch, seq] (the last is used).
      target = emitter.op('Reshape', [emitter.op('Slice', [emitter.op('Reshape', [target, emitter.op('Concat', [emitter.op('Slice', [emitter.op('Shape', [target], {}, hint), emitter.int64s([0]), emitter.int64s([1])], {}, hint), last], { axis: int(0) }, hint)], {}, hint), last, emitter.int64s([Number.MAX_SAFE_INTEGER]), emitter.int64s([1])], {}, hint), last], {}, hint);
    }
    const classes = emitter.op('Slice', [emitter.op('Shape', [logits], {}, hint), last(emitter), emitter.int64s([Number.MAX_SAFE_INTEGER])], {}, hint);
    const flatLogits = emitter.op('Reshape', [logits, emitter.op('Concat', [emitter.int64s([-1]), classes], { axis: int(0) }, hint)], {}, hint); // [rows, classes]
    const flatTarget = emitter.op('Reshape', [target, emitter.int64s([-1])], {}, hint); // [rows]
    const logProbabilities = emitter.op('LogSoftmax', [flatLogits], { axis: int(1) }, hint);
    if (spec.ignoreIndex === undefined) {
      const picked = emitter.op('GatherElements', [logProbabilities, emitter.op('Unsqueeze', [flatTarget, emitter.int64s([1])], {}, hint)], { axis: int(1) }, hint);
      loss = emitter.op('Neg', [emitter.op('ReduceMean', [picked], { keepdims: int(0) }, hint)], {}, hint, 'loss');
    } else {
      const kept = emitter.op('Not', [emitter.op('Equal', [flatTarget, emitter.scalar(spec.ignoreIndex, 'int64')], {}, hint)], {}, hint);
      const safeTarget = emitter.op('Where', [kept, flatTarget, emitter.scalar(0, 'int64')], {}, hint);
      const picked = emitter.op('GatherElements', [logProbabilities, emitter.op('Unsqueeze', [safeTarget, emitter.int64s([1])], {}, hint)], { axis: int(1) }, hint);
      const weights = emitter.op('Cast', [emitter.op('Unsqueeze', [kept, emitter.int64s([1])], {}, hint)], { to: int(dtype === 'float64' ? 11 : 1) }, hint);
      const total = emitter.op('ReduceSum', [emitter.op('Mul', [picked, weights], {}, hint)], { keepdims: int(0) }, hint);
      loss = emitter.op('Neg', [emitter.op('Div', [total, emitter.op('ReduceSum', [weights], { keepdims: int(0) }, hint)], {}, hint)], {}, hint, 'loss');
    }
  }
  const graph = derive(proto.graph, {
    node: [...proto.graph.node, ...emitter.nodes],
    initializer: [...proto.graph.initializer, ...emitter.initializers],
    input: [...proto.graph.input, valueInfo(TARGET_INPUT, targetDtype, targetShape(spec, outputShape))],
    output: [...proto.graph.output, valueInfo(loss, dtype, [])],
  });
  return { proto: derive(proto, { graph }), loss, targetDtype };
}

const last = (emitter: Emitter) => emitter.int64s([-1]);

/** The target's dims: the output's for MSE, without the class axis for cross-entropy; unknown when only the last position is scored. */
function targetShape(spec: LossSpec, outputShape: readonly Dim[]): Dim[] | undefined {
  if (spec.kind === 'mse') return [...outputShape];
  if (spec.positions === 'last') return undefined;
  return outputShape.slice(0, -1);
}
