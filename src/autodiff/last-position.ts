/**
 * Scoring the last position only, without computing the rest: when a sequence model's loss reads
 * only its last position, every position-wise op after the last mixing of positions (attention)
 * computes rows the loss never sees — for a one-layer transformer, the MLP and the unembedding of
 * all but one position, in the forward and the backward pass. This pass builds `value[:, -1:]` by
 * copying the position-wise nodes that produce it onto their inputs' last positions, recursively,
 * and slicing only where a node mixes positions (or is unknown). The original nodes stay in the
 * graph; those nothing reads any more are pruned with `pruneUnused`.
 *
 * Position-wise here: elementwise unary ops, the last-axis Softmax / LogSoftmax /
 * LayerNormalization, Add/Sub/Mul/Div (operands without the position axis broadcast as they are),
 * and MatMul by a matrix (rank-2 right operand).
 */
import type { Dim } from '../graph/builder.ts';
import type { GraphIndex } from '../graph/graph.ts';
import type { GraphProto, NodeProto } from '../onnx/proto.ts';
import { toNumber } from '../onnx/proto.ts';
import type { Emitter } from './emitter.ts';

const UNARY = new Set(['Relu', 'LeakyRelu', 'Gelu', 'Tanh', 'Sigmoid', 'Erf', 'Exp', 'Log', 'Neg', 'Sqrt', 'Identity', 'Abs']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);
const LAST_AXIS = new Set(['Softmax', 'LogSoftmax', 'LayerNormalization']);

export function lastPositionOf(index: GraphIndex, emitter: Emitter, value: string, valueShape: (value: string) => readonly Dim[] | undefined): string {
  const initializerDims = new Map(index.proto.graph.initializer.map((t) => [t.name, t.dims.map(toNumber)]));
  const shapeOf = (v: string) => valueShape(v) ?? initializerDims.get(v);
  const memo = new Map<string, string>();
  const END = Number.MAX_SAFE_INTEGER;
  const slice = (v: string) => emitter.op('Slice', [v, emitter.int64s([-1]), emitter.int64s([END]), emitter.int64s([1])], {}, 'teardown/last');
  const positions = shapeOf(value)?.[1];
  const hasPositions = (v: string, rank: number) => {
    const shape = shapeOf(v);
    return shape !== undefined && shape.length === rank && shape[1] === positions && index.fromInputs.has(v);
  };
  const visit = (v: string): string => {
    if (memo.has(v)) return memo.get(v)!;
    const rank = shapeOf(v)?.length ?? 0;
    const position = index.producer.get(v);
    const node = position === undefined ? undefined : index.nodes[position];
    let result: string | undefined;
    if (node && rank >= 3 && node.output.filter(Boolean).length === 1) result = copyOnLast(node, rank);
    memo.set(v, result ?? slice(v));
    return memo.get(v)!;
  };
  const copyOnLast = (node: NodeProto, rank: number): string | undefined => {
    const [first, second] = node.input;
    const copy = (inputs: string[]) => {
      const out = emitter.op(node.opType, inputs, {}, 'teardown/last');
      emitter.nodes[emitter.nodes.length - 1].attribute = node.attribute; // the original's attributes, as they are
      return out;
    };
    if (UNARY.has(node.opType)) return copy([visit(first)]);
    if (LAST_AXIS.has(node.opType)) {
      const axis = toNumber(node.attribute.find((a) => a.name === 'axis')?.i ?? -1);
      return axis === -1 || axis === rank - 1 ? copy([visit(first), ...node.input.slice(1)]) : undefined;
    }
    if (BINARY.has(node.opType)) return copy(node.input.map((input) => lastOfOperand(input, rank)));
    if (node.opType === 'MatMul' && shapeOf(second)?.length === 2 && !index.fromInputs.has(second)) return copy([visit(first), second]);
    return undefined;
  };
  /**
   * A broadcast operand: one with the value's rank and the position axis is cut like the value;
   * a lower-rank one (aligned from the right, e.g. a positional embedding [seq, d]) is sliced
   * along the axis that meets the position axis; one with no position axis stays as it is.
   */
  const lastOfOperand = (input: string, rank: number): string => {
    if (hasPositions(input, rank)) return visit(input);
    const shape = shapeOf(input);
    const axis = shape ? 1 - (rank - shape.length) : -1;
    if (!shape || axis < 0 || shape[axis] === 1) return input;
    if (shape.length === rank) return slice(input);
    return emitter.op('Slice', [input, emitter.int64s([-1]), emitter.int64s([END]), emitter.int64s([axis])], {}, 'teardown/last');
  };
  if (positions === undefined || !hasPositions(value, shapeOf(value)!.length)) return slice(value);
  return visit(value);
}

/** The graph's nodes without those no graph output depends on (all of them when a node holds a subgraph). */
export function pruneUnused(graph: GraphProto): NodeProto[] {
  if (graph.node.some((node) => node.attribute.some((a) => a.g || a.graphs?.length))) return graph.node;
  const needed = new Set(graph.output.map((output) => output.name));
  const kept: NodeProto[] = [];
  for (let k = graph.node.length - 1; k >= 0; k--) {
    const node = graph.node[k];
    if (!node.output.some((output) => needed.has(output))) continue;
    kept.push(node);
    for (const input of node.input) if (input) needed.add(input);
  }
  return kept.reverse();
}

