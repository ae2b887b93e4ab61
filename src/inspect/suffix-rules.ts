/**
 * Rewrite rules of a suffix graph (causal-suffix.ts), one op family each: a rule copies a node onto
 * the recomputed positions and says where its outputs keep them, or returns false, and the node
 * is then computed whole on completed inputs. A rule follows a node only when position i of each
 * output reads positions ≤ i of its inputs (position-wise ops, and ops along other axes).
 * Products and elementwise ops, where attention's causality is proven, are in
 * suffix-attention.ts and suffix-elementwise.ts; reshapes to and from Gemm rows in suffix-rows.ts.
 */
import type { NodeProto } from '../onnx/proto.ts';
import { ELEMENTWISE_UNARY } from '../graph/elementwise-ops.ts';
import { defaultOpset } from '../onnx/model-file.ts';
import { matMul } from './suffix-attention.ts';
import type { SuffixBuilder } from './suffix-builder.ts';
import { elementwise } from './suffix-elementwise.ts';
import { axisAttribute, intAttribute, ints, normalise, type Suffix } from './suffix-layout.ts';
import { gemm, reshape } from './suffix-rows.ts';

/** Unary ops that keep −∞ and 0 where they are. */
const KEEPS_HIDDEN = new Set(['Identity', 'Cast', 'Dropout']);
const ELEMENTWISE = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Where',
  'Pow',
  'Max',
  'Min',
  'Sum',
  'Mean',
  'PRelu',
  'Clip',
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'And',
  'Or',
  'Mod',
]);
const REDUCE = new Set([
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceSumSquare',
  'ReduceLogSumExp',
]);
/** Ops followed on flattened rows (others would need to know how the rows were made). */
const FOLLOWS_FLAT_ROWS = new Set([
  'Reshape',
  'Gemm',
  'Softmax',
  'LogSoftmax',
  'LayerNormalization',
  'Split',
  ...REDUCE,
]);

/** True when `node` is followed on the suffix (its outputs recomputed there), false otherwise. */
export function followNode(builder: SuffixBuilder, node: NodeProto): boolean {
  const layouts = node.input.map((input) => builder.layouts.get(input));
  if (layouts.some((layout) => layout?.kind === 'whole')) return false;
  const op = node.opType;
  if (ELEMENTWISE.has(op)) return elementwise(builder, node, layouts as (Suffix | undefined)[]);
  if (op === 'Concat') return concat(builder, node, layouts as (Suffix | undefined)[]);
  if (op === 'MatMul') return matMul(builder, node, layouts as (Suffix | undefined)[]);
  // The rest read one recomputed value, the first input; the others are parameters.
  const data = layouts[0] as Suffix | undefined;
  if (!data || layouts.slice(1).some((layout) => layout !== undefined)) return false;
  if (data.flat !== undefined && !FOLLOWS_FLAT_ROWS.has(op) && !ELEMENTWISE_UNARY.has(op))
    return false;
  if (ELEMENTWISE_UNARY.has(op)) return unary(builder, node, data);
  if (op === 'Transpose') return transpose(builder, node, data);
  if (op === 'Reshape') return reshape(builder, node, data);
  if (op === 'Softmax' || op === 'LogSoftmax') return softmax(builder, node, data);
  if (op === 'LayerNormalization')
    return alongLaterAxes(builder, node, data, axisAttribute(node, -1));
  if (REDUCE.has(op)) return reduce(builder, node, data);
  if (op === 'Split') return along(builder, node, data, axisAttribute(node, 0));
  if (op === 'Unsqueeze' || op === 'Squeeze') return squeeze(builder, node, data);
  if (op === 'Gather') return gather(builder, node, data);
  if (op === 'Slice') return slice(builder, node, data);
  if (op === 'Gemm') return gemm(builder, node, data);
  return false;
}

function unary(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const hidden = KEEPS_HIDDEN.has(node.opType) ? layout.hidden : undefined;
  return builder.copy(
    node,
    node.input.map((input) => builder.read(input)),
    { ...layout, hidden },
  );
}

function transpose(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const rank = builder.rank(node.input[0]);
  const perm = ints(node, 'perm') ?? Array.from({ length: rank }, (_, a) => rank - 1 - a);
  const moved = (axis: number | undefined) => (axis === undefined ? undefined : perm.indexOf(axis));
  return builder.copy(node, [builder.read(node.input[0])], {
    ...layout,
    axis: moved(layout.axis)!,
    keyAxis: moved(layout.keyAxis),
  });
}

function softmax(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const rank = builder.rank(node.input[0]);
  // Before opset 13 Softmax flattens the input from `axis` (default 1).
  const legacy = defaultOpset(builder.index.proto) < 13;
  const axis = normalise(axisAttribute(node, legacy ? 1 : -1), rank);
  if (legacy && axis !== rank - 1) return false;
  if (axis === layout.axis) return false;
  if (axis !== layout.keyAxis)
    return builder.copy(node, [builder.read(node.input[0])], { ...layout, hidden: undefined });
  // Over the keys: hidden scores (−∞) become exactly 0 (Softmax) or stay −∞ (LogSoftmax).
  const hidden =
    layout.hidden === 'minus-infinity'
      ? node.opType === 'Softmax'
        ? 'zero'
        : 'minus-infinity'
      : undefined;
  return builder.copy(node, [builder.read(node.input[0])], { ...layout, hidden });
}

/** An op along `axis` (Split): followed when that is neither the positions nor the keys. */
function along(builder: SuffixBuilder, node: NodeProto, layout: Suffix, axis: number): boolean {
  const normalised = normalise(axis, builder.rank(node.input[0]));
  if (normalised === layout.axis || normalised === layout.keyAxis) return false;
  return builder.copy(
    node,
    node.input.map((input) => builder.read(input)),
    layout,
  );
}

