/**
 * Scoring the last position only, without computing the rest: when a sequence model's loss (or a
 * patching metric) reads only its last position, much of the graph computes rows it never sees —
 * for a transformer, after the last attention, the MLP and the unembedding of all but one
 * position, and (optionally, see LastPositionOptions) in the last attention itself every query
 * but the last. This pass builds
 * `value[:, -1:]` by copying the nodes that produce it onto their inputs' last positions,
 * recursively, following the position axis wherever it moves, and slicing only where a node mixes
 * positions along it (or is unknown). The original nodes stay in the graph; those nothing reads any
 * more are pruned with `pruneUnused`.
 *
 * Followed: elementwise unary ops; Add/Sub/Mul/Div/Where (operands without the position axis
 * broadcast as they are, constant ones are sliced); Softmax / LogSoftmax / LayerNormalization over
 * the last axis when positions lie elsewhere; Transpose (the axis moves); Split along another axis;
 * Reshape that keeps every axis up to the positions (its target shape gets 1 there); MatMul along
 * A's rows or B's columns, or a broadcast batch axis. In attention, scores = q·kᵀ then follow q's
 * last row only — one query against every key — and pattern·v its last row: keys and values are
 * still computed at every position, as they must be.
 */
import type { Dim } from '../graph/builder.ts';
import { ELEMENTWISE_UNARY } from '../graph/elementwise-ops.ts';
import type { GraphIndex } from '../graph/graph.ts';
import type { NodeProto } from '../onnx/proto.ts';
import { toNumber } from '../onnx/proto.ts';
import { defaultOpset } from '../onnx/model-file.ts';
import type { Emitter } from './emitter.ts';

const BROADCASTING = new Set(['Add', 'Sub', 'Mul', 'Div', 'Where']);
const LAST_AXIS = new Set(['Softmax', 'LogSoftmax', 'LayerNormalization']);

export interface LastPositionOptions {
  /**
   * Values to slice rather than recompute from what produced them — values that will be replaced
   * at run time (a patched hook), whose last position must be read from them.
   */
  barriers?: ReadonlySet<string>;
  /**
   * Follow the positions into products of two computed values (attention's q·kᵀ and pattern·v),
   * computing one query row. Worth it for forward runs over long sequences; in a training step on
   * short ones (the grokking transformer's 3 tokens) the sliced copies of q's producers cost more
   * in the backward pass (their gradients are padded back and added to the full ones) than they
   * save: 128 → 143 ms per step. Off: the attention output is sliced instead.
   */
  intoAttention?: boolean;
}

