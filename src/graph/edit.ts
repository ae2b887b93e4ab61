/**
 * Graph edits: the one mechanism behind reading and changing hooks.
 *
 * - expose: promote values to graph outputs, so one run returns them (run with cache);
 * - affine: V' = V·keep + add, with keep and add fed at run time (ablation, patching of chosen
 *   positions or units, scaling, batched sweeps — see graph/interventions.ts);
 * - replace: V' = a fed tensor (patching a whole hook);
 * - project-out: V' = V − (V·d̂)·r along the unit axis, with d̂ (a unit direction) and r (d̂ times
 *   a position mask; d̂ itself when every position is edited) fed at run time: removes the
 *   component along d̂, leaving V·d̂ = 0 and the orthogonal part unchanged.
 *
 * A rewritten value keeps its name: its producer's output is renamed `V::original` and the last
 * edit node writes `V`, so every reader and graph output sees the edited value and exposing `V`
 * returns it after the edit. Edits never copy weights: the new ModelProto shares the
 * initializers of the old one. Because keep/add/replacement are inputs, one edited graph (and
 * its onnxruntime session) serves every unit set and patch value of the same structure.
 */
import { codeOfDtype } from '../onnx/tensor-proto.ts';
import type { ModelProto, NodeProto, ValueInfoProto, GraphProto } from '../onnx/proto.ts';
import type { DType } from '../tensor.ts';
import type { GraphIndex } from './graph.ts';
import { int, ints, makeNode } from './builder.ts';

export type Rewrite =
  | { kind: 'affine'; value: string; keepInput: string; addInput: string }
  | { kind: 'replace'; value: string; input: string }
  /** `axis`: the unit axis the dot product runs along (V·d̂ summed over it, kept with size 1). */
  | {
      kind: 'project-out';
      value: string;
      directionInput: string;
      removalInput: string;
      axis: number;
    };

export interface EditPlan {
  expose: readonly string[];
  rewrites: readonly Rewrite[];
  /** dtype of each new graph input introduced by the rewrites. */
  inputTypes: ReadonlyMap<string, DType>;
}

export interface EditedGraph {
  proto: ModelProto;
  /** Exposed value → the graph output name that carries it (after any rewrite). */
  outputOf: Map<string, string>;
}

/** A structural fingerprint of a plan: equal signatures give identical graphs, so sessions can be shared. */
export function editSignature(plan: EditPlan): string {
  return JSON.stringify({ expose: [...plan.expose].sort(), rewrites: plan.rewrites });
}

export function applyEdits(index: GraphIndex, plan: EditPlan): EditedGraph {
  const graph = index.proto.graph;
  const rewritesOf = groupBy(plan.rewrites, (rewrite) => rewrite.value);
  const finalName = new Map<string, string>();
  const nodes: NodeProto[] = [];
  const opset = opsetOf(index.proto);
  const emitRewrites = (source: string, target: string, rewrites: Rewrite[], into: NodeProto[]) =>
    emitRewriteChain(source, target, rewrites, into, opset);

  // Rewrites of fed graph inputs go first; their readers are renamed below.
  for (const input of index.inputs) {
    const rewrites = rewritesOf.get(input.name);
    if (rewrites)
      finalName.set(input.name, emitRewrites(input.name, `${input.name}::edited`, rewrites, nodes));
  }
  for (const node of graph.node) {
    const renamedInputs = node.input.map((name) => finalName.get(name) ?? name);
    const rewrittenOutputs = node.output.filter((name) => rewritesOf.has(name));
    if (rewrittenOutputs.length === 0 && renamedInputs.every((name, i) => name === node.input[i])) {
      nodes.push(node);
      continue;
    }
    const outputs = node.output.map((name) => (rewritesOf.has(name) ? `${name}::original` : name));
    nodes.push(derive(node, { input: renamedInputs, output: outputs }));
    for (const name of rewrittenOutputs)
      emitRewrites(`${name}::original`, name, rewritesOf.get(name)!, nodes);
  }

  const outputOf = new Map<string, string>();
  const outputs: ValueInfoProto[] = [...graph.output];
  const declared = new Set(outputs.map((output) => output.name));
  const fedInputs = new Set(index.inputs.map((input) => input.name));
  for (const value of plan.expose) {
    // An unedited fed input needs no output: the caller already holds its value.
    if (fedInputs.has(value) && !finalName.has(value)) continue;
    const name = finalName.get(value) ?? value;
    outputOf.set(value, name);
    if (declared.has(name)) continue;
    declared.add(name);
    outputs.push(valueInfo(name, index.elementTypes.get(value)));
  }
  const newInputs = [...plan.inputTypes].map(([name, dtype]) =>
    valueInfo(name, codeOfDtype(dtype)),
  );
  const newGraph: GraphProto = derive(graph, {
    node: nodes,
    output: outputs,
    input: [...graph.input, ...newInputs],
  });
  return { proto: derive(index.proto, { graph: newGraph }), outputOf };
}

