/** Convolutions and transposed convolutions. */
import { int, ints } from '../../graph/builder.ts';
import { AutodiffError } from '../errors.ts';
import type { Grad, GradContext } from '../context.ts';
import { dy, explicitPads, transposeOutputPadding, type GradientRule } from './shared.ts';

export const CONVOLUTION_RULES: Record<string, GradientRule> = {
  Conv: (c) => convGradient(c),
  ConvTranspose: (c) => convTransposeGradient(c),
};

/** A convolution's geometry: spatial kernel, strides, dilations and pads ([begins…, ends…]). */
interface Geometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
}

/** The node's geometry, with a Conv's auto_pad turned into the explicit pads it stands for. */
function geometry(c: GradContext, kernel: number[]): Geometry {
  const ones = kernel.map(() => 1);
  const strides = c.attrInts('strides') ?? ones;
  const dilations = c.attrInts('dilations') ?? ones;
  return { kernel, strides, dilations, pads: explicitPads(c, kernel, strides, dilations) };
}

const spatialAxes = (rank: number) => [...Array(rank - 2).keys()].map((k) => k + 2);

/**
 * Convolution over 2 or 3 spatial axes (1 goes through conv1dGradient). dX = ConvTranspose(dY, W)
 * with the same strides, pads, dilations and groups (output_padding restores the rows the stride
 * skipped). dW correlates X with dY, per group, as one matrix product over im2col windows
 * (convWeightGradient).
 */
function convGradient(c: GradContext): Grad[] {
  const [x, w] = [c.x(0), c.x(1)];
  const xShape = c.shape(x).map(Number);
  const wShape = c.shape(w).map(Number);
  if (xShape.length === 3) return conv1dGradient(c);
  if (xShape.length !== 4 && xShape.length !== 5)
    throw new AutodiffError(
      `Conv over ${xShape.length - 2} spatial axes (${c.describe()}) has no gradient rule: only 1-D, 2-D and 3-D convolutions have one.`,
    );
  const conv = geometry(c, wShape.slice(2));
  const { kernel, strides, dilations, pads } = conv;
  const group = c.attrInt('group', 1);
  const outSpatial = c.shape(c.y(0)).slice(2).map(Number);
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const outputPadding = transposeOutputPadding(xShape.slice(2), outSpatial, conv);
    grads[0] =
      fullConvolutionGradient(c, w, conv, group) ??
      c.op('ConvTranspose', [dy(c), w], {
        strides: ints(strides),
        pads: ints(pads),
        dilations: ints(dilations),
        group: int(group),
        output_padding: ints(outputPadding),
        kernel_shape: ints(kernel),
      });
  }
  if (c.needs(1))
    grads[1] = groupedWeightGradient(
      c,
      x,
      dy(c),
      { group, inChannels: xShape[1], outChannels: wShape[0] },
      conv,
      x,
    );
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), [0, ...spatialAxes(xShape.length)], false); // dB = Σ dY over batch and positions
  return grads;
}

/**
 * ConvTranspose (1-D, 2-D or 3-D, grouped or not) is the adjoint of the Conv with the same
 * weight, strides, pads, dilations and groups, mapping its output space back to its input space,
 * so dX = Conv(dY, W, group) — W [in, out/g, k…] is that Conv's weight, `in` outputs reading
 * out/g channels each (output_padding only adds rows the Conv's window never reads back) — and
 * dW is that Conv's weight gradient with dY as its input and X as its output gradient, per group:
 * dW[i, o, a…] = Σ dY[n, o, ·]·X[n, i, ·].
 */
function convTransposeGradient(c: GradContext): Grad[] {
  const [x, w] = [c.x(0), c.x(1)];
  const xShape = c.shape(x).map(Number);
  const wShape = c.shape(w).map(Number);
  if (xShape.length < 3 || xShape.length > 5)
    throw new AutodiffError(
      `ConvTranspose over ${xShape.length - 2} spatial axes (${c.describe()}) has no gradient rule: only 1-D, 2-D and 3-D ones have.`,
    );
  const group = c.attrInt('group', 1);
  const conv = transposedGeometry(c, wShape.slice(2));
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0))
    grads[0] = c.op('Conv', [dy(c), w], {
      strides: ints(conv.strides),
      dilations: ints(conv.dilations),
      pads: ints(conv.pads),
      kernel_shape: ints(conv.kernel),
      group: int(group),
    });
  if (c.needs(1))
    grads[1] = groupedWeightGradient(
      c,
      dy(c),
      x,
      { group, inChannels: wShape[1] * group, outChannels: xShape[1] },
      conv,
      x,
    );
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), [0, ...spatialAxes(xShape.length)], false); // dB = Σ dY over batch and positions
  return grads;
}

/**
 * A ConvTranspose's geometry. With auto_pad SAME_* or output_shape, the pads are what make Y its
 * size: total = s·(in − 1) + output_padding + (k − 1)·d + 1 − out, split with the odd cell at the
 * end (SAME_UPPER) or the start (otherwise), as ONNX specifies.
 */
