/**
 * The body of an ONNX Scan built by a recurrent gradient rule: one time step, in ai.onnx ops.
 * Body values are named `<prefix>/<hint>_<n>` under a prefix unique to the rule's node and role,
 * so they never shadow a value of the outer graph (ONNX scoping). Constants and weights are read
 * from the outer graph by name, as ONNX subgraphs may.
 */
import { makeNode, valueInfo, type AttributeValue } from '../graph/builder.ts';
import type { GraphProto, NodeProto, ValueInfoProto } from '../onnx/proto.ts';
import type { DType } from '../tensor.ts';

export class ScanBody {
  private readonly nodes: NodeProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private count = 0;

  constructor(
    private readonly prefix: string,
    readonly dtype: DType,
  ) {}

  /** A body input (a state variable or one step's slice of a scan input), in declaration order. */
  input(hint: string): string {
    const name = this.fresh(hint);
    this.inputs.push(valueInfo(name, this.dtype));
    return name;
  }

  /** Declares a body output (a next state or one step's slice of a scan output), in declaration order. */
  output(value: string): void {
    // A body input, or a value already declared, cannot be (another) output by the same name: copy it.
    const taken = [...this.inputs, ...this.outputs].some((info) => info.name === value);
    const name = taken ? this.op('Identity', [value]) : value;
    this.outputs.push(valueInfo(name, this.dtype));
  }

  op(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined> = {},
  ): string {
    return this.opN(opType, inputs, attributes, 1)[0];
  }

  opN(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined>,
    outputCount: number,
  ): string[] {
    const name = this.fresh(opType);
    const outputs = Array.from({ length: outputCount }, (_, k) => `${name}_output_${k}`);
    this.nodes.push(makeNode(name, opType, inputs, outputs, attributes));
    return outputs;
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }

  build(): GraphProto {
    return {
      name: this.prefix,
      node: this.nodes,
      initializer: [],
      sparseInitializer: [],
      input: this.inputs,
      output: this.outputs,
      valueInfo: [],
      metadataProps: [],
    } as unknown as GraphProto;
  }

  private fresh(hint: string): string {
    return `${this.prefix}/${hint}_${this.count++}`;
  }
}
