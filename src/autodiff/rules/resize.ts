/**
 * Resize (nearest and linear, any rank). Resizing is separable: along each resized axis, output
 * cell o is a fixed weighted sum of input cells, Y = X ×ₐ Mₐ with Mₐ [out, in] built from the
 * node's attributes and the static sizes. So dX = dY ×ₐ Mₐᵀ axis by axis — a MatMul of dY (the
 * axis moved last) with the constant Mₐ. Cubic interpolation, antialiasing and
 * tf_crop_and_resize are refused by name.
 */
import { ints } from '../../graph/builder.ts';
import { AutodiffError } from '../errors.ts';
import { axisOf, type GradContext } from '../context.ts';
import { dy, type GradientRule, reshapeDims } from './shared.ts';

export const RESIZE_RULES: Record<string, GradientRule> = {
  Resize: (c) => [resizeGradient(c)],
};

/** One resized axis: input and output lengths and the scale the coordinate transform divides by. */
interface ResizedAxis {
  axis: number;
  inSize: number;
  outSize: number;
  scale: number;
}

/** Entries of the weight matrices past which the rule refuses (a 4096 → 4096 resize is 16M). */
const MAX_MATRIX_ENTRIES = 1 << 24;

function resizeGradient(c: GradContext): string {
  const mode = c.attrString('mode', 'nearest');
  const transform = c.attrString('coordinate_transformation_mode', 'half_pixel');
  if (mode === 'cubic')
    throw new AutodiffError(
      `Resize with mode 'cubic' (${c.describe()}) has no gradient rule: only 'nearest' and 'linear' have one.`,
    );
  if (mode !== 'nearest' && mode !== 'linear')
    throw new AutodiffError(
      `Resize with mode '${mode}' (${c.describe()}) has no gradient rule: only 'nearest' and 'linear' have one.`,
    );
  if (c.attrInt('antialias', 0) !== 0)
    throw new AutodiffError(
      `Resize with antialias=1 (${c.describe()}) has no gradient rule: only resizing without antialiasing has one.`,
    );
  if (!COORDINATE_TRANSFORMS[transform])
    throw new AutodiffError(
      `Resize with coordinate_transformation_mode '${transform}' (${c.describe()}) has no gradient rule: ${Object.keys(COORDINATE_TRANSFORMS).join(', ')} have one.`,
    );
  const axes = resizedAxes(c);
  if (
    mode === 'nearest' &&
    transform === 'asymmetric' &&
    c.attrString('nearest_mode', 'round_prefer_floor') === 'floor'
  ) {
    const blocks = integerBlocks(c, axes);
    if (blocks) return blocks;
  }
  let grad = dy(c);
  for (const resized of axes)
    grad = alongAxis(c, grad, resized, resizeMatrix(c, resized, mode, transform));
  return grad;
}

/**
 * Output coordinate x → input coordinate, per coordinate_transformation_mode (ONNX Resize):
 * half_pixel (x + ½)/s − ½; pytorch_half_pixel the same unless the output has one cell (then 0);
 * align_corners x·(in − 1)/(out − 1); asymmetric x/s; half_pixel_symmetric half_pixel shifted so
 * the sampled span is centred when out is not exactly s·in.
 */
const COORDINATE_TRANSFORMS: Record<string, (x: number, a: ResizedAxis) => number> = {
  half_pixel: (x, { scale }) => (x + 0.5) / scale - 0.5,
  pytorch_half_pixel: (x, { scale, outSize }) => (outSize > 1 ? (x + 0.5) / scale - 0.5 : 0),
  align_corners: (x, { inSize, outSize }) =>
    outSize === 1 ? 0 : (x * (inSize - 1)) / (outSize - 1),
  asymmetric: (x, { scale }) => x / scale,
  half_pixel_symmetric: (x, { scale, inSize, outSize }) => {
    const adjustment = outSize / (scale * inSize);
    return (inSize / 2) * (1 - adjustment) + (x + 0.5) / scale - 0.5;
  },
};

/** The rounding of nearest_mode, applied to an input coordinate. */
const NEAREST: Record<string, (x: number) => number> = {
  round_prefer_floor: (x) => (x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x)),
  round_prefer_ceil: (x) => (x === Math.floor(x) + 0.5 ? Math.ceil(x) : Math.round(x)),
  floor: Math.floor,
  ceil: Math.ceil,
};

/** M [out, in]: Y[o] = Σᵢ M[o, i]·X[i] along one axis. Linear: the two neighbours of the clamped coordinate; nearest: the rounded one, clamped. */
function resizeMatrix(
  c: GradContext,
  resized: ResizedAxis,
  mode: string,
  transform: string,
): number[] {
  const { inSize, outSize } = resized;
  if (inSize * outSize > MAX_MATRIX_ENTRIES)
    throw new AutodiffError(
      `Resize ${c.describe()} from ${inSize} to ${outSize} along axis ${resized.axis} has no gradient rule: its weight matrix would hold more than ${MAX_MATRIX_ENTRIES} entries.`,
    );
  const toInput = COORDINATE_TRANSFORMS[transform];
  const nearestMode = c.attrString('nearest_mode', 'round_prefer_floor');
  const round = NEAREST[nearestMode];
  if (mode === 'nearest' && !round)
    throw new AutodiffError(
      `Resize with nearest_mode '${nearestMode}' (${c.describe()}) has no gradient rule.`,
    );
  const matrix = new Array<number>(outSize * inSize).fill(0);
  const clamp = (index: number) => Math.min(Math.max(index, 0), inSize - 1);
  for (let o = 0; o < outSize; o++) {
    const x = toInput(o, resized);
    if (mode === 'nearest') {
      matrix[o * inSize + clamp(round(x))] = 1;
      continue;
    }
    const at = clamp(x);
    const low = Math.floor(at);
    const high = Math.min(low + 1, inSize - 1);
    matrix[o * inSize + low] += 1 - (at - low);
    matrix[o * inSize + high] += at - low;
  }
  return matrix;
}

