/**
 * Losses appended to a model's graph as ONNX nodes, so that the walker differentiates them like
 * any other op. The target is a new graph input, `teardown::target`.
 *
 * cross-entropy: the mean over every example and position of −log softmax(logits)[target], as
 *   PyTorch's F.cross_entropy on flattened logits; positions equal to `ignoreIndex` are left out
 *   of the sum and of the count; `positions: 'last'` scores only the last sequence position.
 *   With an `objective`, a training objective's own loss over one prediction per example takes
 *   the mean's place (train/objective-losses.ts: example weights, the IRMv1 penalty).
 * mse: the mean of (output − target)² over every element.
 * score: the sum over examples (and positions) of the target class's score — not a training loss:
 *   its gradient with respect to an example's input is that example's score gradient, for attribution.
 *
 * An output that is already a Softmax or LogSoftmax over its last axis (common in exports for
 * deployment) holds probabilities or log-probabilities, not logits: cross-entropy is then taken on
 * the Softmax's input, the logits z, since −log softmax(z)[t] is the model's own −log p[t] (or
 * −log_p[t]) computed stably, and its gradient is PyTorch's for F.cross_entropy(z, t).
 */
import { int, string as str, valueInfo, type AttributeValue, type Dim } from '../graph/builder.ts';
import { derive, pruneUnused } from '../graph/edit.ts';
import type { GraphIndex } from '../graph/graph.ts';
import { toNumber, type ModelProto } from '../onnx/proto.ts';
import type { DType, Tensor } from '../tensor.ts';
import { InputError } from '../errors.ts';
import { Emitter } from './emitter.ts';
import { AutodiffError } from './errors.ts';
import { lastPositionOf } from './last-position.ts';
import { defaultOpset } from '../onnx/model-file.ts';

export type LossKind = 'cross-entropy' | 'mse' | 'score';

export interface LossSpec {
  kind: LossKind;
  /** Which model output is scored (default: the first). */
  output?: string;
  /** Cross-entropy on sequences: every position (default) or the last only. */
  positions?: 'all' | 'last';
  /**
   * With positions 'last': compute only the last position through the position-wise tail of the
   * model (last-position.ts) and score that; the loss graph's scores output is then [batch, 1,
   * classes] and values before the cut lose their other positions' gradients. For training only.
   */
  sliceEarly?: boolean;
  /** Cross-entropy: targets equal to this are ignored (PyTorch's ignore_index). */
  ignoreIndex?: number;
  /** Cross-entropy: a training objective's loss in place of the mean (one prediction per example). */
  objective?: ObjectiveLoss;
}

export const TARGET_INPUT = 'teardown::target';

/** A graph input a loss reads besides the target (float32; 'batch' marks the rows' axis). */
export interface LossInput {
  name: string;
  dims: Dim[];
}

/** What an objective's loss is written with: [rows, classes] logits z and [rows] int64 targets y. */
export interface ObjectiveLossTerms {
  /** Emits one node of the loss graph; `name` names its output ('loss' for the loss itself). */
  op(
    type: string,
    inputs: string[],
    attributes?: Record<string, AttributeValue | undefined>,
    name?: string,
  ): string;
  int64s(values: number[]): string;
  scalar(value: number, dtype: DType): string;
  logits: string;
  targets: string;
  /** log softmax(zᵢ)[yᵢ], [rows, 1] (emitted when called). */
  logProbabilityOfTargets(): string;
}

/** A training objective's loss (train/objective-losses.ts), emitted by appendLoss on cross-entropy's terms. */
export interface ObjectiveLoss {
  /** For messages: 'example weights', 'the IRMv1 penalty'. */
  describe: string;
  /** The loss value and the inputs it reads besides the target. */
  emit(terms: ObjectiveLossTerms): { loss: string; inputs: LossInput[] };
}

export interface LossGraph {
  proto: ModelProto;
  loss: string;
  /** The model's scores as the loss graph outputs them: the scored output, or its last position with sliceEarly. */
  scores: string;
  /** dtype the target must be fed as. */
  targetDtype: DType;
}

/**
 * `outputShape`: the scored output's probed dims ('batch' marks the batch axis); `shapeOf`: every
 * value's probed dims, needed by sliceEarly.
 */
/**
 * Class targets must name a class the scores have (0 to classes − 1) or be the ignore index:
 * anything else made onnxruntime fail inside its loss kernel ("GatherElements op: Out of range").
 * `firstRow` numbers the rows in messages when the targets are one batch of a dataset, and
 * `source` names the file they came from.
 */
