/**
 * A read-only index over a model's main graph: who produces and consumes each value, each
 * value's element type, and which values are computed from the graph inputs (as opposed to
 * constants and weights). Hooks and edits are built on it.
 */
import { dtypeOfCode } from '../onnx/tensor-proto.ts';
import type { ModelProto, NodeProto, ValueInfoProto } from '../onnx/proto.ts';
import type { DType } from '../tensor.ts';
import { inferElementTypes } from './dtypes.ts';

export class GraphIndex {
  readonly nodes: readonly NodeProto[];
  /** Value name → index of the node that produces it. */
  readonly producer = new Map<string, number>();
  /** Value name → indices of the nodes that read it, in graph order. */
  readonly consumers = new Map<string, number[]>();
  readonly initializerNames: ReadonlySet<string>;
  /** Graph inputs that are fed at run time (initializers listed as inputs excluded). */
  readonly inputs: readonly ValueInfoProto[];
  readonly outputNames: ReadonlySet<string>;
  /** Value name → ONNX element type code, where known. */
  readonly elementTypes: ReadonlyMap<string, number>;
  /** Values whose computation reads at least one fed graph input (its values or only its shape). */
  readonly fromInputs: ReadonlySet<string>;
  /**
   * Values that depend on the values fed, not only on their shapes: activations. Shape arithmetic,
   * `Range` positions and tables indexed by them (a position embedding) are the same for every
   * example of a given input shape.
   */
  readonly dataDependent: ReadonlySet<string>;

  constructor(readonly proto: ModelProto) {
    const graph = proto.graph;
    this.nodes = graph.node;
    this.initializerNames = new Set(graph.initializer.map((tensor) => tensor.name));
    this.inputs = graph.input.filter((input) => !this.initializerNames.has(input.name));
    this.outputNames = new Set(graph.output.map((output) => output.name));
    graph.node.forEach((node, index) => {
      for (const output of node.output) if (output) this.producer.set(output, index);
      for (const input of node.input) {
        if (!input) continue;
        const readers = this.consumers.get(input) ?? [];
        if (readers[readers.length - 1] !== index) readers.push(index);
        this.consumers.set(input, readers);
      }
    });
    this.elementTypes = inferElementTypes(graph.node, declaredElementTypes(proto));
    const inputNames = this.inputs.map((input) => input.name);
    this.fromInputs = reachedFrom(graph.node, inputNames, () => true);
    this.dataDependent = reachedFrom(
      graph.node,
      inputNames,
      (node) => !SHAPE_READERS.has(node.opType),
    );
  }

  /** Whether the value is an activation: computed from the values fed (docs/design.md). */
  isActivation(value: string): boolean {
    return this.dataDependent.has(value);
  }

  dtype(value: string): DType | undefined {
    const code = this.elementTypes.get(value);
    return code === undefined ? undefined : dtypeOfCode(code);
  }

  isFloat(value: string): boolean {
    const dtype = this.dtype(value);
    return dtype === 'float32' || dtype === 'float64';
  }

  /** Every value a hook can name: fed inputs, then node outputs in graph order. */
  valueNames(): string[] {
    return [
      ...this.inputs.map((input) => input.name),
      ...this.nodes.flatMap((node) => node.output.filter(Boolean)),
    ];
  }

  hasValue(name: string): boolean {
    return this.producer.has(name) || this.inputs.some((input) => input.name === name);
  }
}

function declaredElementTypes(proto: ModelProto): Map<string, number> {
  const types = new Map<string, number>();
  const graph = proto.graph;
  for (const info of [...graph.input, ...graph.output, ...graph.valueInfo]) {
    const code = info.type?.tensorType?.elemType;
    if (code) types.set(info.name, code);
  }
  for (const tensor of graph.initializer) types.set(tensor.name, tensor.dataType);
  return types;
}

/** Ops whose outputs depend only on their inputs' shapes. */
const SHAPE_READERS = new Set(['Shape', 'Size', 'EyeLike']);

/**
 * Values computed from `sources` through nodes that `passes` lets the dependence through. A node
 * with subgraphs (If, Loop, Scan) also depends on the outer values its bodies read by name.
 */
function reachedFrom(
  nodes: readonly NodeProto[],
  sources: string[],
  passes: (node: NodeProto) => boolean,
): Set<string> {
  const reached = new Set(sources);
  for (const node of nodes) {
    if (!passes(node)) continue;
    const reads = [...node.input, ...subgraphReads(node)];
    if (reads.some((input) => reached.has(input)))
      for (const output of node.output) if (output) reached.add(output);
  }
  return reached;
}

/** Every value name read by the nodes of a node's subgraphs, nested ones included. */
function subgraphReads(node: NodeProto): string[] {
  const graphs = node.attribute.flatMap((attribute) => [
    ...(attribute.g ? [attribute.g] : []),
    ...(attribute.graphs ?? []),
  ]);
  return graphs.flatMap((graph) =>
    graph.node.flatMap((inner) => [...inner.input, ...subgraphReads(inner)]),
  );
}
