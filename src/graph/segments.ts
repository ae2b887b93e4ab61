/**
 * A graph cut, in node order, into segments run one after another, each fed what it reads from
 * the segments before it. Used to return many large values from one batch without holding them
 * twice: onnxruntime-node copies each output of a run into a new JavaScript buffer and frees
 * onnxruntime's own only when the run returns, so one run exposing a whole batch's cache holds
 * it twice at its end; run in segments, only one segment's outputs are held twice at a time.
 */
import { DataType, type ModelProto, type NodeProto } from '../onnx/proto.ts';
import { dtypeOfCode } from '../onnx/tensor-proto.ts';
import { valueInfo } from './builder.ts';
import { derive, nodesComputing } from './edit.ts';
import type { GraphIndex } from './graph.ts';

export interface Segment {
  proto: ModelProto;
  /** Graph inputs of the model it reads. */
  modelInputs: string[];
  /** Activations computed by earlier segments it reads. */
  carried: string[];
  /** Values that are not activations, computed before it, that it reads (fed from the shape arithmetic). */
  statics: string[];
  /** Its outputs: the wanted values it computes, then what later segments read from it. */
  outputs: string[];
}

/**
 * Segments computing `wanted` (activations or graph outputs), each holding at most `budget` bytes
 * of them (`bytesOf` gives a value's size in this run).
 * undefined when the graph cannot be cut (a node holds a subgraph, which may read any value).
 */
export function segmentGraph(
  index: GraphIndex,
  wanted: readonly string[],
  bytesOf: (value: string) => number,
  budget: number,
): Segment[] | undefined {
  const nodes = index.nodes;
  if (nodes.some((node) => node.attribute.some((a) => a.g || a.graphs?.length))) return undefined;
  const wantedSet = new Set(wanted);
  // Node ranges [starts[s], starts[s + 1]).
  // A node whose wanted outputs would take the segment past the budget begins the next one, so a
  // segment holds at most `budget` bytes of them, or one node's when that alone is more.
  const starts = [0];
  let bytes = 0;
  nodes.forEach((node, position) => {
    const own = node.output
      .filter((out) => wantedSet.has(out))
      .reduce((sum, out) => sum + bytesOf(out), 0);
    if (bytes > 0 && bytes + own > budget) {
      starts.push(position);
      bytes = 0;
    }
    bytes += own;
  });
  starts.push(nodes.length);
  const segmentOf = (position: number) =>
    starts.findIndex((start, s) => position >= start && position < starts[s + 1]);
  const isConstant = (node: NodeProto) =>
    node.output.every((out) => !out || !index.fromInputs.has(out));
  // The last segment reading each value computed by a node.
  const lastReader = new Map<string, number>();
  nodes.forEach((node, position) => {
    if (isConstant(node)) return;
    for (const input of node.input)
      if (input) lastReader.set(input, Math.max(lastReader.get(input) ?? -1, segmentOf(position)));
  });
  const inputNames = new Set(index.inputs.map((input) => input.name));
  const segments: Segment[] = [];
  for (let s = 0; s + 1 < starts.length; s++) {
    const own = nodes.slice(starts[s], starts[s + 1]).filter((node) => !isConstant(node));
    const produced = new Set(own.flatMap((node) => node.output));
    const outputs = [
      ...new Set([
        ...own.flatMap((node) => node.output).filter((value) => wantedSet.has(value)),
        ...[...produced].filter(
          (value) => value && index.isActivation(value) && (lastReader.get(value) ?? -1) > s,
        ),
      ]),
    ];
    const read = new Set(
      own
        .flatMap((node) => node.input)
        .filter((value) => value && !produced.has(value) && !index.initializerNames.has(value)),
    );
    const external = [...read].filter((value) => index.fromInputs.has(value));
    const modelInputs = external.filter((value) => inputNames.has(value));
    const carried = external.filter((value) => !inputNames.has(value) && index.isActivation(value));
    const statics = external.filter(
      (value) => !inputNames.has(value) && !index.isActivation(value),
    );
    const fed = [...modelInputs, ...carried, ...statics];
    const graph = index.proto.graph;
    const constants = nodesComputing(nodes.filter(isConstant), [...read]);
    const kept = [...constants, ...own];
    const used = new Set(kept.flatMap((node) => node.input));
    const typeOf = (value: string) =>
      dtypeOfCode(index.elementTypes.get(value) ?? DataType.FLOAT) ?? 'float32';
    const proto = derive(index.proto, {
      graph: derive(graph, {
        node: kept,
        initializer: graph.initializer.filter((tensor) => used.has(tensor.name)),
        input: fed.map((value) => valueInfo(value, typeOf(value))),
        output: outputs.map((value) => valueInfo(value, typeOf(value))),
        valueInfo: [],
      }),
    });
    segments.push({ proto, modelInputs, carried, statics, outputs });
  }
  return segments;
}
