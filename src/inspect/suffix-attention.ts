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
  const [rankA, rankB, rank] = [
    builder.rank(node.input[0]),
    builder.rank(node.input[1]),
    builder.rank(node.output[0]),
  ];
  if (rankA < 2 || rankB < 2) return false;
  const [left, right] = node.input;
  const broadcast = (layout: Suffix, ownRank: number) =>
    layout.axis < ownRank - 2 && layout.keyAxis === undefined;
  if (a && !b) {
    if (a.keyAxis === undefined && a.axis === rankA - 2)
      return builder.copy(node, [builder.read(left), builder.read(right)], {
        ...a,
        axis: rank - 2,
        hidden: undefined,
      });
    if (a.keyAxis === rankA - 1 && a.axis === rankA - 2)
      return builder.copy(node, [builder.read(left), builder.read(right)], {
        kind: 'suffix',
        axis: rank - 2,
        notCausal: patternCausality(a, node),
      });
    if (broadcast(a, rankA)) return matMulBroadcast(builder, node, a.axis + rank - rankA, a);
    return false;
  }
  if (b && !a) {
    if (b.keyAxis === undefined && b.axis === rankB - 1)
      return builder.copy(node, [builder.read(left), builder.read(right)], {
        ...b,
        axis: rank - 1,
        hidden: undefined,
      });
    if (broadcast(b, rankB)) return matMulBroadcast(builder, node, b.axis + rank - rankB, b);
    return false;
  }
  if (!a || !b) return false;
  const use = `node '${node.name}' (MatMul)`;
  if (
    a.keyAxis === undefined &&
    a.axis === rankA - 2 &&
    b.keyAxis === undefined &&
    b.axis === rankB - 1
  ) {
    // Scores: query rows i ≥ start against every key j.
    const notCausal = a.notCausal ?? b.notCausal;
    return builder.copy(node, [builder.read(left), builder.complete(right, use)], {
      kind: 'suffix',
      axis: rank - 2,
      keyAxis: rank - 1,
      notCausal,
    });
  }
  if (
    a.keyAxis === rankA - 1 &&
    a.axis === rankA - 2 &&
    b.keyAxis === undefined &&
    b.axis === rankB - 2
  ) {
    return builder.copy(node, [builder.read(left), builder.complete(right, use)], {
      kind: 'suffix',
      axis: rank - 2,
      notCausal: patternCausality(a, node),
    });
  }
  if (
    broadcast(a, rankA) &&
    broadcast(b, rankB) &&
    a.axis + rank - rankA === b.axis + rank - rankB
  ) {
    return builder.copy(node, [builder.read(left), builder.read(right)], {
      kind: 'suffix',
      axis: a.axis + rank - rankA,
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
