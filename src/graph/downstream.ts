/**
 * The part of a graph downstream of one value: the nodes that (transitively) read it, plus the
 * constant subgraphs they use. Patching that value then needs only this part, fed with the value
 * and with the "cut" — every other input-dependent value the downstream nodes read — taken from
 * a clean run. An activation patch sweep over a late hook skips everything before it.
 */
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { valueInfo } from './builder.ts';
import { derive } from './edit.ts';
import type { GraphIndex } from './graph.ts';
import { dtypeOfCode } from '../onnx/tensor-proto.ts';

export interface DownstreamGraph {
  proto: ModelProto;
  /** Values fed from a clean run (the patched value first). */
  inputs: string[];
}

/**
 * undefined when the output does not depend on the value, or the value is a graph input (nothing
 * to skip) or a constant (e.g. a parameter copy: its producer belongs to the constant part).
 */
export function downstreamGraph(
  index: GraphIndex,
  value: string,
  output: string,
): DownstreamGraph | undefined {
  if (!index.producer.has(value) || !index.fromInputs.has(value)) return undefined;
  const downstream = new Set<number>();
  const reached = new Set([value]);
  index.nodes.forEach((node, position) => {
    if (!node.input.some((input) => reached.has(input))) return;
    downstream.add(position);
    for (const out of node.output) if (out) reached.add(out);
  });
  if (!reached.has(output)) return undefined;
  // Constant subgraphs (no graph input behind them) come along: they have no batch axis to feed.
  const kept = index.nodes.map(
    (node, position) =>
      downstream.has(position) || node.output.every((out) => !out || !index.fromInputs.has(out)),
  );
  const produced = new Set(
    index.nodes.flatMap((node, position) => (kept[position] ? node.output : [])),
  );
  const cut = new Set<string>([value]);
  index.nodes.forEach((node, position) => {
    if (!kept[position]) return;
    for (const input of node.input)
      if (input && !produced.has(input) && !index.initializerNames.has(input)) cut.add(input);
  });
  const nodes = index.nodes.filter((_, position) => kept[position]);
  const used = new Set(nodes.flatMap((node) => node.input));
  const graph = index.proto.graph;
  const inputs = [...cut];
  const proto = derive(index.proto, {
    graph: derive(graph, {
      node: nodes,
      initializer: graph.initializer.filter((tensor) => used.has(tensor.name)),
      input: inputs.map((name) =>
        valueInfo(name, dtypeOfCode(index.elementTypes.get(name) ?? DataType.FLOAT) ?? 'float32'),
      ),
      output: graph.output.filter((info) => info.name === output),
      valueInfo: [],
    }),
  });
  return { proto, inputs };
}
