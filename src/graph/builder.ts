/**
 * Building ONNX graphs in code: teardown's model builders, gradient graphs and tests emit nodes
 * through this, so every graph it makes is a plain ModelProto that any ONNX runtime loads.
 *
 *   const g = new GraphBuilder('mlp');
 *   const x = g.input('input', 'float32', ['batch', 784]);
 *   const h = g.node('Gemm', [x, g.initializer('fc1.weight', w), g.initializer('fc1.bias', b)], { transB: int(1) }, '/fc1/Gemm');
 *   g.output(h, 'float32');
 */
import Long from 'long';
import {
  AttributeType,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../onnx/proto.ts';
import { codeOfDtype, tensorToProto } from '../onnx/tensor-proto.ts';
import type { DType, Tensor } from '../tensor.ts';

/** Typed attribute values: ONNX distinguishes int and float attributes, JavaScript numbers do not. */
export type AttributeValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: GraphProto };

export const int = (value: number): AttributeValue => ({ type: 'int', value });
export const float = (value: number): AttributeValue => ({ type: 'float', value });
export const ints = (value: number[]): AttributeValue => ({ type: 'ints', value });
export const floats = (value: number[]): AttributeValue => ({ type: 'floats', value });
export const string = (value: string): AttributeValue => ({ type: 'string', value });
/** A subgraph, e.g. a Loop's body. */
export const graph = (value: GraphProto): AttributeValue => ({ type: 'graph', value });

export function makeAttribute(name: string, attribute: AttributeValue): AttributeProto {
  const base = {
    name,
    floats: [],
    ints: [],
    strings: [],
    tensors: [],
    graphs: [],
  } as unknown as AttributeProto;
  switch (attribute.type) {
    case 'int':
      return { ...base, type: AttributeType.INT, i: Long.fromNumber(attribute.value) };
    case 'float':
      return { ...base, type: AttributeType.FLOAT, f: attribute.value };
    case 'ints':
      return {
        ...base,
        type: AttributeType.INTS,
        ints: attribute.value.map((v) => Long.fromNumber(v)),
      };
    case 'floats':
      return { ...base, type: AttributeType.FLOATS, floats: attribute.value };
    case 'string':
      return { ...base, type: AttributeType.STRING, s: new TextEncoder().encode(attribute.value) };
    case 'tensor':
      return { ...base, type: AttributeType.TENSOR, t: tensorToProto('', attribute.value) };
    case 'graph':
      return { ...base, type: AttributeType.GRAPH, g: attribute.value };
  }
}

/** An ai.onnx NodeProto; attributes left undefined are omitted. */
export function makeNode(
  name: string,
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: Record<string, AttributeValue | undefined> = {},
): NodeProto {
  return {
    name,
    opType,
    domain: '',
    input: [...inputs],
    output: [...outputs],
    metadataProps: [],
    attribute: Object.entries(attributes)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => makeAttribute(key, value!)),
  } as NodeProto;
}

/** Unique names within one graph: `fresh(hint)` returns hint, or hint_1, hint_2... when taken. */
export class NameAllocator {
  private counter = 0;

  constructor(readonly used: Set<string> = new Set()) {}

  fresh(hint: string): string {
    let name = hint;
    while (this.used.has(name)) name = `${hint}_${++this.counter}`;
    this.used.add(name);
    return name;
  }
}

export type Dim = number | string;

export function valueInfo(name: string, dtype: DType, dims?: readonly Dim[]): ValueInfoProto {
  const shape = dims && {
    dim: dims.map((dim) =>
      typeof dim === 'number' ? { dimValue: Long.fromNumber(dim) } : { dimParam: dim },
    ),
  };
  return {
    name,
    type: { tensorType: { elemType: codeOfDtype(dtype), ...(shape ? { shape } : {}) } },
  } as ValueInfoProto;
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly names = new NameAllocator();

  constructor(
    readonly name: string,
    readonly opset = 17,
  ) {}

  input(name: string, dtype: DType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), dtype, dims));
    return name;
  }

  initializer(name: string, value: Tensor): string {
    this.initializers.push(tensorToProto(this.claim(name), value));
    return name;
  }

  /** A fresh value name built from `hint`. */
  fresh(hint: string): string {
    return this.names.fresh(hint);
  }

  /** Emits a node; returns its output names (one per `outputCount`), named `<node name>_output_<k>`. */
  nodeN(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined>,
    name: string,
    outputCount: number,
    outputNames?: string[],
  ): string[] {
    const nodeName = this.fresh(name);
    const outputs =
      outputNames?.map((output) => this.claim(output)) ??
      Array.from({ length: outputCount }, (_, k) => this.fresh(`${nodeName}_output_${k}`));
    this.nodes.push(makeNode(nodeName, opType, inputs, outputs, attributes));
    return outputs;
  }

  /** Emits a node with one output, named `outputName` if given (e.g. a graph output such as 'logits'). */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined> = {},
    name = `/${opType}`,
    outputName?: string,
  ): string {
    return this.nodeN(
      opType,
      inputs,
      attributes,
      name,
      1,
      outputName ? [outputName] : undefined,
    )[0];
  }

  output(value: string, dtype: DType, dims?: readonly Dim[]): void {
    this.outputs.push(valueInfo(value, dtype, dims));
  }

  build(producer = 'teardown'): ModelProto {
    return {
      irVersion: Long.fromNumber(8),
      producerName: producer,
      producerVersion: '',
      domain: '',
      modelVersion: Long.fromNumber(0),
      docString: '',
      opsetImport: [{ domain: '', version: Long.fromNumber(this.opset) }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
        valueInfo: [],
        sparseInitializer: [],
        metadataProps: [],
      },
      metadataProps: [],
      functions: [],
    } as unknown as ModelProto;
  }

  private claim(name: string): string {
    if (this.names.used.has(name))
      throw new Error(`GraphBuilder: value '${name}' is defined twice`);
    this.names.used.add(name);
    return name;
  }
}