function transposedGeometry(c: GradContext, kernel: number[]): Geometry {
  const autoPad = c.attrString('auto_pad', 'NOTSET');
  const ones = kernel.map(() => 1);
  const strides = c.attrInts('strides') ?? ones;
  const dilations = c.attrInts('dilations') ?? ones;
  if (autoPad === 'VALID')
    return { kernel, strides, dilations, pads: [...kernel, ...kernel].map(() => 0) };
  if (autoPad === 'NOTSET' && !c.attr('output_shape'))
    return {
      kernel,
      strides,
      dilations,
      pads: c.attrInts('pads') ?? [...kernel, ...kernel].map(() => 0),
    };
  const inSpatial = c.shape(c.x(0)).slice(2).map(Number);
  const outSpatial = c.shape(c.y(0)).slice(2).map(Number);
  const outputPadding = c.attrInts('output_padding') ?? kernel.map(() => 0);
  const totals = kernel.map(
    (size, k) =>
      strides[k] * (inSpatial[k] - 1) +
      outputPadding[k] +
      (size - 1) * dilations[k] +
      1 -
      outSpatial[k],
  );
  if (totals.some((total) => total < 0))
    throw new AutodiffError(
      `ConvTranspose ${c.describe()} with an output_shape past its natural size has no gradient rule.`,
    );
  const begins = totals.map((total) =>
    autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2),
  );
  return {
    kernel,
    strides,
    dilations,
    pads: [...begins, ...totals.map((total, k) => total - begins[k])],
  };
}

/** The weight gradient [out, in/g, k…] of a convolution reading `input` (inChannels) into `output` (outChannels) in `group` groups. */
function groupedWeightGradient(
  c: GradContext,
  input: string,
  gradOutput: string,
  channels: { group: number; inChannels: number; outChannels: number },
  conv: Geometry,
  dtypeOf: string,
): string {
  return convWeightGradient(c, input, gradOutput, { ...channels, ...conv }, dtypeOf);
}

/**
 * Conv over one spatial axis (Conv1d): the 2-D gradients on [N, C, 1, L] — an axis of size 1
 * inserted before the length, with stride, dilation and padding 1, 1 and 0 along it — squeezed back.
 */
function conv1dGradient(c: GradContext): Grad[] {
  const [x, w] = [c.x(0), c.x(1)];
  const xShape = c.shape(x).map(Number);
  const wShape = c.shape(w).map(Number);
  const {
    strides: [stride],
    dilations: [dilation],
    pads: [padStart, padEnd],
  } = geometry(c, [wShape[2]]);
  const group = c.attrInt('group', 1);
  const kernel = [1, wShape[2]];
  const lifted = { strides: [1, stride], dilations: [1, dilation], pads: [0, padStart, 0, padEnd] };
  const up = (value: string) => c.unsqueeze(value, [2]); // [N, C, L] → [N, C, 1, L]
  const down = (value: string) => c.op('Squeeze', [value, c.int64s([2])]);
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const outLength = Number(c.shape(c.y(0))[2]);
    const outputPadding =
      xShape[2] - ((outLength - 1) * stride - padStart - padEnd + (wShape[2] - 1) * dilation + 1);
    grads[0] = down(
      c.op('ConvTranspose', [up(dy(c)), up(w)], {
        strides: ints(lifted.strides),
        pads: ints(lifted.pads),
        dilations: ints(lifted.dilations),
        group: int(group),
        output_padding: ints([0, outputPadding]),
        kernel_shape: ints(kernel),
      }),
    );
  }
  if (c.needs(1)) {
    grads[1] = down(
      convWeightGradient(
        c,
        up(x),
        up(dy(c)),
        { inChannels: xShape[1], outChannels: wShape[0], group, kernel, ...lifted },
        x,
      ),
    );
  }
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), [0, 2], false); // dB = Σ dY over batch and positions
  return grads;
}

/**
 * dX of a stride-1, undilated, ungrouped convolution as a plain convolution of dY — the "full"
 * convolution with the kernel flipped in space and its in/out axes swapped:
 * dX[n, i, y, x] = Σ_{o,a,b} dY[n, o, y + p − a, x + p − b] · W[o, i, a, b], padded by k − 1 − p.
 * onnxruntime's Conv is several times faster than its ConvTranspose on the same shapes.
 * undefined (use ConvTranspose) for strides, dilations, groups or pads wider than the kernel.
 */
