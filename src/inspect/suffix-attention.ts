/**
 * Matrix products on a suffix graph (causal-suffix.ts): where attention mixes positions, and
 * where its key and value sides are completed with the clean run's earlier positions.
 *   scores = q·kᵀ: query rows i ≥ start against every key j (k completed);
 *   mixed = pattern·v: row i sums pattern[i, j]·v[j] over every j (v completed), causal only when
 *   pattern[i, j] = 0 exactly for every j > i (a masked Softmax over the keys).
 */
import type { NodeProto } from '../onnx/proto.ts';
import type { SuffixBuilder } from './suffix-builder.ts';
import type { Suffix } from './suffix-layout.ts';

/** Ranks of a MatMul's operands A and B and of its output. */
interface ProductRanks {
  a: number;
  b: number;
  output: number;
}

/**
 * Products. Rows of A and columns of B keep their positions (position-wise), as do broadcast
 * axes. q·kᵀ of two recomputed values completes the keys and gives pairwise scores; pattern·v
 * over the keys completes v and is causal only for a pattern that hides every later key (0).
 */
export function matMul(
  builder: SuffixBuilder,
  node: NodeProto,
  layouts: (Suffix | undefined)[],
): boolean {
  if (layouts.some((layout) => layout?.flat !== undefined) && layouts.every((l) => l !== undefined))
    return false;
  const [a, b] = layouts;
  const ranks: ProductRanks = {
    a: builder.rank(node.input[0]),
    b: builder.rank(node.input[1]),
    output: builder.rank(node.output[0]),
  };
  if (ranks.a < 2 || ranks.b < 2) return false;
  if (a && !b) return leftRecomputed(builder, node, a, ranks);
  if (b && !a) return rightRecomputed(builder, node, b, ranks);
  if (!a || !b) return false;
  return bothRecomputed(builder, node, a, b, ranks);
}

/** A recomputed value runs along a broadcast (batch-like) axis of a product, not its rows. */
function alongBroadcastAxis(layout: Suffix, ownRank: number): boolean {
  return layout.axis < ownRank - 2 && layout.keyAxis === undefined;
}

/** A·W with A recomputed: its rows are positions, or A is a pattern (rows queries, columns keys). */
function leftRecomputed(
  builder: SuffixBuilder,
  node: NodeProto,
  a: Suffix,
  ranks: ProductRanks,
): boolean {
  const inputs = () => node.input.map((input) => builder.read(input));
  const rank = ranks.output;
  if (a.keyAxis === undefined && a.axis === ranks.a - 2)
    return builder.copy(node, inputs(), { ...a, axis: rank - 2, hidden: undefined });
  if (a.keyAxis === ranks.a - 1 && a.axis === ranks.a - 2)
    return builder.copy(node, inputs(), {
      kind: 'suffix',
      axis: rank - 2,
      notCausal: patternCausality(a, node),
    });
  if (alongBroadcastAxis(a, ranks.a))
    return matMulBroadcast(builder, node, a.axis + rank - ranks.a, a);
  return false;
}

/** W·B with B recomputed: its columns are positions (B = xᵀ), or a broadcast axis is. */
function rightRecomputed(
  builder: SuffixBuilder,
  node: NodeProto,
  b: Suffix,
  ranks: ProductRanks,
): boolean {
  const inputs = () => node.input.map((input) => builder.read(input));
  const rank = ranks.output;
  if (b.keyAxis === undefined && b.axis === ranks.b - 1)
    return builder.copy(node, inputs(), { ...b, axis: rank - 1, hidden: undefined });
  if (alongBroadcastAxis(b, ranks.b))
    return matMulBroadcast(builder, node, b.axis + rank - ranks.b, b);
  return false;
}

/** Both operands recomputed: q·kᵀ (scores), pattern·v, or a product along broadcast axes. */
function bothRecomputed(
  builder: SuffixBuilder,
  node: NodeProto,
  a: Suffix,
  b: Suffix,
  ranks: ProductRanks,
): boolean {
  const [left, right] = node.input;
  const rank = ranks.output;
  const use = `node '${node.name}' (MatMul)`;
  const aRows = a.keyAxis === undefined && a.axis === ranks.a - 2;
  if (aRows && b.keyAxis === undefined && b.axis === ranks.b - 1) {
    // Scores: query rows i ≥ start against every key j.
    const notCausal = a.notCausal ?? b.notCausal;
    return builder.copy(node, [builder.read(left), builder.complete(right, use)], {
      kind: 'suffix',
      axis: rank - 2,
      keyAxis: rank - 1,
      notCausal,
    });
  }
  const aPattern = a.keyAxis === ranks.a - 1 && a.axis === ranks.a - 2;
  if (aPattern && b.keyAxis === undefined && b.axis === ranks.b - 2) {
    return builder.copy(node, [builder.read(left), builder.complete(right, use)], {
      kind: 'suffix',
      axis: rank - 2,
      notCausal: patternCausality(a, node),
    });
  }
  if (
    alongBroadcastAxis(a, ranks.a) &&
    alongBroadcastAxis(b, ranks.b) &&
    a.axis + rank - ranks.a === b.axis + rank - ranks.b
  ) {
    return builder.copy(node, [builder.read(left), builder.read(right)], {
      kind: 'suffix',
      axis: a.axis + rank - ranks.a,
      notCausal: a.notCausal ?? b.notCausal,
    });
  }
  return false;
}

/**
 * A product along broadcast axes with one recomputed operand: the other is sliced where it runs
 * along the positions.
 */
function matMulBroadcast(
  builder: SuffixBuilder,
  node: NodeProto,
  axis: number,
  layout: Suffix,
): boolean {
  const rank = builder.rank(node.output[0]);
  const inputs = node.input.map((input) => {
    if (builder.layouts.has(input)) return builder.read(input);
    const shape = builder.shape(input);
    const own = axis - (rank - (shape?.length ?? 0));
    return !shape || own < 0 || shape[own] === 1
      ? builder.read(input)
      : builder.sliceFromStart(input, own);
  });
  return builder.copy(node, inputs, { ...layout, axis, hidden: undefined });
}

/** Why pattern·v over the keys may not be causal; undefined when row i reads keys ≤ i only. */
function patternCausality(pattern: Suffix, node: NodeProto): string | undefined {
  if (pattern.notCausal) return pattern.notCausal;
  return pattern.hidden === 'zero'
    ? undefined
    : `node '${node.name}' (MatMul) mixes positions through a pattern with no constant mask ` +
        'hiding later keys';
}
