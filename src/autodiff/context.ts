/**
 * What a gradient rule sees of its node, in the vocabulary of onnxruntime's gradient builder:
 * inputs x(i), outputs y(i), gradients of outputs dy(i), and whether input i needs a gradient.
 * Rules emit ONNX nodes through it and never touch the graph otherwise.
 */
import { AutodiffError } from './errors.ts';
import { int, ints, type AttributeValue, type Dim } from '../graph/builder.ts';
import { toNumber, type AttributeProto, type NodeProto } from '../onnx/proto.ts';
import type { DType } from '../tensor.ts';
import type { Emitter } from './emitter.ts';

/** A rule's result for one input: a gradient already in the input's shape, one to be reduced from `shape` (broadcasting), or none. */
export type Grad = string | { grad: string; shape: readonly Dim[] } | undefined;

export interface GraphFacts {
  shape(value: string): readonly Dim[] | undefined;
  dtype(value: string): DType | undefined;
  /** Values of a constant (initializer or Constant node output), when static. */
  constant(value: string): number[] | undefined;
  opset: number;
  /** onnxruntime intra-op threads the graph will run with, when known. */
  threads?: number;
}

export class GradContext {
  constructor(
    readonly node: NodeProto,
    private readonly outputGrads: (string | undefined)[],
    private readonly inputNeeds: boolean[],
    private readonly facts: GraphFacts,
    private readonly emitter: Emitter,
    /** Adds a missing optional output to the forward node (e.g. MaxPool's indices) and returns its name. */
    private readonly requestOutput: (index: number) => string,
  ) {}

  get opset(): number {
    return this.facts.opset;
  }
  get threads(): number | undefined {
    return this.facts.threads;
  }
  x(index: number): string {
    return this.node.input[index] ?? '';
  }
  y(index = 0): string {
    return this.node.output[index] || this.requestOutput(index);
  }
  dy(index = 0): string | undefined {
    return this.outputGrads[index];
  }
  needs(index: number): boolean {
    return this.inputNeeds[index] ?? false;
  }
  inputCount(): number {
    return this.node.input.length;
  }

  shape(value: string): readonly Dim[] {
    const shape = this.facts.shape(value);
    if (!shape)
      throw new AutodiffError(
        `The gradient of ${this.describe()} needs the shape of '${value}', which is unknown.`,
      );
    return shape;
  }

  rank(value: string): number {
    return this.shape(value).length;
  }

  dtype(value: string): DType {
    const dtype = this.facts.dtype(value);
    if (!dtype)
      throw new AutodiffError(
        `The gradient of ${this.describe()} needs the element type of '${value}', which is unknown.`,
      );
    return dtype;
  }

  /** The static values of an input (constant initializer or Constant node), or an error naming the input. */
  constantInput(index: number, what: string): number[] {
    const values = this.facts.constant(this.x(index));
    if (!values)
      throw new AutodiffError(
        `The gradient of ${this.describe()} needs its ${what} (input ${index}, '${this.x(index)}') to be a constant.`,
      );
    return values;
  }

  constantOrUndefined(value: string): number[] | undefined {
    return value ? this.facts.constant(value) : undefined;
  }

  attr(name: string): AttributeProto | undefined {
    return this.node.attribute.find((attribute) => attribute.name === name);
  }

  attrInt(name: string, fallback: number): number {
    const attribute = this.attr(name);
    return attribute ? toNumber(attribute.i) : fallback;
  }

  attrInts(name: string): number[] | undefined {
    return this.attr(name)?.ints.map(toNumber);
  }

  attrFloat(name: string, fallback: number): number {
    return this.attr(name)?.f ?? fallback;
  }

  attrString(name: string, fallback: string): string {
    const attribute = this.attr(name);
    return attribute?.s ? new TextDecoder().decode(attribute.s) : fallback;
  }

  /** Emits a node under `<forward node>/grad/`; returns its output. */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined> = {},
  ): string {
    return this.emitter.op(
      opType,
      inputs,
      attributes,
      `${this.node.name || this.node.opType}/grad`,
    );
  }

  opN(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue | undefined>,
    outputs: number,
  ): string[] {
    return this.emitter.opN(
      opType,
      inputs,
      attributes,
      `${this.node.name || this.node.opType}/grad`,
      outputs,
    );
  }

  /** A float scalar of `like`'s dtype. */
  scalar(value: number, like: string): string {
    return this.emitter.scalar(value, this.dtype(like));
  }

  int64s(values: readonly number[]): string {
    return this.emitter.int64s(values);
  }

  /** An int64 scalar (rank 0), as Range takes. */
  int64(value: number): string {
    return this.emitter.constant([value], [], 'int64');
  }

  floats(values: readonly number[]): string {
    return this.emitter.constant(values, [values.length], 'float32');
  }

  /** A constant tensor of `like`'s dtype. */
  constant(values: readonly number[], dims: readonly number[], like: string): string {
    return this.emitter.constant(values, dims, this.dtype(like));
  }

  // Small compositions used by many rules.
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.op('Div', [a, b]);
  }
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  neg(a: string): string {
    return this.op('Neg', [a]);
  }
  reshapeLike(value: string, like: string): string {
    return this.op('Reshape', [value, this.op('Shape', [like])]);
  }
  zerosLike(like: string): string {
    return this.mul(like, this.scalar(0, like));
  }

  /** Σ over `axes` (keepdims as given), in the opset's form (axes as an input since opset 13). */
  reduceSum(value: string, axes: readonly number[], keepdims: boolean): string {
    return this.op('ReduceSum', [value, this.int64s(axes)], { keepdims: int(keepdims ? 1 : 0) });
  }

  /** A Reduce* op over `axes` in the opset's form: axes as an input for ReduceSum from opset 13, for the others from 18. */
  reduce(opType: string, value: string, axes: readonly number[], keepdims: boolean): string {
    const axesAsInput = opType === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    return axesAsInput
      ? this.op(opType, [value, this.int64s(axes)], { keepdims: int(keepdims ? 1 : 0) })
      : this.op(opType, [value], { axes: ints([...axes]), keepdims: int(keepdims ? 1 : 0) });
  }

  /** Unsqueeze in the opset's form (axes as an input since opset 13). */
  unsqueeze(value: string, axes: readonly number[]): string {
    return this.op('Unsqueeze', [value, this.int64s(axes)]);
  }

  /** A gradient in the shape of this node's output 0, for the walker to reduce to the input's shape. */
  broadcast(grad: string, shapeOf = this.y(0)): Grad {
    return { grad, shape: this.shape(shapeOf) };
  }

  describe(): string {
    return `node '${this.node.name}' (${this.node.opType}, opset ${this.opset})`;
  }
}

/** Normalises a possibly negative axis of a rank-`rank` tensor. */
export const axisOf = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
