/** Reductions over axes (Reduce*) and the running sum along one (CumSum). */
import { int } from '../../graph/builder.ts';
import { AutodiffError } from '../errors.ts';
import { axisOf, type Grad, type GradContext } from '../context.ts';
import { dy, type GradientRule, castCode } from './shared.ts';

export const REDUCTION_RULES: Record<string, GradientRule> = {
  ReduceMean: (c) => reduceGradient(c, true),
  ReduceSum: (c) => reduceGradient(c, false),
  ReduceMax: (c) => [extremeReduceGradient(c)],
  ReduceMin: (c) => [extremeReduceGradient(c)],
  ReduceL2: (c) => [c.mul(reducedLike(c, c.div(dy(c), c.y(0))), c.x(0))], // dX = dY·X / Y
  ReduceLogSumExp: (c) => [
    c.mul(reducedLike(c, dy(c)), c.op('Exp', [c.sub(c.x(0), reducedLike(c, c.y(0)))])),
  ], // dX = dY·e^(X − Y)
  ReduceSumSquare: (c) => [c.mul(reducedLike(c, dy(c)), c.mul(c.x(0), c.scalar(2, c.x(0))))], // dX = dY·2X
  ReduceL1: (c) => [c.mul(reducedLike(c, dy(c)), c.op('Sign', [c.x(0)]))], // dX = dY·sign(X)
  ReduceLogSum: (c) => [reducedLike(c, c.div(dy(c), c.op('Exp', [c.y(0)])))], // Y = ln Σ X: dX = dY / Σ X = dY / e^Y
  ReduceProd: (c) => [c.mul(reducedLike(c, dy(c)), c.div(reducedLike(c, c.y(0)), c.x(0)))], // dX = dY·Y / X (X without zeros)
  CumSum: (c) => [cumSumGradient(c), undefined],
};

/** ReduceSum/ReduceMean: dX = dY re-expanded over the reduced axes (÷ the count for a mean). */
function reduceGradient(c: GradContext, isMean: boolean): Grad[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const axesFromInput = c.opset >= 18 || (c.node.opType === 'ReduceSum' && c.opset >= 13);
  const axesValues = axesFromInput ? c.constantOrUndefined(c.x(1)) : c.attrInts('axes');
  if (axesFromInput && c.x(1) && !axesValues)
    throw new AutodiffError(
      `${c.describe()} reduces over axes computed at run time: no gradient rule.`,
    );
  const noopWhenEmpty = c.attrInt('noop_with_empty_axes', 0) === 1;
  if ((!axesValues || axesValues.length === 0) && noopWhenEmpty) return [dy(c)];
  const axes =
    !axesValues || axesValues.length === 0
      ? [...Array(rank).keys()]
      : axesValues.map((axis) => axisOf(axis, rank));
  const kept =
    c.attrInt('keepdims', 1) === 1
      ? dy(c)
      : c.unsqueeze(
          dy(c),
          [...axes].sort((a, b) => a - b),
        );
  let expanded = c.op('Expand', [kept, c.op('Shape', [x])]);
  if (isMean) {
    const count = c.div(
      c.op('Cast', [c.op('Size', [x])], { to: int(castCode(c.dtype(x))) }),
      c.op('Cast', [c.op('Size', [c.y(0)])], { to: int(castCode(c.dtype(x))) }),
    );
    expanded = c.div(expanded, count);
  }
  return [expanded];
}

/** The axes a Reduce* node reduces (constant), every axis when none are given. */
function reducedAxes(c: GradContext): number[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const axesFromInput = c.opset >= 18;
  const axesValues = axesFromInput ? c.constantOrUndefined(c.x(1)) : c.attrInts('axes');
  if (axesFromInput && c.x(1) && !axesValues)
    throw new AutodiffError(
      `${c.describe()} reduces over axes computed at run time: no gradient rule.`,
    );
  if (c.attrInt('noop_with_empty_axes', 0) === 1 && (!axesValues || axesValues.length === 0))
    throw new AutodiffError(
      `${c.describe()} with noop_with_empty_axes and no axes has no gradient rule.`,
    );
  return !axesValues || axesValues.length === 0
    ? [...Array(rank).keys()]
    : axesValues.map((axis) => axisOf(axis, rank));
}

/** A reduced value (dY or Y) broadcast back over X's shape: unsqueezed where keepdims was 0, then expanded. */
function reducedLike(c: GradContext, reduced: string): string {
  const kept =
    c.attrInt('keepdims', 1) === 1
      ? reduced
      : c.unsqueeze(
          reduced,
          [...reducedAxes(c)].sort((a, b) => a - b),
        );
  return c.op('Expand', [kept, c.op('Shape', [c.x(0)])]);
}

/** ReduceMax/ReduceMin: dY shared equally among the elements equal to the extremum (PyTorch's amax/amin rule). */
function extremeReduceGradient(c: GradContext): string {
  const x = c.x(0);
  const hits = c.op('Cast', [c.op('Equal', [x, reducedLike(c, c.y(0))])], {
    to: int(castCode(c.dtype(x))),
  });
  const axes = reducedAxes(c);
  const count = c.op('ReduceSum', [hits, c.int64s(axes)], { keepdims: int(1) });
  return c.div(c.mul(reducedLike(c, dy(c)), hits), c.op('Expand', [count, c.op('Shape', [x])]));
}

/** CumSum along an axis: dX = the cumulative sum of dY taken the other way (reverse flipped; exclusive kept). */
function cumSumGradient(c: GradContext): string {
  return c.op('CumSum', [dy(c), c.x(1)], {
    exclusive: int(c.attrInt('exclusive', 0)),
    reverse: int(1 - c.attrInt('reverse', 0)),
  });
}
