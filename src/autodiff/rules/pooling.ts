/** Pooling: max (routed to each window's winner), average, global average. */
import { int, ints, string as str } from '../../graph/builder.ts';
import { DataType } from '../../onnx/proto.ts';
import { AutodiffError } from '../errors.ts';
import type { GradContext } from '../context.ts';
import { castCode, dy, explicitPads, transposeOutputPadding, type GradientRule } from './shared.ts';

export const POOLING_RULES: Record<string, GradientRule> = {
  MaxPool: (c) => [maxPoolGradient(c)],
  AveragePool: (c) => [averagePoolGradient(c)],
  // dX = dY shared equally among the positions equal to the channel's maximum (a tie is a set of measure zero; PyTorch's adaptive max pool routes it to one)
  GlobalMaxPool: (c) => {
    const x = c.x(0);
    const hits = c.op('Cast', [c.op('Equal', [x, c.y(0)])], { to: int(castCode(c.dtype(x))) });
    return [
      c.div(
        c.mul(dy(c), hits),
        c.reduceSum(
          hits,
          [...Array(c.rank(x) - 2).keys()].map((k) => k + 2),
          true,
        ),
      ),
    ];
  },
  GlobalAveragePool: (c) => {
    // dX = dY / (H·W), spread over every position
    const spatial = c
      .shape(c.x(0))
      .slice(2)
      .map(Number)
      .reduce((a, b) => a * b, 1);
    return [c.div(c.op('Expand', [dy(c), c.op('Shape', [c.x(0)])]), c.scalar(spatial, c.x(0)))];
  },
};

/**
 * dX routes each dY to the input position that won its window: the first maximum in row-major
 * window order, as onnxruntime's and PyTorch's indices name it (onnxruntime's indices count over
 * the flattened input). Windows that cannot overlap (unpoolable) each route to a different
 * position, so MaxUnpool places them (onnxruntime's float kernel is about 4× faster than a
 * scatter); otherwise, and for float64, ScatterElements adds them up.
 */
function maxPoolGradient(c: GradContext): string {
  if (c.attrInt('storage_order', 0) !== 0)
    throw new AutodiffError(`MaxPool with storage_order=1 (${c.describe()}) has no gradient rule.`);
  if (unpoolable(c)) return unpool(c, dy(c), c.x(0));
  const flatZeros = c.op('Reshape', [c.zerosLike(c.x(0)), c.int64s([-1])]);
  const scattered = c.op(
    'ScatterElements',
    [
      flatZeros,
      c.op('Reshape', [c.y(1), c.int64s([-1])]),
      c.op('Reshape', [dy(c), c.int64s([-1])]),
    ],
    { axis: int(0), reduction: str('add') },
  );
  return c.reshapeLike(scattered, c.x(0));
}

/** Whether a MaxPool's windows cannot overlap (strides ≥ kernel, undilated) nor run past the input (MaxUnpool infers the unpadded size from them), with explicit pads, so MaxUnpool can route its float32 gradient. */
export function unpoolable(c: GradContext): boolean {
  const kernel = c.attrInts('kernel_shape')!;
  const strides = c.attrInts('strides') ?? kernel.map(() => 1);
  return (
    c.node.opType === 'MaxPool' &&
    c.attrInt('storage_order', 0) === 0 &&
    c.attrInt('ceil_mode', 0) === 0 &&
    c.attrString('auto_pad', 'NOTSET') === 'NOTSET' &&
    (c.attrInts('dilations') ?? []).every((d) => d === 1) &&
    strides.every((s, k) => s >= kernel[k]) &&
    c.dtype(c.x(0)) === 'float32'
  );
}

/** `pooled` (shaped like the MaxPool's output) placed at the indices of the winners, zeros elsewhere, shaped like `like`. */
function unpool(c: GradContext, pooled: string, like: string): string {
  const kernel = c.attrInts('kernel_shape')!;
  const strides = c.attrInts('strides') ?? kernel.map(() => 1);
  return c.op('MaxUnpool', [pooled, tilingWinners(c) ?? c.y(1), c.op('Shape', [like])], {
    kernel_shape: ints(kernel),
    strides: ints(strides),
    pads: ints(
      explicitPads(
        c,
        kernel,
        strides,
        kernel.map(() => 1),
      ),
    ),
  });
}

