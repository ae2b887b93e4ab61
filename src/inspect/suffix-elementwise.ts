/**
 * Elementwise ops on a suffix graph (causal-suffix.ts), where attention's constant causal mask is
 * recognised: on pairwise scores s[i, j], a Where with a fill ≤ −1e30 or an added mask ≤ −1e30 at
 * every j > i (causal-mask.ts checks the values) hides every later key, and scaling by a positive
 * constant keeps them hidden.
 */
import type { NodeProto } from '../onnx/proto.ts';
import type { Tensor } from '../tensor.ts';
import {
  allFinitePositive,
  allHidden,
  HIDDEN_BELOW,
  hidesLaterKeys,
  noneNanOrPlusInfinity,
} from './causal-mask.ts';
import type { SuffixBuilder } from './suffix-builder.ts';
import type { Suffix } from './suffix-layout.ts';

/**
 * Elementwise with broadcasting: recomputed operands share their positions' axis (aligned from
 * the right); an operand that is not recomputed and runs along the positions is sliced to them.
 * On pairwise scores, a constant mask that hides every later key is recognised here.
 */
export function elementwise(
  builder: SuffixBuilder,
  node: NodeProto,
  layouts: (Suffix | undefined)[],
): boolean {
  const rank = builder.rank(node.output[0]);
  const aligned = layouts.map(
    (layout, k) =>
      layout && {
        ...layout,
        axis: layout.axis + rank - builder.rank(node.input[k]),
        keyAxis:
          layout.keyAxis === undefined
            ? undefined
            : layout.keyAxis + rank - builder.rank(node.input[k]),
      },
  );
  const first = aligned.find((layout) => layout !== undefined)!;
  if (
    aligned.some(
      (l) =>
        l !== undefined &&
        (l.axis !== first.axis || l.keyAxis !== first.keyAxis || l.flat !== first.flat),
    )
  )
    return false;
  const inputs: string[] = [];
  for (const [k, input] of node.input.entries()) {
    if (aligned[k] || !input) {
      inputs.push(builder.read(input));
      continue;
    }
    const shape = builder.shape(input);
    if (!shape) return false;
    const own = first.axis - (rank - shape.length);
    if (own < 0 || shape[own] === 1) inputs.push(builder.read(input));
    else if (shape[own] === builder.positions && first.flat === undefined)
      inputs.push(builder.sliceFromStart(input, own));
    else return false;
  }
  const notCausal = aligned.find((l) => l?.notCausal)?.notCausal;
  const hidden =
    first.keyAxis === undefined ? undefined : hiddenAfter(builder, node, aligned, rank, first);
  return builder.copy(node, inputs, {
    kind: 'suffix',
    axis: first.axis,
    keyAxis: first.keyAxis,
    notCausal,
    hidden,
    flat: first.flat,
  });
}

/**
 * Which later keys of pairwise scores are hidden after an elementwise node with constant
 * operands.
 */
function hiddenAfter(
  builder: SuffixBuilder,
  node: NodeProto,
  aligned: (Suffix | undefined)[],
  rank: number,
  scores: Suffix,
): Suffix['hidden'] {
  if (aligned.filter((l) => l !== undefined).length !== 1) return undefined;
  const constant = (k: number) =>
    aligned[k] || !node.input[k] || builder.index.isActivation(node.input[k])
      ? undefined
      : builder.sources.valueOf(node.input[k]);
  const hides = (mask: Tensor, hidden: (i: number) => boolean) =>
    hidesLaterKeys(mask, rank, scores.axis, scores.keyAxis!, builder.positions, hidden);
  const before = aligned.find((l) => l !== undefined)!.hidden;
  if (node.opType === 'Where') {
    // Where(c, fill, x) or Where(c, x, fill): a fill ≤ −1e30 hides x where c selects it.
    const fillAt = aligned[1] ? 2 : 1;
    const [condition, fill] = [constant(0), constant(fillAt)];
    if (!fill || !allHidden(fill)) return undefined;
    if (before === 'minus-infinity') return before;
    if (!condition) return undefined;
    const selected = (i: number) => Boolean(condition.data[i]) === (fillAt === 1);
    return hides(condition, selected) ? 'minus-infinity' : undefined;
  }
  const other = constant(aligned[0] ? 1 : 0);
  if (!other) return undefined;
  if (node.opType === 'Add') {
    if (before === 'minus-infinity' && noneNanOrPlusInfinity(other)) return before;
    return hides(other, (i) => Number(other.data[i]) <= HIDDEN_BELOW)
      ? 'minus-infinity'
      : undefined;
  }
  if ((node.opType === 'Mul' || (node.opType === 'Div' && aligned[0])) && allFinitePositive(other))
    return before;
  return undefined;
}
