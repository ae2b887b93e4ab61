/** Losses computed inside the graph. */
import { int } from '../../graph/builder.ts';
import { DataType } from '../../onnx/proto.ts';
import { AutodiffError } from '../errors.ts';
import type { GradContext } from '../context.ts';
import { dy, type GradientRule } from './shared.ts';

export const LOSS_RULES: Record<string, GradientRule> = {
  SoftmaxCrossEntropyLoss: (c) => [softmaxCrossEntropyGradient(c), undefined, undefined],
};

/** Classes from which p − y is a scatter at the labels rather than a one-hot subtracted (see below). */
const SCATTER_FROM_CLASSES = 1024;

/**
 * SoftmaxCrossEntropyLoss over scores [N, C] (class weights aside): with p = softmax(scores) =
 * e^log_prob and y the one-hot labels, row i's loss −log p_{i,yᵢ} has gradient p_i − y_i, so
 *   mean:  dS = (p − y)·dL / n,   sum: dS = (p − y)·dL,   none: dS = (p − y)·dLᵢ,
 * where rows whose label is ignore_index get 0 and n counts the others. A gradient reaching the
 * log_prob output adds LogSoftmax's: dlogp − p·Σ_c dlogp.
 *
 * With many classes, p − y is p with p_{i,yᵢ} − 1 written at each row's label (GatherElements,
 * ScatterElements): the same values as subtracting a one-hot, without making the [N, C] one-hot
 * and a pass over it (GPT-2's [1024, 50257] scores: 206 MB, 0.4 s a step). With few, the one-hot
 * costs next to nothing and is kept (an MLP's [128, 10]: no difference measurable against the
 * ~1 ms step). An ignored row's label is replaced by 0 to stay in range; the row is zeroed after.
 */

function softmaxCrossEntropyGradient(c: GradContext): string | undefined {
  if (!c.needs(0)) return undefined;
  if (c.x(2))
    throw new AutodiffError(
      `SoftmaxCrossEntropyLoss with class weights (${c.describe()}) has no gradient rule.`,
    );
  if (c.rank(c.x(0)) !== 2)
    throw new AutodiffError(
      `SoftmaxCrossEntropyLoss over scores of rank ${c.rank(c.x(0))} (${c.describe()}) has no gradient rule: only [N, C] scores have one.`,
    );
  const [scores, labels] = [c.x(0), c.x(1)];
  const probabilities = c.op('Exp', [c.y(1)]);
  const grads: string[] = [];
  if (c.dy(0)) {
    const ignored = c.attr('ignore_index') ? c.attrInt('ignore_index', 0) : undefined;
    const isKept =
      ignored === undefined
        ? undefined
        : c.op('Not', [c.op('Equal', [labels, c.constant([ignored], [1], labels)])]); // [N]
    const asFloat = (value: string) =>
      c.op('Cast', [value], {
        to: int(c.dtype(scores) === 'float64' ? DataType.DOUBLE : DataType.FLOAT),
      });
    const classes = c.shape(scores)[1];
    let difference =
      typeof classes === 'number' && classes >= SCATTER_FROM_CLASSES
        ? minusOneAtLabels(c, probabilities, labels, isKept, scores)
        : minusOneHot(c, probabilities, labels, scores);
    const kept = isKept && asFloat(isKept);
    if (kept) difference = c.mul(difference, c.unsqueeze(kept, [1]));
    const reduction = c.attrString('reduction', 'mean');
    if (reduction === 'none') grads.push(c.mul(difference, c.unsqueeze(dy(c), [1])));
    else if (reduction === 'sum') grads.push(c.mul(difference, dy(c)));
    else {
      const count = kept ? c.reduceSum(kept, [0], false) : asFloat(c.op('Size', [labels]));
      grads.push(c.mul(difference, c.div(dy(c), count)));
    }
  }
  const dLogProbabilities = c.dy(1);
  if (dLogProbabilities)
    grads.push(
      c.sub(dLogProbabilities, c.mul(probabilities, c.reduceSum(dLogProbabilities, [1], true))),
    );
  return grads.length === 2 ? c.add(grads[0], grads[1]) : grads[0];
}

/** p − y as p with p_{i,yᵢ} − 1 scattered at the labels (an ignored row's label read as 0); `scores` gives the dtype. */
function minusOneAtLabels(
  c: GradContext,
  probabilities: string,
  labels: string,
  isKept: string | undefined,
  scores: string,
): string {
  const column = c.unsqueeze(
    isKept ? c.op('Where', [isKept, labels, c.constant([0], [1], labels)]) : labels,
    [1],
  ); // [N, 1]
  const atLabel = c.sub(
    c.op('GatherElements', [probabilities, column], { axis: int(1) }),
    c.scalar(1, scores),
  ); // p_{i,yᵢ} − 1
  return c.op('ScatterElements', [probabilities, column, atLabel], { axis: int(1) });
}

/** p − y with y the [N, C] one-hot of the labels; `scores` gives the dtype and the class count. */
function minusOneHot(
  c: GradContext,
  probabilities: string,
  labels: string,
  scores: string,
): string {
  const depth = c.op('Slice', [c.op('Shape', [scores]), c.int64s([1]), c.int64s([2])]);
  // onnxruntime's OneHot makes float32 but not float64 values
  const oneHot = c.op('OneHot', [labels, depth, c.floats([0, 1])], { axis: int(-1) }); // [N, C]
  return c.sub(
    probabilities,
    c.dtype(scores) === 'float64' ? c.op('Cast', [oneHot], { to: int(DataType.DOUBLE) }) : oneHot,
  );
}