export function checkClassTargets(
  target: Tensor,
  classes: number,
  ignoreIndex: number | undefined,
  firstRow = 0,
  source?: string,
): void {
  const perRow = target.dims.slice(1).reduce((a, b) => a * b, 1);
  for (let k = 0; k < target.data.length; k++) {
    const value = Number(target.data[k]);
    if (value === ignoreIndex || (value >= 0 && value < classes)) continue;
    const where =
      perRow > 1
        ? `row ${firstRow + Math.floor(k / perRow)}, position ${k % perRow}`
        : `row ${firstRow + k}`;
    const ignored =
      ignoreIndex === undefined ? 'no ignore index is set' : `the ignore index is ${ignoreIndex}`;
    const file = source === undefined ? '' : ` of '${source}'`;
    throw new InputError(
      `Target ${where}${file} is ${value}, but the model scores ${classes} classes (0 to ${classes - 1}) and ${ignored}: give class indices in range, or mark left-out positions with the ignore index (--ignore-index; PyTorch's default is -100).`,
    );
  }
}

/** An output computed by a Softmax or LogSoftmax over its last axis, and the logits it reads. */
export interface NormalizedOutput {
  output: string;
  op: 'Softmax' | 'LogSoftmax';
  node: string;
  logits: string;
}

/** The Softmax or LogSoftmax over the last axis that writes `output`, if one does (`rank`: the output's). */
export function normalizedOutput(
  index: GraphIndex,
  output: string,
  rank: number,
): NormalizedOutput | undefined {
  const producer = index.producer.get(output);
  const node = producer === undefined ? undefined : index.nodes[producer];
  if (!node || (node.opType !== 'Softmax' && node.opType !== 'LogSoftmax') || node.domain)
    return undefined;
  const axis = node.attribute.find((attribute) => attribute.name === 'axis')?.i;
  // Opset 13 made the default axis −1; before it, 1 (over the flattened trailing axes): the last axis only for rank 2.
  const defaultAxis = defaultOpset(index.proto) >= 13 ? -1 : 1;
  const value = axis === undefined || axis === null ? defaultAxis : toNumber(axis);
  if ((value < 0 ? value + rank : value) !== rank - 1) return undefined;
  return { output, op: node.opType, node: node.name, logits: node.input[0] };
}

/** The value a cross-entropy is taken on for `output`: the logits before a final Softmax/LogSoftmax, or the output itself. */
export function crossEntropyLogits(index: GraphIndex, output: string, rank: number): string {
  return normalizedOutput(index, output, rank)?.logits ?? output;
}

