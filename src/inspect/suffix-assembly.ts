/**
 * The suffix graph's inputs and nodes made into one model (causal-suffix.ts): the original
 * constant nodes (those computed from initializers alone) and the emitted ones, pruned to what
 * the output needs, with graph inputs for the hook's suffix, `start`, each completed value's
 * clean whole, the cut activations and the full-length static values.
 */
import { valueInfo } from '../graph/builder.ts';
import { derive, pruneUnused } from '../graph/edit.ts';
import type { SuffixGraph } from './causal-suffix.ts';
import type { SuffixBuilder } from './suffix-builder.ts';

export function assembleSuffixGraph(builder: SuffixBuilder, output: string): SuffixGraph {
  const graph = builder.index.proto.graph;
  const constantNodes = builder.index.nodes.filter((node) =>
    node.output.every((out) => !out || !builder.index.fromInputs.has(out)),
  );
  const dtype = (value: string) => builder.index.dtype(value) ?? 'float32';
  const feeds = [...builder.cleanInputs.keys(), ...builder.cutActivations, ...builder.staticInputs];
  const inputs = [
    valueInfo(builder.hookInput, dtype(builder.hookValue)),
    valueInfo(builder.startInput, 'int64', [1]),
    ...[...builder.cleanInputs].map(([input, value]) => valueInfo(input, dtype(value))),
    ...[...builder.cutActivations, ...builder.staticInputs].map((value) =>
      valueInfo(value, dtype(value)),
    ),
  ];
  const draft = derive(graph, {
    node: [...constantNodes, ...builder.emitter.nodes],
    input: inputs,
    output: [valueInfo(output, dtype(output))],
    valueInfo: [],
  });
  const nodes = pruneUnused(draft);
  const used = new Set(nodes.flatMap((node) => node.input));
  const initializer = [...graph.initializer, ...builder.emitter.initializers].filter((t) =>
    used.has(t.name),
  );
  const proto = derive(builder.index.proto, {
    graph: derive(draft, {
      node: nodes,
      initializer,
      input: inputs.filter((info) => used.has(info.name)),
    }),
  });
  const fed = new Set(feeds.filter((name) => used.has(name)));
  return {
    proto,
    hookInput: builder.hookInput,
    startInput: builder.startInput,
    cleanInputs: new Map([...builder.cleanInputs].filter(([input]) => fed.has(input))),
    cutActivations: [...builder.cutActivations].filter((value) => fed.has(value)),
    staticInputs: [...builder.staticInputs].filter((value) => fed.has(value)),
  };
}