/** LayerNormalization: normalises over `axis` and every later one. */
function alongLaterAxes(
  builder: SuffixBuilder,
  node: NodeProto,
  layout: Suffix,
  axis: number,
): boolean {
  if (layout.keyAxis !== undefined || normalise(axis, builder.rank(node.input[0])) <= layout.axis)
    return false;
  return builder.copy(
    node,
    node.input.map((input) => builder.read(input)),
    { ...layout, hidden: undefined },
  );
}

function reduce(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const rank = builder.rank(node.input[0]);
  const listed = node.input[1] ? builder.constantInts(node.input[1]) : ints(node, 'axes');
  if (!listed || listed.length === 0) return false;
  const axes = listed.map((axis) => normalise(axis, rank));
  if (axes.includes(layout.axis) || (layout.keyAxis !== undefined && axes.includes(layout.keyAxis)))
    return false;
  const keep = intAttribute(node, 'keepdims', 1) === 1;
  const moved = (axis: number | undefined) =>
    axis === undefined || keep ? axis : axis - axes.filter((a) => a < axis).length;
  return builder.copy(
    node,
    node.input.map((input) => builder.read(input)),
    { ...layout, axis: moved(layout.axis)!, keyAxis: moved(layout.keyAxis), hidden: undefined },
  );
}

function concat(builder: SuffixBuilder, node: NodeProto, layouts: (Suffix | undefined)[]): boolean {
  if (layouts.some((layout) => layout?.flat !== undefined)) return false;
  const rank = builder.rank(node.output[0]);
  const axis = normalise(axisAttribute(node, 0), rank);
  const first = layouts.find((layout) => layout !== undefined)!;
  if (axis === first.axis || axis === first.keyAxis) return false;
  if (
    layouts.some((l) => l !== undefined && (l.axis !== first.axis || l.keyAxis !== first.keyAxis))
  )
    return false;
  const inputs = node.input.map((input, k) =>
    layouts[k] ? builder.read(input) : builder.sliceFromStart(input, first.axis),
  );
  return builder.copy(node, inputs, {
    ...first,
    notCausal: layouts.find((l) => l?.notCausal)?.notCausal,
    hidden: undefined,
  });
}

function squeeze(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const [inRank, outRank] = [builder.rank(node.input[0]), builder.rank(node.output[0])];
  const listed = node.input[1] ? builder.constantInts(node.input[1]) : ints(node, 'axes');
  let moved: (axis: number) => number;
  if (node.opType === 'Unsqueeze') {
    if (!listed) return false;
    const added = listed.map((axis) => normalise(axis, outRank)).sort((a, b) => a - b);
    moved = (axis) => added.reduce((at, a) => (a <= at ? at + 1 : at), axis);
  } else {
    const shape = builder.shape(node.input[0])!;
    const removed = (listed ?? shape.flatMap((dim, a) => (dim === 1 ? [a] : []))).map((axis) =>
      normalise(axis, inRank),
    );
    if (
      removed.includes(layout.axis) ||
      (layout.keyAxis !== undefined && removed.includes(layout.keyAxis))
    )
      return false;
    moved = (axis) => axis - removed.filter((a) => a < axis).length;
  }
  return builder.copy(
    node,
    node.input.map((input) => builder.read(input)),
    {
      ...layout,
      axis: moved(layout.axis),
      keyAxis: layout.keyAxis === undefined ? undefined : moved(layout.keyAxis),
    },
  );
}

function gather(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const axis = normalise(axisAttribute(node, 0), builder.rank(node.input[0]));
  if (axis === layout.axis || axis === layout.keyAxis) return false;
  const indicesRank = builder.rank(node.input[1]);
  const moved = (at: number | undefined) =>
    at === undefined || at < axis ? at : at - 1 + indicesRank;
  return builder.copy(
    node,
    node.input.map((input) => builder.read(input)),
    { ...layout, axis: moved(layout.axis)!, keyAxis: moved(layout.keyAxis), hidden: undefined },
  );
}

/** A Slice away from the positions is followed; `[-1:]` along them is the last position, whole. */
function slice(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const rank = builder.rank(node.input[0]);
  const legacy = node.input.length < 3; // before opset 10: attributes
  const starts = legacy ? ints(node, 'starts') : builder.constantInts(node.input[1]);
  const ends = legacy ? ints(node, 'ends') : builder.constantInts(node.input[2]);
  const axes =
    (legacy
      ? ints(node, 'axes')
      : node.input[3]
        ? builder.constantInts(node.input[3])
        : undefined) ?? starts?.map((_, k) => k);
  const steps = !legacy && node.input[4] ? builder.constantInts(node.input[4]) : undefined;
  if (!starts || !ends || !axes) return false;
  const k = axes.map((axis) => normalise(axis, rank)).indexOf(layout.axis);
  const keyed =
    layout.keyAxis !== undefined &&
    axes.map((axis) => normalise(axis, rank)).includes(layout.keyAxis);
  if (k < 0)
    return (
      !keyed &&
      builder.copy(
        node,
        node.input.map((input) => builder.read(input)),
        { ...layout, hidden: undefined },
      )
    );
  const lastOnly = starts[k] === -1 && ends[k] >= builder.positions && (steps?.[k] ?? 1) === 1;
  return (
    lastOnly &&
    builder.copy(
      node,
      node.input.map((input) => builder.read(input)),
      { kind: 'whole' },
    )
  );
}