export function appendLoss(
  index: GraphIndex,
  spec: LossSpec,
  outputShape: readonly Dim[],
  shapeOf?: (value: string) => readonly Dim[] | undefined,
): LossGraph {
  const outputRank = outputShape.length;
  const proto = index.proto;
  const output = spec.output ?? proto.graph.output[0].name;
  const dtype = index.dtype(output);
  if (dtype !== 'float32' && dtype !== 'float64')
    throw new AutodiffError(
      `Output '${output}' holds ${dtype ?? 'values of unknown type'}: a loss needs float scores.`,
    );
  const emitter = Emitter.forGraph(index);
  const op = (
    type: string,
    inputs: string[],
    attributes: Record<string, AttributeValue | undefined> = {},
    name?: string,
  ) => emitter.op(type, inputs, attributes, 'teardown/loss', name);
  const ints64 = (values: number[]) => emitter.int64s(values);
  const END = Number.MAX_SAFE_INTEGER;
  let loss: string;
  let targetDtype: DType;
  let scores = output;
  if (spec.kind === 'mse') {
    targetDtype = dtype;
    const difference = op('Sub', [output, TARGET_INPUT]);
    loss = op('ReduceMean', [op('Mul', [difference, difference])], { keepdims: int(0) }, 'loss'); // mean (y − t)²
  } else {
    targetDtype = 'int64';
    // The score kind reads the output as it is (a probability is a fine attribution target).
    let logits =
      spec.kind === 'cross-entropy' ? crossEntropyLogits(index, output, outputRank) : output;
    let target = TARGET_INPUT;
    if (spec.positions === 'last') {
      if (outputRank < 3)
        throw new AutodiffError(
          `--loss-positions last needs sequence scores [batch, seq, classes]; '${output}' has rank ${outputRank}.`,
        );
      logits =
        spec.sliceEarly && shapeOf
          ? lastPositionOf(index, emitter, logits, shapeOf)
          : op('Slice', [logits, ints64([-1]), ints64([END]), ints64([1])]); // [batch, 1, classes]
      if (spec.sliceEarly) scores = logits;
      // One target per sequence [batch] or per position [batch, seq]: view as [batch, k] and keep the last column.
      const batchAndRest = op(
        'Concat',
        [op('Slice', [op('Shape', [target]), ints64([0]), ints64([1])]), ints64([-1])],
        { axis: int(0) },
      );
      target = op('Slice', [
        op('Reshape', [target, batchAndRest]),
        ints64([-1]),
        ints64([END]),
        ints64([1]),
      ]); // [batch, 1]
    }
    // [rows, classes] and [rows]: scores of rank 2 (one prediction per example) already are
    const flat = outputRank === 2 && spec.positions !== 'last';
    const flatLogits = flat
      ? logits
      : op('Reshape', [
          logits,
          op(
            'Concat',
            [ints64([-1]), op('Slice', [op('Shape', [logits]), ints64([-1]), ints64([END])])],
            { axis: int(0) },
          ),
        ]);
    const flatTarget = flat ? target : op('Reshape', [target, ints64([-1])]);
    if (spec.kind === 'score') {
      const picked = op(
        'GatherElements',
        [flatLogits, op('Unsqueeze', [flatTarget, ints64([1])])],
        { axis: int(1) },
      ); // [rows, 1]
      loss = op('ReduceSum', [picked], { keepdims: int(0) }, 'loss');
      return finishLoss(
        proto,
        emitter,
        loss,
        targetDtype,
        dtype,
        targetShape(spec, outputShape),
        [],
        { original: output, value: scores },
      );
    }
    const pick = (targets: string) =>
      op(
        'GatherElements',
        [op('LogSoftmax', [flatLogits], { axis: int(1) }), op('Unsqueeze', [targets, ints64([1])])],
        { axis: int(1) },
      ); // [rows, 1]: log p(target)
    if (spec.objective) {
      if (spec.ignoreIndex !== undefined || spec.positions === 'last')
        throw new AutodiffError(
          `A training objective's loss (${spec.objective.describe}) scores one prediction per example: not with an ignore index or --loss-positions last.`,
        );
      const terms: ObjectiveLossTerms = {
        op,
        int64s: ints64,
        scalar: (value, type) => emitter.scalar(value, type),
        logits: flatLogits,
        targets: flatTarget,
        logProbabilityOfTargets: () => pick(flatTarget),
      };
      const objective = spec.objective.emit(terms);
      return finishLoss(
        proto,
        emitter,
        objective.loss,
        'int64',
        dtype,
        targetShape(spec, outputShape),
        objective.inputs,
        { original: output, value: scores },
      );
    }
    // −mean log p(target) over the rows not ignored, in one op with a short gradient rule (rules/losses.ts)
    const ignore = spec.ignoreIndex === undefined ? undefined : int(spec.ignoreIndex);
    loss = op(
      'SoftmaxCrossEntropyLoss',
      [flatLogits, flatTarget],
      { reduction: str('mean'), ignore_index: ignore },
      'loss',
    );
  }
  return finishLoss(proto, emitter, loss, targetDtype, dtype, targetShape(spec, outputShape), [], {
    original: output,
    value: scores,
  });
}

/** The model with the loss nodes appended, the target (and any extra loss input) as new inputs and the loss as a new output. */
function finishLoss(
  proto: ModelProto,
  emitter: Emitter,
  loss: string,
  targetDtype: DType,
  dtype: DType,
  targetDims: Dim[] | undefined,
  extra: LossInput[] = [],
  scores?: { original: string; value: string },
): LossGraph {
  const sliced = scores !== undefined && scores.value !== scores.original;
  const outputs = sliced
    ? proto.graph.output.map((info) =>
        info.name === scores.original ? valueInfo(scores.value, dtype) : info,
      )
    : proto.graph.output;
  let graph = derive(proto.graph, {
    node: [...proto.graph.node, ...emitter.nodes],
    initializer: [...proto.graph.initializer, ...emitter.initializers],
    input: [
      ...proto.graph.input,
      valueInfo(TARGET_INPUT, targetDtype, targetDims),
      ...extra.map((input) => valueInfo(input.name, 'float32', input.dims)),
    ],
    output: [...outputs, valueInfo(loss, dtype, [])],
  });
  if (sliced) graph = derive(graph, { node: pruneUnused(graph) }); // the full-length tail nothing reads any more
  return {
    proto: derive(proto, { graph }),
    loss,
    targetDtype,
    scores: scores?.value ?? proto.graph.output[0].name,
  };
}

/** The target's dims: the output's for MSE, without the class axis for cross-entropy; unknown when only the last position is scored. */
function targetShape(spec: LossSpec, outputShape: readonly Dim[]): Dim[] | undefined {
  if (spec.kind === 'mse') return [...outputShape];
  if (spec.positions === 'last') return undefined;
  return outputShape.slice(0, -1);
}