/** `value`[:, -1:] (the position axis is axis 1 of `value`); `valueShape` gives every value's probed dims. */
export function lastPositionOf(
  index: GraphIndex,
  emitter: Emitter,
  value: string,
  valueShape: (value: string) => readonly Dim[] | undefined,
  options: LastPositionOptions = {},
): string {
  const barriers = options.barriers ?? new Set<string>();
  const initializerDims = new Map(
    index.proto.graph.initializer.map((t) => [t.name, t.dims.map(toNumber)]),
  );
  const shapeOf = (v: string) => valueShape(v) ?? initializerDims.get(v);
  const positions = shapeOf(value)?.[1];
  const memo = new Map<string, string>();
  const END = Number.MAX_SAFE_INTEGER;
  const slice = (v: string, axis: number) =>
    emitter.op(
      'Slice',
      [v, emitter.int64s([-1]), emitter.int64s([END]), emitter.int64s([axis])],
      {},
      'teardown/last',
    );
  /** Whether `v` computes from the inputs and has the positions along `axis`. */
  const hasPositionAxis = (v: string, axis: number) =>
    shapeOf(v)?.[axis] === positions && index.fromInputs.has(v);

  /** The last position of `v` along `axis`: its producer copied onto its inputs' last positions, or a slice. */
  const visit = (v: string, axis: number): string => {
    const key = `${v}|${axis}`;
    if (!memo.has(key)) {
      const position = index.producer.get(v);
      const node = position === undefined || barriers.has(v) ? undefined : index.nodes[position];
      memo.set(key, (node && copyOnLast(node, v, axis)) ?? slice(v, axis));
    }
    return memo.get(key)!;
  };

  const copyOnLast = (node: NodeProto, output: string, axis: number): string | undefined => {
    const rank = shapeOf(output)?.length ?? 0;
    const [first, second] = node.input;
    const copy = (inputs: string[]) => {
      const outputs = emitter.opN(node.opType, inputs, {}, 'teardown/last', node.output.length);
      emitter.nodes[emitter.nodes.length - 1].attribute = node.attribute; // the original's attributes, as they are
      node.output.forEach((original, k) => memo.set(`${original}|${axis}`, outputs[k]));
      return outputs[node.output.indexOf(output)];
    };
    const attribute = (name: string, fallback: number) =>
      toNumber(node.attribute.find((a) => a.name === name)?.i ?? fallback);
    const normalise = (a: number) => (a < 0 ? a + rank : a);
    // Further inputs of these ops (Dropout's ratio and training mode) are scalars: kept as they are.
    if (ELEMENTWISE_UNARY.has(node.opType))
      return copy([visit(first, axis), ...node.input.slice(1)]);
    if (LAST_AXIS.has(node.opType)) {
      // Softmax and LogSoftmax before opset 13 default to axis 1 (and flatten from there).
      const defaultAxis =
        node.opType !== 'LayerNormalization' && defaultOpset(index.proto) < 13 ? 1 : -1;
      return normalise(attribute('axis', defaultAxis)) === rank - 1 && axis !== rank - 1
        ? copy([visit(first, axis), ...node.input.slice(1)])
        : undefined;
    }
    if (BROADCASTING.has(node.opType))
      return copy(node.input.map((input) => operandOnLast(input, rank, axis)));
    if (node.opType === 'Transpose') return copy([visit(first, ints(node, 'perm')[axis])]);
    if (node.opType === 'Split')
      return normalise(attribute('axis', 0)) === axis
        ? undefined
        : copy([visit(first, axis), ...node.input.slice(1)]);
    if (node.opType === 'Reshape') {
      // Only a reshape that keeps every axis up to the position axis keeps the positions there; its target shape gets 1 at that axis.
      const [from, to] = [shapeOf(first), shapeOf(output)];
      if (!from || !to || from.slice(0, axis + 1).some((dim, a) => dim !== to[a])) return undefined;
      return copy([
        visit(first, axis),
        emitter.op(
          'ScatterElements',
          [second, emitter.int64s([axis]), emitter.int64s([1])],
          {},
          'teardown/last',
        ),
      ]);
    }
    if (
      node.opType === 'MatMul' &&
      rank >= 2 &&
      (options.intoAttention || !(index.fromInputs.has(first) && index.fromInputs.has(second)))
    ) {
      // Rows of the result are rows of A, columns are columns of B; batch axes broadcast like an elementwise op.
      const [rankA, rankB] = [shapeOf(first)?.length ?? 0, shapeOf(second)?.length ?? 0];
      if (axis === rank - 2 && rankA >= 2)
        return hasPositionAxis(first, rankA - 2)
          ? copy([visit(first, rankA - 2), second])
          : undefined;
      if (axis === rank - 1 && rankB >= 2)
        return hasPositionAxis(second, rankB - 1)
          ? copy([first, visit(second, rankB - 1)])
          : undefined;
      if (axis < rank - 2 && rankA >= 2 && rankB >= 2)
        return copy([operandOnLast(first, rank, axis), operandOnLast(second, rank, axis)]);
    }
    return undefined;
  };

  /**
   * An operand broadcast to rank `rank` (aligned from the right): one with the positions at the
   * matching axis is cut like the result (recursively where it computes from the inputs, else by a
   * slice, e.g. a positional embedding [seq, d]); one without them (size 1 or no such axis) stays.
   */
  const operandOnLast = (input: string, rank: number, axis: number): string => {
    const shape = shapeOf(input);
    const own = shape ? axis - (rank - shape.length) : -1;
    if (!shape || own < 0 || shape[own] === 1) return input;
    return hasPositionAxis(input, own) ? visit(input, own) : slice(input, own);
  };

  return positions !== undefined && hasPositionAxis(value, 1) ? visit(value, 1) : slice(value, 1);
}

function ints(node: NodeProto, name: string): number[] {
  return (node.attribute.find((a) => a.name === name)?.ints ?? []).map(toNumber);
}
