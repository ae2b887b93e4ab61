/** Shape and layout: views, permutations, joins, windows, padding, repetition. */
import { int, ints, string as str } from '../../graph/builder.ts';
import { DataType } from '../../onnx/proto.ts';
import { AutodiffError } from '../errors.ts';
import { axisOf, type GradContext } from '../context.ts';
import { dy, gradientByCopies, type GradientRule, reshapeDims } from './shared.ts';

export const SHAPE_RULES: Record<string, GradientRule> = {
  Reshape: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Flatten: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Squeeze: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Unsqueeze: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Transpose: (c) => {
    // dX = Transpose(dY, perm⁻¹)
    const perm = c.attrInts('perm') ?? [...Array(c.rank(c.x(0))).keys()].reverse();
    const inverse = perm.map((_, axis) => perm.indexOf(axis));
    return [c.op('Transpose', [dy(c)], { perm: ints(inverse) })];
  },
  Concat: (c) => {
    // dXᵢ = the slice of dY that Xᵢ filled
    const axis = axisOf(c.attrInt('axis', 0), c.rank(c.x(0)));
    const sizes = c.op(
      'Concat',
      c.node.input.map((input) => c.op('Gather', [c.op('Shape', [input]), c.int64s([axis])])),
      { axis: int(0) },
    );
    return c.opN('Split', [dy(c), sizes], { axis: int(axis) }, c.inputCount());
  },
  Split: (c) => {
    // dX = Concat of the dYᵢ (zeros where an output has no gradient)
    const axis = axisOf(c.attrInt('axis', 0), c.rank(c.x(0)));
    const parts = c.node.output.map((_, index) => c.dy(index) ?? c.zerosLike(c.y(index)));
    return [c.op('Concat', parts, { axis: int(axis) })];
  },
  Slice: (c) => [sliceGradient(c)],
  Pad: (c) => [padGradient(c)],
  Tile: (c) => [tileGradient(c), undefined],
  CenterCropPad: (c) => [centerCropPadGradient(c), undefined],
  DepthToSpace: (c) => [depthToSpaceGradient(c)],
  ReverseSequence: (c) => [
    c.op('ReverseSequence', [dy(c), c.x(1)], {
      batch_axis: int(c.attrInt('batch_axis', 1)),
      time_axis: int(c.attrInt('time_axis', 0)),
    }),
    undefined,
  ], // a permutation that is its own inverse
  SpaceToDepth: (c) => [spaceToDepthGradient(c)],
  Trilu: (c) => [
    c.op('Trilu', c.x(1) ? [dy(c), c.x(1)] : [dy(c)], { upper: int(c.attrInt('upper', 1)) }),
  ], // dX = Trilu(dY): the kept triangle passes through
};

/** Slice with step 1: dX = dY padded back with zeros to X's shape; the pads come from the (possibly run-time) starts and ends. */
function sliceGradient(c: GradContext): string {
  const x = c.x(0);
  const rank = c.rank(x);
  const steps = c.constantOrUndefined(c.x(4));
  if (c.x(4) && (!steps || steps.some((step) => step !== 1))) return steppedSliceGradient(c);
  const axesValues = c.constantOrUndefined(c.x(3));
  if (c.x(3) && !axesValues)
    throw new AutodiffError(`Slice with run-time axes (${c.describe()}) has no gradient rule.`);
  const axes = (axesValues ?? [...Array(rank).keys()]).map((axis) => axisOf(axis, rank));
  // Per sliced axis: dim = Shape(X)[axis]; start, end normalised (negative from the end) and clamped to [0, dim].
  const sizes = c.op('Gather', [c.op('Shape', [x]), c.int64s(axes)]);
  const clamp = (value: string) => {
    const wrapped = c.op('Where', [
      c.op('Less', [value, c.int64s([0])]),
      c.add(value, sizes),
      value,
    ]);
    return c.op('Max', [c.op('Min', [wrapped, sizes]), c.int64s([0])]);
  };
  const asInt64 = (value: string) => c.op('Cast', [value], { to: int(DataType.INT64) });
  const start = clamp(asInt64(c.x(1)));
  const end = c.op('Max', [clamp(asInt64(c.x(2))), start]);
  // pads = [begin₀..begin_{r−1}, end₀..end_{r−1}], scattered at the sliced axes.
  const zeros = c.int64s(Array(2 * rank).fill(0));
  const positions = c.int64s([...axes, ...axes.map((axis) => axis + rank)]);
  const pads = c.op(
    'ScatterElements',
    [zeros, positions, c.op('Concat', [start, c.sub(sizes, end)], { axis: int(0) })],
    { axis: int(0) },
  );
  return c.op('Pad', [dy(c), pads], { mode: str('constant') });
}