/**
 * The flat input index of each window's winner when square k×k windows tile the input (stride k,
 * no pads, height and width multiples of k), found without MaxPool's indices output: with it
 * onnxruntime runs a branchy kernel (fixture CNN pool1: 1.2 ms, against 0.12 ms without).
 * SpaceToDepth lays each window's cells out as k² phase planes in row-major window order, phase
 * a·k + b holding cell (a, b); the winner is the first phase equal to the pooled maximum (ties to
 * the first, as onnxruntime's and PyTorch's indices), found by a chain of Where over the phases'
 * offsets a·W + b, added to the window's own first cell r·k·W + k·j, where r counts window rows
 * over batch, channel and height, and j is the window's column. undefined when the windows do not
 * tile the input that way, or when the graph may run on several threads: onnxruntime splits
 * MaxPool's windows over its threads but runs SpaceToDepth on one, and the chain's small ops gain
 * nothing from a second (fixture CNN step, 2 threads: pool1 1.0 ms with indices, 1.7 ms this way).
 */
function tilingWinners(c: GradContext): string | undefined {
  if (c.threads !== 1) return undefined;
  const x = c.x(0);
  const shape = c.shape(x);
  const kernel = c.attrInts('kernel_shape')!;
  const k = kernel[0];
  const [height, width] = shape.slice(2).map(Number);
  const tiles =
    shape.length === 4 &&
    kernel[1] === k &&
    k > 1 &&
    (c.attrInts('strides') ?? [1, 1]).every((stride) => stride === k) &&
    explicitPads(c, kernel, [k, k], [1, 1]).every((pad) => pad === 0) &&
    height % k === 0 &&
    width % k === 0;
  if (!tiles) return undefined;
  const y = c.y(0);
  const channels = Number(shape[1]);
  const [rows, columns] = [height / k, width / k];
  const phases = c.opN(
    'Split',
    [
      c.op('Reshape', [
        c.op('SpaceToDepth', [x], { blocksize: int(k) }),
        c.int64s([0, k * k, channels, rows, columns]),
      ]),
      c.int64s(new Array(k * k).fill(1)),
    ],
    { axis: int(1) },
    k * k,
  );
  const maximum = c.unsqueeze(y, [1]);
  let offset = c.scalar((k - 1) * width + k - 1, x); // the last phase, when no earlier one holds the maximum
  for (let phase = k * k - 2; phase >= 0; phase--) {
    offset = c.op('Where', [
      c.op('Equal', [phases[phase], maximum]),
      c.scalar(Math.floor(phase / k) * width + (phase % k), x),
      offset,
    ]);
  }
  const windowRows = c.op('Div', [c.op('Size', [y]), c.int64(columns)]);
  const rowStarts = c.mul(c.op('Range', [c.int64(0), windowRows, c.int64(1)]), c.int64(k * width));
  const starts = c.add(
    c.unsqueeze(rowStarts, [1]),
    c.int64s(Array.from({ length: columns }, (_, j) => k * j)),
  ); // [window rows, columns]
  return c.add(
    c.reshapeLike(starts, y),
    c.reshapeLike(c.op('Cast', [offset], { to: int(DataType.INT64) }), y),
  );
}

/**
 * MaxPool(Relu(X)) over windows that cannot overlap, the pair at once (the walker calls it when
 * nothing else reads the Relu): dX = MaxUnpool(dY·[Y > 0]). The routed position holds the
 * window's maximum Y, so its Relu input is positive exactly when Y > 0; masking the pooled
 * gradient instead of the unpooled one touches a quarter of the values under 2×2 pooling.
 */
export function reluMaxPoolGradient(c: GradContext): string {
  const y = c.y(0);
  const masked = c.op('Where', [c.op('Greater', [y, c.scalar(0, y)]), dy(c), c.scalar(0, y)]);
  // shaped like the Relu's output, not its input: a value read only by the Relu lets onnxruntime fuse it into its producer (Conv + Relu)
  return unpool(c, masked, c.x(0));
}

