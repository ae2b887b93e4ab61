/**
 * Appends backward nodes and constants to a graph, named the way onnxruntime's gradient builder
 * names them so a backward graph reads well in a graph viewer: nodes `<forward node>/grad/<Op>`,
 * a value's accumulated gradient `<value>_grad`.
 */
import { makeNode, NameAllocator, type AttributeValue } from '../graph/builder.ts';
import type { NodeProto, TensorProto } from '../onnx/proto.ts';
import type { GraphIndex } from '../graph/graph.ts';
import { codeOfDtype, tensorToProto } from '../onnx/tensor-proto.ts';
import { inferNodeOutputTypes } from '../graph/dtypes.ts';
import { tensor, type DType } from '../tensor.ts';

export class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly constants = new Map<string, string>();

  /** `types` (value → ONNX element type) is extended with every value emitted, so rules can ask any value's dtype. */
  private readonly names: NameAllocator;

  constructor(
    used: Set<string>,
    readonly types: Map<string, number>,
  ) {
    this.names = new NameAllocator(used);
  }

  /** An emitter for nodes appended to `index`'s graph: fresh names avoid every value, initializer and node name there. */
  static forGraph(index: GraphIndex): Emitter {
    return new Emitter(
      new Set([
        ...index.valueNames(),
        ...index.initializerNames,
        ...index.nodes.map((node) => node.name),
      ]),
      new Map(index.elementTypes),
    );
  }

  fresh(hint: string): string {
    return this.names.fresh(hint);
  }

  /** Emits `opType`; returns its `outputCount` output names. */
  opN(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined>,
    nameHint: string,
    outputCount: number,
    outputNames?: string[],
  ): string[] {
    const name = this.fresh(`${nameHint}/${opType}`);
    const outputs =
      outputNames ??
      Array.from({ length: outputCount }, (_, k) => this.fresh(`${name}_output_${k}`));
    const node = makeNode(name, opType, inputs, outputs, attributes);
    this.nodes.push(node);
    inferNodeOutputTypes(node, this.types);
    return outputs;
  }

  op(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined>,
    nameHint: string,
    outputName?: string,
  ): string {
    return this.opN(
      opType,
      inputs,
      attributes,
      nameHint,
      1,
      outputName ? [this.fresh(outputName)] : undefined,
    )[0];
  }

  /** A constant initializer (shared between rules when equal). Integers as int64 unless dtype says otherwise. */
  constant(values: readonly number[], dims: readonly number[], dtype: DType): string {
    const key = `${dtype}|${dims}|${values}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh(`teardown/grad/const_${dtype}_${this.constants.size}`);
    this.initializers.push(tensorToProto(name, tensor(dtype, [...dims], [...values])));
    this.types.set(name, codeOfDtype(dtype));
    this.constants.set(key, name);
    return name;
  }

  scalar(value: number, dtype: DType): string {
    return this.constant([value], [], dtype);
  }

  int64s(values: readonly number[]): string {
    return this.constant(values, [values.length], 'int64');
  }
}
