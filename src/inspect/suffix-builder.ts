/**
 * The suffix graph under construction (causal-suffix.ts): which original value each recomputed
 * copy stands for and where its positions are, and the nodes that bring the clean run in — the
 * clean prefix of a completed value, operands sliced to the suffix, the suffix's length.
 */
import { int, type Dim } from '../graph/builder.ts';
import type { GraphIndex } from '../graph/graph.ts';
import type { NodeProto } from '../onnx/proto.ts';
import { DataType, toNumber } from '../onnx/proto.ts';
import { codeOfDtype } from '../onnx/tensor-proto.ts';
import { Emitter } from '../autodiff/emitter.ts';
import type { SuffixSources } from './causal-suffix.ts';
import { END, NotCausal, type Layout } from './suffix-layout.ts';

export class SuffixBuilder {
  readonly emitter: Emitter;
  /** Original value → where its recomputed copy keeps its positions. */
  readonly layouts = new Map<string, Layout>();
  /** Original value → its recomputed copy in the suffix graph. */
  readonly renamed = new Map<string, string>();
  /** Original value → its whole (clean prefix, then the recomputed positions). */
  private readonly completed = new Map<string, string>();
  /** Graph input → the value whose clean value (all positions) it is fed. */
  readonly cleanInputs = new Map<string, string>();
  readonly cutActivations = new Set<string>();
  readonly staticInputs = new Set<string>();
  private readonly initializerDims: Map<string, number[]>;
  readonly hookInput: string;
  readonly startInput: string;
  private suffixLength?: string;

  constructor(
    readonly index: GraphIndex,
    readonly hookValue: string,
    /** Positions of the whole sequence. */
    readonly positions: number,
    readonly sources: SuffixSources,
  ) {
    this.emitter = Emitter.forGraph(index);
    this.initializerDims = new Map(
      index.proto.graph.initializer.map((t) => [t.name, t.dims.map(toNumber)]),
    );
    const hookType = index.elementTypes.get(hookValue) ?? DataType.FLOAT;
    this.hookInput = this.newInput(`${hookValue}::suffix`, hookType);
    this.startInput = this.newInput('teardown/suffix/start', codeOfDtype('int64'));
    this.layouts.set(hookValue, { kind: 'suffix', axis: 1 });
    this.renamed.set(hookValue, this.hookInput);
  }

  newInput(hint: string, elementType: number): string {
    const name = this.emitter.fresh(hint);
    this.emitter.types.set(name, elementType);
    return name;
  }

  shape(value: string): readonly Dim[] | undefined {
    return this.sources.shapeOf(value) ?? this.initializerDims.get(value);
  }

  rank(value: string): number {
    const shape = this.shape(value);
    if (!shape) throw new NotCausal(`the shape of '${value}' is unknown`);
    return shape.length;
  }

  /** The name a node of the suffix graph reads for an original input that is not recomputed. */
  unchanged(value: string): string {
    if (!value || this.index.initializerNames.has(value) || !this.index.fromInputs.has(value))
      return value; // constants come along
    if (this.index.isActivation(value)) this.cutActivations.add(value);
    else this.staticInputs.add(value);
    return value;
  }

  /** The suffix graph's name for `value`: its recomputed copy, or the original. */
  read(value: string): string {
    return this.renamed.get(value) ?? this.unchanged(value);
  }

  /** `value` at positions ≥ start along `axis` (an operand that is not recomputed, e.g. a mask). */
  sliceFromStart(value: string, axis: number): string {
    return this.emitter.op(
      'Slice',
      [this.read(value), this.startInput, this.emitter.int64s([END]), this.emitter.int64s([axis])],
      {},
      'teardown/suffix',
    );
  }

  /** The number of recomputed positions, int64 [1]. */
  length(): string {
    this.suffixLength ??= this.emitter.op(
      'Slice',
      [
        this.emitter.op('Shape', [this.hookInput], {}, 'teardown/suffix'),
        this.emitter.int64s([1]),
        this.emitter.int64s([2]),
      ],
      {},
      'teardown/suffix',
    );
    return this.suffixLength;
  }

  /**
   * The whole of a recomputed value: the clean run's first `start` positions, then the recomputed
   * ones. Exact only for a causal value (its earlier positions did not change): refused otherwise.
   */
  complete(value: string, use: string): string {
    const layout = this.layouts.get(value)!;
    if (layout.kind === 'whole') return this.renamed.get(value)!;
    if (layout.keyAxis !== undefined)
      throw new NotCausal(`${use} needs the earlier queries of the pairwise value '${value}'`);
    if (layout.flat !== undefined)
      throw new NotCausal(`${use} needs the earlier rows of the flattened value '${value}'`);
    if (layout.notCausal)
      throw new NotCausal(
        `${use} needs the earlier positions of '${value}', which may change: ${layout.notCausal}`,
      );
    const known = this.completed.get(value);
    if (known) return known;
    const elementType = this.index.elementTypes.get(value) ?? DataType.FLOAT;
    const clean = this.newInput(`${value}::clean`, elementType);
    this.cleanInputs.set(clean, value);
    const prefix = this.emitter.op(
      'Slice',
      [clean, this.emitter.int64s([0]), this.startInput, this.emitter.int64s([layout.axis])],
      {},
      'teardown/suffix',
    );
    const whole = this.emitter.op(
      'Concat',
      [prefix, this.renamed.get(value)!],
      { axis: int(layout.axis) },
      'teardown/suffix',
    );
    this.completed.set(value, whole);
    return whole;
  }

  /** Copies `node` onto `inputs`; its outputs get `layout`. */
  copy(node: NodeProto, inputs: string[], layout: Layout): true {
    const outputs = this.emitter.opN(
      node.opType,
      inputs,
      {},
      `${node.name || node.opType}/suffix`,
      node.output.length,
    );
    // The original's attributes, as they are.
    this.emitter.nodes[this.emitter.nodes.length - 1].attribute = node.attribute;
    node.output.forEach((original, k) => {
      if (!original) return;
      this.renamed.set(original, outputs[k]);
      this.layouts.set(original, layout);
    });
    return true;
  }

  /** A node the pass does not follow: computed on the whole of its inputs, its outputs whole. */
  computeWhole(node: NodeProto): void {
    const use = `node '${node.name}' (${node.opType})`;
    this.copy(
      node,
      node.input.map((input) =>
        this.layouts.has(input) ? this.complete(input, use) : this.read(input),
      ),
      { kind: 'whole' },
    );
  }

  /** A Reshape target (fed at full length) with `size` (int64 [1]) at `axis`. */
  setTarget(target: string, axis: number, size: string): string {
    const at = this.emitter.int64s([axis]);
    return this.emitter.op('ScatterElements', [this.read(target), at, size], {}, 'teardown/suffix');
  }

  /** The first `count` dims of `value`'s shape, int64 [count]. */
  leadingShape(value: string, count: number): string {
    const shape = this.emitter.op('Shape', [value], {}, 'teardown/suffix');
    const [start, end] = [this.emitter.int64s([0]), this.emitter.int64s([count])];
    return this.emitter.op('Slice', [shape, start, end], {}, 'teardown/suffix');
  }

  /** The values of a constant int64 input (Slice, Reduce, Squeeze parameters), where known. */
  constantInts(value: string): number[] | undefined {
    const tensor = this.index.isActivation(value) ? undefined : this.sources.valueOf(value);
    return tensor && Array.from(tensor.data as ArrayLike<number | bigint>, Number);
  }
}
