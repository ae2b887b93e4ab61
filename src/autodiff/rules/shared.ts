/** What every rule family shares: the rule type, dY, and small helpers. */
import { AutodiffError } from '../errors.ts';
import { int, string as str } from '../../graph/builder.ts';
import { DataType } from '../../onnx/proto.ts';
import type { Grad, GradContext } from '../context.ts';

export type GradientRule = (ctx: GradContext) => Grad[];

/** The gradient of the node's first output (every rule that runs has one). */
export const dy = (ctx: GradContext) => ctx.dy(0)!;

/** The ONNX element type code of a float dtype (Cast's `to`). */
export function castCode(dtype: string): number {
  return dtype === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
}

/** A value's dims for a Reshape: numbers, with its one symbolic axis (the batch) as −1. */
export function reshapeDims(c: GradContext, value: string): number[] {
  const dims = c.shape(value).map((dim) => (typeof dim === 'number' ? dim : -1));
  if (dims.filter((dim) => dim === -1).length > 1)
    throw new AutodiffError(
      `The gradient of ${c.describe()} needs the sizes of '${value}', which has more than one symbolic axis.`,
    );
  return dims;
}

/**
 * The gradient of an op whose every output cell is a copy of an input cell (or a constant): the
 * same op applied to X's flat positions (Range over X's size, shaped like X) names each cell's
 * source — `sourcesOf` returns that, with −1 where a cell holds no input — so dX = dY scatter-added
 * at the sources (a cell copied several times sums its copies).
 */
export function gradientByCopies(c: GradContext, sourcesOf: (positions: string) => string): string {
  const x = c.x(0);
  const positions = c.op('Reshape', [
    c.op('Range', [c.int64(0), c.op('Size', [x]), c.int64(1)]),
    c.op('Shape', [x]),
  ]); // [X's shape]
  const sources = sourcesOf(positions); // [Y's shape]
  const flat = (value: string) => c.op('Reshape', [value, c.int64s([-1])]);
  const copied = c.op('Not', [c.op('Less', [sources, c.int64(0)])]);
  const scattered = c.op(
    'ScatterElements',
    [
      flat(c.zerosLike(x)),
      flat(c.op('Where', [copied, sources, c.int64(0)])),
      flat(c.op('Where', [copied, dy(c), c.scalar(0, x)])),
    ],
    { axis: int(0), reduction: str('add') },
  );
  return c.reshapeLike(scattered, x);
}

/**
 * The output_padding a ConvTranspose needs to give back the input's spatial size from a window
 * op's output: in − ((out − 1)·s − pad_begin − pad_end + (k − 1)·d + 1) per axis (the cells of
 * the input that no window reached, at the end).
 */
export function transposeOutputPadding(
  inSpatial: readonly number[],
  outSpatial: readonly number[],
  window: {
    kernel: readonly number[];
    strides: readonly number[];
    pads: readonly number[];
    dilations: readonly number[];
  },
): number[] {
  const { kernel, strides, pads, dilations } = window;
  const spatial = kernel.length;
  return kernel.map(
    (size, k) =>
      inSpatial[k] -
      ((outSpatial[k] - 1) * strides[k] -
        pads[k] -
        pads[k + spatial] +
        (size - 1) * dilations[k] +
        1),
  );
}

/**
 * A Conv's or pool's pads [begins…, ends…], with auto_pad turned into the pads it stands for:
 * VALID none; SAME_UPPER / SAME_LOWER out = ⌈in / s⌉, padded by what the last window needs, the odd
 * cell at the end (UPPER) or the start (LOWER).
 */
export function explicitPads(
  c: GradContext,
  kernel: readonly number[],
  strides: readonly number[],
  dilations: readonly number[],
): number[] {
  const autoPad = c.attrString('auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') return c.attrInts('pads') ?? [...kernel, ...kernel].map(() => 0);
  if (autoPad === 'VALID') return [...kernel, ...kernel].map(() => 0);
  const inSpatial = c.shape(c.x(0)).slice(2).map(Number);
  const totals = kernel.map((size, k) =>
    Math.max(
      0,
      (Math.ceil(inSpatial[k] / strides[k]) - 1) * strides[k] +
        (size - 1) * dilations[k] +
        1 -
        inSpatial[k],
    ),
  );
  const begins = totals.map((total) =>
    autoPad === 'SAME_LOWER' ? Math.ceil(total / 2) : Math.floor(total / 2),
  );
  return [...begins, ...totals.map((total, k) => total - begins[k])];
}
