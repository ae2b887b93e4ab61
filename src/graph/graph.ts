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
  /** Values whose computation reads at least one fed graph input. */
  readonly fromInputs: ReadonlySet<string>;

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
    this.fromInputs = valuesFromInputs(graph.node, this.inputs.map((input) => input.name));
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
    return [...this.inputs.map((input) => input.name), ...this.nodes.flatMap((node) => node.output.filter(Boolean))];
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

function valuesFromInputs(nodes: readonly NodeProto[], inputNames: string[]): Set<string> {
  const reached = new Set(inputNames);
  for (const node of nodes) {
    if (node.input.some((input) => reached.has(input))) for (const output of node.output) if (output) reached.add(output);
  }
  return reached;
}
