/**
 * Reshapes on a suffix graph (causal-suffix.ts), and the Gemm that reads flattened rows: a Reshape
 * that keeps every axis up to the positions keeps them there, [batch, positions, d] →
 * [batch·positions, d] makes each row one (example, position) for a Gemm, and the way back
 * restores the positions. Each Reshape target, fed at full length, gets the suffix's size.
 */
import { int, type Dim } from '../graph/builder.ts';
import type { NodeProto } from '../onnx/proto.ts';
import type { SuffixBuilder } from './suffix-builder.ts';
import { intAttribute, type Suffix } from './suffix-layout.ts';

/**
 * A Reshape that keeps every axis up to the positions keeps them there; its target gets the
 * suffix length at that axis.
 */
export function reshape(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  const [from, to] = [builder.shape(node.input[0]), builder.shape(node.output[0])];
  if (layout.keyAxis !== undefined || !from || !to) return false;
  const same = (a: readonly Dim[], b: readonly Dim[]) =>
    a.length === b.length && a.every((dim, k) => dim === b[k]);
  const data = builder.read(node.input[0]);
  if (layout.flat === undefined) {
    if (from.slice(0, layout.axis + 1).every((dim, a) => dim === to[a]))
      return builder.copy(
        node,
        [data, builder.setTarget(node.input[1], layout.axis, builder.length())],
        layout,
      );
    // [batch, positions, ...rest] → [batch·positions, ...rest]: the rows of a Gemm.
    if (layout.axis > 0 && same(to.slice(1), from.slice(layout.axis + 1))) {
      const rows = builder.emitter.op(
        'ReduceProd',
        [builder.leadingShape(data, layout.axis + 1)],
        { keepdims: int(1) },
        'teardown/suffix',
      );
      const target = builder.setTarget(node.input[1], 0, rows);
      return builder.copy(node, [data, target], { ...layout, axis: 0, flat: layout.axis });
    }
    return false;
  }
  // Back from rows: [batch·positions, ...rest] → [batch, positions, ...rest].
  const axis = layout.flat;
  if (
    layout.axis !== 0 ||
    to[axis] !== builder.positions ||
    !same(to.slice(axis + 1), from.slice(1))
  )
    return false;
  const target = builder.setTarget(node.input[1], axis, builder.length());
  return builder.copy(node, [data, target], { ...layout, axis, flat: undefined });
}

/** Gemm over flattened rows (transA 0): each row is one (example, position). */
export function gemm(builder: SuffixBuilder, node: NodeProto, layout: Suffix): boolean {
  if (layout.flat === undefined || layout.axis !== 0 || intAttribute(node, 'transA', 0) !== 0)
    return false;
  return builder.copy(
    node,
    node.input.map((input) => builder.read(input)),
    { ...layout, hidden: undefined },
  );
}