/** dX = ConvTranspose(dY / count, ones kernel), per channel, over 1, 2 or 3 spatial axes; count is the kernel's size, or the number of real (unpadded) cells when count_include_pad=0. */
function averagePoolGradient(c: GradContext): string {
  const x = c.x(0);
  const xShape = c.shape(x).map(Number);
  const kernel = c.attrInts('kernel_shape')!;
  const spatial = kernel.length;
  const strides = c.attrInts('strides') ?? kernel.map(() => 1);
  const dilations = c.attrInts('dilations') ?? kernel.map(() => 1);
  const pads = explicitPads(c, kernel, strides, dilations);
  const channels = xShape[1];
  const outSpatial = c.shape(c.y(0)).slice(2).map(Number);
  const area = kernel.reduce((a, b) => a * b, 1);
  const tiles =
    spatial === 2 &&
    [0, 1].every(
      (k) =>
        strides[k] === kernel[k] &&
        dilations[k] === 1 &&
        outSpatial[k] * kernel[k] === xShape[2 + k],
    ) &&
    pads.every((p) => p === 0);
  if (tiles && outSpatial[1] <= 32) return tiledAveragePoolGradient(c, kernel, outSpatial);
  let scaled = c.div(dy(c), c.scalar(area, x));
  if (c.attrInt('count_include_pad', 0) === 0 && pads.some((p) => p > 0)) {
    // real cells per window = AveragePool(ones, counting pads) · area
    const ones = c.add(c.zerosLike(x), c.scalar(1, x));
    const dilated = dilations.some((d) => d !== 1) ? ints(dilations) : undefined; // the attribute exists from opset 19 only
    const counted = c.op('AveragePool', [ones], {
      kernel_shape: ints(kernel),
      strides: ints(strides),
      pads: ints(pads),
      dilations: dilated,
      count_include_pad: int(1),
      ceil_mode: int(c.attrInt('ceil_mode', 0)),
    });
    scaled = c.div(dy(c), c.mul(counted, c.scalar(area, x)));
  }
  const weights = c.constant(new Array(channels * area).fill(1), [channels, 1, ...kernel], x);
  const outputPadding = transposeOutputPadding(xShape.slice(2), outSpatial, {
    kernel,
    strides,
    pads,
    dilations,
  });
  if (outputPadding.some((p) => p < 0 || p >= Math.max(strides[0], dilations[0], 1) + 1)) {
    throw new AutodiffError(
      `AveragePool ${c.describe()} with ceil_mode windows past the input has no gradient rule.`,
    );
  }
  return c.op('ConvTranspose', [scaled, weights], {
    strides: ints(strides),
    pads: ints(pads),
    dilations: ints(dilations),
    group: int(channels),
    output_padding: ints(outputPadding),
    kernel_shape: ints(kernel),
  });
}

/**
 * AveragePool whose windows tile the input exactly (strides = kernel, no pads): each input cell
 * gets its window's dY / area. Rows of dY [.., Wo] times E [Wo, Wi] with E[j, j·kw + t] = 1/area
 * spread each value over its window's columns in one matrix product; kh copies of each row then
 * fill its window's rows. (Fixture CNN, [64, 16, 7, 7] → [64, 16, 14, 14]: 0.10 ms against 0.31 ms
 * for the grouped ConvTranspose.) The product costs Wo multiply-adds per cell, so the rule asks
 * Wo ≤ 32.
 */
function tiledAveragePoolGradient(c: GradContext, kernel: number[], outSpatial: number[]): string {
  const x = c.x(0);
  const [outWidth, inWidth] = [outSpatial[1], outSpatial[1] * kernel[1]];
  const spread = new Array<number>(outWidth * inWidth).fill(0); // E [Wo, Wi]
  for (let j = 0; j < outWidth; j++)
    for (let t = 0; t < kernel[1]; t++)
      spread[j * inWidth + j * kernel[1] + t] = 1 / (kernel[0] * kernel[1]);
  const widened = c.op('MatMul', [
    c.op('Reshape', [dy(c), c.int64s([-1, 1, outWidth])]),
    c.constant(spread, [outWidth, inWidth], x),
  ]); // [N·C·Ho, 1, Wi]
  const tall =
    kernel[0] === 1
      ? widened
      : c.op('Concat', new Array(kernel[0]).fill(widened), { axis: int(1) }); // [N·C·Ho, kh, Wi]
  return c.reshapeLike(tall, x);
}