/** dY ×ₐ M: the axis moved last, multiplied by M [out, in], moved back. */
function alongAxis(
  c: GradContext,
  grad: string,
  { axis, inSize, outSize }: ResizedAxis,
  matrix: number[],
): string {
  const rank = c.rank(c.x(0));
  const weights = c.constant(matrix, [outSize, inSize], c.x(0));
  if (axis === rank - 1) return c.op('MatMul', [grad, weights]);
  const perm = [...[...Array(rank).keys()].filter((k) => k !== axis), axis];
  const moved = c.op('MatMul', [c.op('Transpose', [grad], { perm: ints(perm) }), weights]); // [..., in]
  return c.op('Transpose', [moved], { perm: ints(perm.map((_, k) => perm.indexOf(k))) });
}

/**
 * The axes whose length or coordinates change, with their scales: from the constant `scales`
 * input, or from `sizes` (scale = out/in, or one scale for all `axes` under keep_aspect_ratio_policy
 * not_larger / not_smaller, opset 18), or — when `sizes` is computed at run time — from the static
 * output shape. At opset 18+, `axes` names the axes that scales and sizes list.
 */
function resizedAxes(c: GradContext): ResizedAxis[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const listed = (c.attrInts('axes') ?? [...Array(rank).keys()]).map((axis) => axisOf(axis, rank));
  const inShape = c.shape(x);
  const outShape = c.shape(c.y(0));
  const scalesGiven = c.x(2) ? c.constantOrUndefined(c.x(2)) : undefined;
  const sizesGiven = c.x(3) ? c.constantOrUndefined(c.x(3)) : undefined;
  const scales = new Array<number | undefined>(rank).fill(undefined);
  if (scalesGiven?.length)
    listed.forEach((axis, k) => {
      scales[axis] = scalesGiven[k];
    });
  else if (c.x(2) && !scalesGiven && !c.x(3))
    throw new AutodiffError(
      `Resize ${c.describe()} with scales computed at run time has no gradient rule: export with constant scales or sizes.`,
    );
  else if (sizesGiven?.length) {
    const policy = c.attrString('keep_aspect_ratio_policy', 'stretch');
    const ratios = listed.map((axis, k) => sizesGiven[k] / staticSize(c, inShape[axis], axis));
    const shared =
      policy === 'not_larger'
        ? Math.min(...ratios)
        : policy === 'not_smaller'
          ? Math.max(...ratios)
          : undefined;
    listed.forEach((axis, k) => {
      scales[axis] = shared ?? ratios[k];
    });
  }
  const axes: ResizedAxis[] = [];
  for (let axis = 0; axis < rank; axis++) {
    if (scales[axis] === 1 || (scales[axis] === undefined && inShape[axis] === outShape[axis]))
      continue; // unchanged: the identity
    const inSize = staticSize(c, inShape[axis], axis);
    const outSize = staticSize(c, outShape[axis], axis);
    axes.push({ axis, inSize, outSize, scale: scales[axis] ?? outSize / inSize });
  }
  return axes;
}

function staticSize(c: GradContext, dim: unknown, axis: number): number {
  if (typeof dim !== 'number')
    throw new AutodiffError(
      `The gradient of ${c.describe()} needs the static length of axis ${axis}, which is '${String(dim)}'.`,
    );
  return dim;
}

/**
 * Nearest neighbour, asymmetric coordinates, rounding down, integer factors sᵢ (nn.Upsample's
 * export): each input cell is copied into an s₀ × s₁ × … block, so dX = the sum of dY over each
 * block — a Reshape and a ReduceSum, cheaper than the matrix products. undefined otherwise.
 */
function integerBlocks(c: GradContext, axes: ResizedAxis[]): string | undefined {
  if (
    axes.some(
      ({ scale, inSize, outSize }) =>
        !Number.isInteger(scale) || scale < 1 || outSize !== inSize * scale,
    )
  )
    return undefined;
  const dims = reshapeDims(c, c.x(0));
  const factors = dims.map((_, axis) => axes.find((resized) => resized.axis === axis)?.scale ?? 1);
  const split = c.op('Reshape', [
    dy(c),
    c.int64s(dims.flatMap((size, axis) => [size, factors[axis]])),
  ]); // [d₀, s₀, d₁, s₁, ...]
  return c.reduceSum(
    split,
    dims.map((_, axis) => 2 * axis + 1),
    false,
  );
}