/** Emits the nodes of a chain of rewrites from `source`; the last writes `target`. Returns `target`. */
function emitRewriteChain(
  source: string,
  target: string,
  rewrites: Rewrite[],
  nodes: NodeProto[],
  opset: number,
): string {
  let current = source;
  rewrites.forEach((rewrite, step) => {
    const result = step === rewrites.length - 1 ? target : `${target}::step${step}`;
    if (rewrite.kind === 'replace') {
      nodes.push(
        makeNode(`teardown/${target}/replace${step}`, 'Identity', [rewrite.input], [result]),
      );
    } else if (rewrite.kind === 'project-out') {
      nodes.push(
        ...projectOutNodes(current, result, rewrite, `teardown/${target}/project${step}`, opset),
      );
    } else {
      const scaled = `${target}::scaled${step}`;
      nodes.push(
        makeNode(`teardown/${target}/keep${step}`, 'Mul', [current, rewrite.keepInput], [scaled]),
      );
      nodes.push(
        makeNode(`teardown/${target}/add${step}`, 'Add', [scaled, rewrite.addInput], [result]),
      );
    }
    current = result;
  });
  return current;
}

/**
 * V' = V − (V·d̂)·r: dot = ReduceSum(V·d̂, axis, keepdims) is [.., 1, ..] (the unit axis kept with
 * size 1), broadcast back over the units by the product with r. ReduceSum takes its axes as an
 * input from opset 13 and as an attribute before.
 */
function projectOutNodes(
  source: string,
  result: string,
  rewrite: Extract<Rewrite, { kind: 'project-out' }>,
  prefix: string,
  opset: number,
): NodeProto[] {
  const [product, dot, component, axes] = ['product', 'dot', 'component', 'axes'].map(
    (part) => `${result}::${part}`,
  );
  const nodes = [makeNode(`${prefix}/Mul`, 'Mul', [source, rewrite.directionInput], [product])];
  if (opset >= 13) {
    nodes.push(
      makeNode(`${prefix}/axes`, 'Constant', [], [axes], {
        value: {
          type: 'tensor',
          value: { dtype: 'int64', dims: [1], data: BigInt64Array.of(BigInt(rewrite.axis)) },
        },
      }),
    );
    nodes.push(
      makeNode(`${prefix}/ReduceSum`, 'ReduceSum', [product, axes], [dot], { keepdims: int(1) }),
    );
  } else {
    nodes.push(
      makeNode(`${prefix}/ReduceSum`, 'ReduceSum', [product], [dot], {
        axes: ints([rewrite.axis]),
        keepdims: int(1),
      }),
    );
  }
  nodes.push(makeNode(`${prefix}/MulRemoval`, 'Mul', [dot, rewrite.removalInput], [component]));
  nodes.push(makeNode(`${prefix}/Sub`, 'Sub', [source, component], [result]));
  return nodes;
}

/** The model's ai.onnx opset. */
function opsetOf(proto: ModelProto): number {
  const entry = proto.opsetImport.find(
    (opset) => opset.domain === '' || opset.domain === 'ai.onnx',
  );
  return entry ? Number(entry.version) : 1;
}

function valueInfo(name: string, elemType: number | undefined): ValueInfoProto {
  return elemType === undefined ? { name } : { name, type: { tensorType: { elemType } } };
}

/**
 * The nodes that `values` depend on, in graph order. A node holding a subgraph may read any outer
 * value by name, so then every node is kept.
 */
export function nodesComputing(nodes: readonly NodeProto[], values: Iterable<string>): NodeProto[] {
  if (
    nodes.some((node) =>
      node.attribute.some((attribute) => attribute.g || attribute.graphs?.length),
    )
  )
    return [...nodes];
  const needed = new Set(values);
  const kept: NodeProto[] = [];
  for (let k = nodes.length - 1; k >= 0; k--) {
    if (!nodes[k].output.some((output) => needed.has(output))) continue;
    kept.push(nodes[k]);
    for (const input of nodes[k].input) if (input) needed.add(input);
  }
  return kept.reverse();
}

/** The graph's nodes without those no graph output depends on. */
export function pruneUnused(graph: GraphProto): NodeProto[] {
  return nodesComputing(
    graph.node,
    graph.output.map((output) => output.name),
  );
}

/** A copy of a protobuf message with some fields replaced; unset fields keep the prototype's defaults. */
export function derive<T extends object>(message: T, changes: Partial<T>): T {
  return Object.assign(Object.create(Object.getPrototypeOf(message)), message, changes);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}
