/**
 * The part of a graph that computes values which are not activations (shape arithmetic, `Range`
 * positions, tables indexed by them) from the shapes of the values they read, not from the values
 * themselves: every `Shape` and `Size` node becomes a fed input, so computing a Reshape's target
 * [batch, seq, d] for another batch size costs a few integer ops instead of a pass through the
 * layers upstream of the `Shape` (which onnxruntime would otherwise run to materialise its input).
 */
import type { ModelProto, NodeProto, ValueInfoProto } from '../onnx/proto.ts';
import { valueInfo } from './builder.ts';
import { derive } from './edit.ts';
import type { GraphIndex } from './graph.ts';

/** A `Shape` or `Size` read: its output is fed with the shape of `of` (sliced to [start, end) for Shape). */
export interface ShapeRead {
  output: string;
  of: string;
  op: 'Shape' | 'Size';
  start?: number;
  end?: number;
}

export interface ShapeGraph {
  proto: ModelProto;
  reads: ShapeRead[];
}

/** undefined when a value cannot be reached without reading an activation's contents. */
export function shapeGraph(index: GraphIndex, values: readonly string[]): ShapeGraph | undefined {
  const needed = new Set<number>();
  const reads: ShapeRead[] = [];
  const pending = [...values];
  const seen = new Set<string>();
  while (pending.length) {
    const value = pending.pop()!;
    if (seen.has(value) || index.initializerNames.has(value)) continue;
    seen.add(value);
    const producer = index.producer.get(value);
    if (producer === undefined) return undefined; // a fed input: its contents are data
    const node = index.nodes[producer];
    if (node.opType === 'Shape' || node.opType === 'Size') {
      reads.push({ output: value, of: node.input[0], op: node.opType, ...shapeSlice(node) });
      continue;
    }
    if (
      index.isActivation(value) ||
      node.attribute.some((attribute) => attribute.g || attribute.graphs?.length)
    )
      return undefined;
    needed.add(producer);
    pending.push(...node.input.filter(Boolean));
  }
  const nodes = index.nodes.filter((_, position) => needed.has(position));
  const used = new Set(nodes.flatMap((node) => node.input));
  const graph = derive(index.proto.graph, {
    node: nodes,
    input: reads.map((read) =>
      valueInfo(read.output, 'int64', read.op === 'Shape' ? ['rank'] : []),
    ),
    output: values.map((value) => {
      const dtype = index.dtype(value);
      return dtype ? valueInfo(value, dtype) : ({ name: value } as ValueInfoProto);
    }),
    initializer: index.proto.graph.initializer.filter((tensor) => used.has(tensor.name)),
    valueInfo: [],
  });
  return { proto: derive(index.proto, { graph }), reads };
}

function shapeSlice(node: NodeProto): { start?: number; end?: number } {
  const attribute = (name: string) => node.attribute.find((entry) => entry.name === name)?.i;
  const start = attribute('start');
  const end = attribute('end');
  return {
    ...(start !== undefined && start !== null ? { start: Number(start) } : {}),
    ...(end !== undefined && end !== null ? { end: Number(end) } : {}),
  };
}