function fullConvolutionGradient(
  c: GradContext,
  w: string,
  conv: Geometry,
  group: number,
): string | undefined {
  const { kernel } = conv;
  const spatial = kernel.length;
  const padsOut = conv.pads.map((pad, k) => kernel[k % spatial] - 1 - pad);
  if (
    group !== 1 ||
    conv.strides.some((v) => v !== 1) ||
    conv.dilations.some((v) => v !== 1) ||
    padsOut.some((p) => p < 0)
  )
    return undefined;
  const END = Number.MIN_SAFE_INTEGER;
  const axes = spatialAxes(spatial + 2);
  const swapped = c.op('Transpose', [w], { perm: ints([1, 0, ...axes]) }); // [in, out, k…]
  const flipped = c.op('Slice', [
    swapped,
    c.int64s(axes.map(() => -1)),
    c.int64s(axes.map(() => END)),
    c.int64s(axes),
    c.int64s(axes.map(() => -1)),
  ]);
  return c.op('Conv', [dy(c)!, flipped], { kernel_shape: ints(kernel), pads: ints(padsOut) });
}

/**
 * dW[o, i, a, b] = Σ_{n,y,x} dY[n, o, y, x] · Xpad[n, i, y·s + a·d, x·s + b·d], as matrix products
 * over im2col columns (any number of spatial axes; two written here). The columns come from one
 * depthwise convolution of X with one-hot kernels (channel i's output i·kh·kw + a·kw + b copies the
 * window cell (a, b), with the conv's own strides, dilations and pads): cols [n, in·kh·kw, y·x].
 * Then per example cols · dYᵀ [n, in·kh·kw, out], summed over n. onnxruntime runs this several ops
 * faster than slicing the kh·kw shifted windows and concatenating them (fixture CNN conv2, batch
 * 64: 1.97 → 1.41 ms at 1 thread, 1.77 → 0.91 ms at 2). With g groups, the columns and dY are
 * viewed per group and one batched product serves every group ([n, g, in/g·kh·kw, out/g]): a
 * depthwise convolution of C channels is one product, not C subgraphs.
 */
function convWeightGradient(
  c: GradContext,
  x: string,
  dyPart: string,
  shape: { inChannels: number; outChannels: number; group?: number } & Geometry,
  dtypeOf = x,
): string {
  const { inChannels, outChannels, kernel, strides, dilations, pads } = shape;
  const group = shape.group ?? 1;
  const cells = kernel.reduce((a, b) => a * b, 1);
  const oneHot = new Array<number>(inChannels * cells * cells).fill(0);
  for (let channel = 0; channel < inChannels; channel++)
    for (let cell = 0; cell < cells; cell++) oneHot[(channel * cells + cell) * cells + cell] = 1;
  const columns = c.op(
    'Conv',
    [x, c.constant(oneHot, [inChannels * cells, 1, ...kernel], dtypeOf)],
    {
      group: int(inChannels),
      kernel_shape: ints(kernel),
      strides: ints(strides),
      dilations: ints(dilations),
      pads: ints(pads),
    },
  ); // [n, in·kh·kw, y, x]
  if (group > 1)
    return groupedColumnsGradient(c, columns, dyPart, {
      inChannels,
      outChannels,
      group,
      cells,
      kernel,
    });
  const flatColumns = c.op('Reshape', [columns, c.int64s([0, inChannels * cells, -1])]); // [n, in·kh·kw, y·x]
  const dyRows = c.op('Transpose', [c.op('Reshape', [dyPart, c.int64s([0, outChannels, -1])])], {
    perm: ints([0, 2, 1]),
  }); // [n, y·x, out]
  const perExample = c.op('MatMul', [flatColumns, dyRows]); // [n, in·kh·kw, out]
  const summed = c.reduceSum(perExample, [0], false); // [in·kh·kw, out]
  return c.op('Reshape', [
    c.op('Transpose', [summed], { perm: ints([1, 0]) }),
    c.int64s([outChannels, inChannels, ...kernel]),
  ]); // [out, in, kh, kw]
}

/** convWeightGradient's product for g groups: columns [n, in·cells, y, x] and dY [n, out, y, x] viewed per group. */
function groupedColumnsGradient(
  c: GradContext,
  columns: string,
  dyPart: string,
  shape: {
    inChannels: number;
    outChannels: number;
    group: number;
    cells: number;
    kernel: number[];
  },
): string {
  const { inChannels, outChannels, group, cells, kernel } = shape;
  const [inPerGroup, outPerGroup] = [inChannels / group, outChannels / group];
  const groupedColumns = c.op('Reshape', [columns, c.int64s([0, group, inPerGroup * cells, -1])]); // [n, g, in/g·cells, y·x]
  const dyRows = c.op(
    'Transpose',
    [c.op('Reshape', [dyPart, c.int64s([0, group, outPerGroup, -1])])],
    { perm: ints([0, 1, 3, 2]) },
  ); // [n, g, y·x, out/g]
  const summed = c.reduceSum(c.op('MatMul', [groupedColumns, dyRows]), [0], false); // [g, in/g·cells, out/g]
  return c.op('Reshape', [
    c.op('Transpose', [summed], { perm: ints([0, 2, 1]) }),
    c.int64s([outChannels, inPerGroup, ...kernel]),
  ]); // [out, in/g, k…]
}