/** Slice with steps other than 1 (x[::2], torch.flip's step −1) or computed at run time: each cell of Y is a copy of one of X. */
function steppedSliceGradient(c: GradContext): string {
  return gradientByCopies(c, (positions) => c.op('Slice', [positions, ...c.node.input.slice(1)]));
}

/** Constant padding by constant, non-negative pads: dX = the unpadded window of dY. Other pads and modes: copiedPadGradient. */
function padGradient(c: GradContext): string {
  const x = c.x(0);
  const rank = c.rank(x);
  const pads = c.constantOrUndefined(c.x(1));
  const axesValues = c.x(3) ? c.constantOrUndefined(c.x(3)) : [...Array(rank).keys()];
  if (
    c.attrString('mode', 'constant') !== 'constant' ||
    !pads ||
    !axesValues ||
    pads.some((pad) => pad < 0)
  )
    return copiedPadGradient(c);
  const axes = axesValues.map((axis) => axisOf(axis, rank));
  const begins = axes.map((_, k) => pads[k]);
  const ends = c.op('Add', [
    c.op('Gather', [c.op('Shape', [x]), c.int64s(axes)]),
    c.int64s(begins),
  ]);
  return c.op('Slice', [dy(c), c.int64s(begins), ends, c.int64s(axes)]);
}

/** Pad in any mode (reflect, edge, wrap) or with negative pads (cropping): each cell of Y is a copy of one of X or the constant (source −1). */
function copiedPadGradient(c: GradContext): string {
  return gradientByCopies(c, (positions) =>
    c.op('Pad', [positions, c.x(1), c.int64(-1), ...(c.x(3) ? [c.x(3)] : [])], {
      mode: str(c.attrString('mode', 'constant')),
    }),
  );
}

/** CenterCropPad (opset 18): cells cropped or zero-padded around the centre; sources padded as 0 are shifted to −1. */
function centerCropPadGradient(c: GradContext): string {
  const axes = c.attrInts('axes');
  return gradientByCopies(c, (positions) =>
    c.sub(
      c.op('CenterCropPad', [c.add(positions, c.int64(1)), c.x(1)], {
        axes: axes ? ints(axes) : undefined,
      }),
      c.int64(1),
    ),
  );
}

/** Tile by constant repeats r: dX = Σ over the r copies along each axis (dY viewed as [r₀, d₀, r₁, d₁, ...]). */
function tileGradient(c: GradContext): string {
  const dims = reshapeDims(c, c.x(0));
  const repeats = c.constantInput(1, 'repeats');
  const split = c.op('Reshape', [
    dy(c),
    c.int64s(dims.flatMap((size, axis) => [repeats[axis], size])),
  ]); // [r₀, d₀, r₁, d₁, ...]
  return c.reduceSum(
    split,
    dims.map((_, axis) => 2 * axis),
    false,
  ); // [d₀, d₁, ...]
}

/**
 * DepthToSpace moves blocks of b×b channels into space: X [N, C, H, W] is viewed as [N, b, b, C/b², H, W]
 * (DCR) or [N, C/b², b, b, H, W] (CRD), permuted to [N, C/b², H, b, W, b] and merged. dX undoes it: dY viewed
 * as [N, C/b², H, b, W, b], the inverse permutation, X's shape.
 */
function depthToSpaceGradient(c: GradContext): string {
  const [batch, channels, height, width] = reshapeDims(c, c.x(0));
  const block = c.attrInt('blocksize', 1);
  const view = c.op('Reshape', [
    dy(c),
    c.int64s([batch, channels / (block * block), height, block, width, block]),
  ]); // [N, C/b², H, b, W, b]
  const inverse = c.attrString('mode', 'DCR') === 'CRD' ? [0, 1, 3, 5, 2, 4] : [0, 3, 5, 1, 2, 4];
  return c.reshapeLike(c.op('Transpose', [view], { perm: ints(inverse) }), c.x(0));
}

/**
 * SpaceToDepth: X [N, C, H, W] viewed as [N, C, H/b, b, W/b, b], permuted to [N, b, b, C, H/b, W/b], merged.
 * dX: dY viewed as [N, b, b, C, H/b, W/b], the inverse permutation, X's shape.
 */
function spaceToDepthGradient(c: GradContext): string {
  const [batch, channels, height, width] = reshapeDims(c, c.x(0));
  const block = c.attrInt('blocksize', 1);
  const view = c.op('Reshape', [
    dy(c),
    c.int64s([batch, block, block, channels, height / block, width / block]),
  ]);
  return c.reshapeLike(c.op('Transpose', [view], { perm: ints([0, 3, 4, 1, 5, 2]) }), c.x(0));
}
