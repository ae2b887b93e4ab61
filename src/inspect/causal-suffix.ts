/**
 * Recomputing only the positions a patch can reach. In a causal model — every position reads only
 * itself and earlier positions — patching a hook at position p changes nothing before p: the part
 * downstream of the hook needs only positions ≥ p, and where positions mix (attention's keys and
 * values), the earlier positions come from the clean run. This pass rewrites the downstream part
 * into that suffix graph, fed
 *   - the hook's value at positions ≥ start, [rows, T − start, ...] (the patch applied there),
 *   - `start` (int64 [1]),
 *   - for every value whose earlier positions are needed (keys, values, the output), its clean
 *     value whole: the graph takes its first `start` positions and appends the recomputed ones,
 *   - the clean activations it reads from outside the part, and the part's shape arithmetic and
 *     masks at the full length (sliced to the suffix where they run along the positions).
 *
 * Soundness. The suffix graph computes each value's positions ≥ start exactly as the whole part
 * would, provided every completed value's earlier positions are the clean run's. That holds when
 * each completed value is causal in the hook: its position i depends only on the hook's positions
 * ≤ i. The pass proves it structurally while it rewrites, and refuses (returns a reason) where it
 * cannot:
 *   - position-wise ops (elementwise with operands broadcast, Transpose, Reshape keeping the axes up
 *     to the positions, Split/Concat/Softmax/LayerNorm/reductions along other axes, MatMul along
 *     rows or broadcast axes) keep causality;
 *   - q·kᵀ of two recomputed values gives pairwise scores (query i, key j), j over all positions;
 *   - a constant mask that hides every key j > i from query i (Where with a fill ≤ −1e30, or an
 *     added mask ≤ −1e30 there; causal-mask.ts checks its values), then Softmax over the keys,
 *     gives a pattern whose row i reads positions ≤ i only, exactly 0 beyond;
 *   - pattern·v over the keys is causal only for such a pattern.
 * A mask read from the data (a padding `attention_mask`) or none at all (an encoder) leaves the
 * pattern unproven, and completing anything it feeds is refused: the sweep falls back to
 * recomputing every position. Nodes the pass does not follow are computed on completed inputs
 * (exact, no saving), so a refusal comes only from causality, never from an unknown op.
 */
import { int, valueInfo, type Dim } from '../graph/builder.ts';
import { derive, pruneUnused } from '../graph/edit.ts';
import type { GraphIndex } from '../graph/graph.ts';
import type { ModelProto, NodeProto } from '../onnx/proto.ts';
import { DataType, toNumber } from '../onnx/proto.ts';
import { defaultOpset } from '../onnx/model-file.ts';
import { codeOfDtype } from '../onnx/tensor-proto.ts';
import { Emitter } from '../autodiff/emitter.ts';
import type { Tensor } from '../tensor.ts';
import {
  allFinitePositive,
  allHidden,
  HIDDEN_BELOW,
  hidesLaterKeys,
  noneNanOrPlusInfinity,
} from './causal-mask.ts';

/**
 * Where a recomputed value keeps its positions. `whole`: it is the original value, every position
 * (a slice of the last position, or computed from completed inputs). `suffix`: positions ≥ start
 * along `axis`; pairwise values (attention scores) also run over every key along `keyAxis`.
 */
type Layout =
  | { kind: 'whole' }
  | {
      kind: 'suffix';
      axis: number;
      keyAxis?: number;
      notCausal?: string;
      hidden?: 'minus-infinity' | 'zero';
      /**
       * Rows flattened for a Gemm: `axis` runs over every axis up to the positions, which were
       * axis `flat`, positions innermost ([batch, positions, d] → [batch·positions, d]).
       */
      flat?: number;
    };
type Suffix = Extract<Layout, { kind: 'suffix' }>;

export interface SuffixGraph {
  proto: ModelProto;
  /** Fed the hook's value at positions ≥ start. */
  hookInput: string;
  /** Fed the first recomputed position, int64 [1]. */
  startInput: string;
  /** Graph input → the value whose clean value (all positions) it is fed. */
  cleanInputs: Map<string, string>;
  /** Activations from outside the part, fed their clean values under their own names. */
  cutActivations: string[];
  /** Values that are not activations (shape arithmetic, masks), fed at full length under their own names. */
  staticInputs: string[];
}

export interface SuffixSources {
  /** Probed dims of every value (the batch axis symbolic). */
  shapeOf(value: string): readonly Dim[] | undefined;
  /** The values of a constant or of a value that is not an activation (a mask), where known. */
  valueOf(value: string): Tensor | undefined;
}

/**
 * The values the pass may need to read (masks, fills, Slice and Reduce parameters): every input of
 * a node downstream of `hookValue` that is neither an activation nor an initializer.
 */
export function constantsRead(index: GraphIndex, hookValue: string): string[] {
  const reached = new Set([hookValue]);
  const read = new Set<string>();
  for (const node of index.nodes) {
    if (!node.input.some((input) => reached.has(input))) continue;
    for (const output of node.output) if (output && index.isActivation(output)) reached.add(output);
    for (const input of node.input)
      if (input && !index.isActivation(input) && !index.initializerNames.has(input))
        read.add(input);
  }
  return [...read];
}

class NotCausal extends Error {}

const UNARY = new Set([
  'Relu',
  'LeakyRelu',
  'Gelu',
  'Tanh',
  'Sigmoid',
  'Erf',
  'Exp',
  'Log',
  'Neg',
  'Sqrt',
  'Identity',
  'Abs',
  'Cast',
  'Reciprocal',
  'Softplus',
  'Softsign',
  'Elu',
  'Selu',
  'Celu',
  'HardSigmoid',
  'HardSwish',
  'Mish',
  'Sin',
  'Cos',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Not',
  'Dropout',
]);
/** Unary ops that keep −∞ and 0 where they are. */
const KEEPS_HIDDEN = new Set(['Identity', 'Cast', 'Dropout']);
const ELEMENTWISE = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Where',
  'Pow',
  'Max',
  'Min',
  'Sum',
  'Mean',
  'PRelu',
  'Clip',
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'And',
  'Or',
  'Mod',
]);
const REDUCE = new Set([
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceSumSquare',
  'ReduceLogSumExp',
]);
const END = Number.MAX_SAFE_INTEGER;
/** Ops followed on flattened rows (others would need to know how the rows were made). */
const FOLLOWS_FLAT_ROWS = new Set([
  'Reshape',
  'Gemm',
  'Softmax',
  'LogSoftmax',
  'LayerNormalization',
  'Split',
  ...REDUCE,
]);

/**
 * The suffix graph of the part of `index` downstream of `hookValue` computing `output`, or the
 * reason it cannot be shown causal. `hookValue` is [batch, positions, ...].
 */
export function causalSuffixGraph(
  index: GraphIndex,
  hookValue: string,
  output: string,
  sources: SuffixSources,
): SuffixGraph | { reason: string } {
  const positions = sources.shapeOf(hookValue)?.[1];
  if (typeof positions !== 'number' || positions < 2)
    return { reason: `hook '${hookValue}' has no fixed sequence axis of 2 or more positions` };
  try {
    return new SuffixRewrite(index, hookValue, positions, sources).build(output);
  } catch (error) {
    if (error instanceof NotCausal) return { reason: error.message };
    throw error;
  }
}

class SuffixRewrite {
  private readonly emitter: Emitter;
  private readonly layouts = new Map<string, Layout>();
  private readonly renamed = new Map<string, string>();
  private readonly completed = new Map<string, string>();
  private readonly cleanInputs = new Map<string, string>();
  private readonly cutActivations = new Set<string>();
  private readonly staticInputs = new Set<string>();
  private readonly initializerDims: Map<string, number[]>;
  readonly hookInput: string;
  readonly startInput: string;
  private suffixLength?: string;

  constructor(
    private readonly index: GraphIndex,
    private readonly hookValue: string,
    private readonly positions: number,
    private readonly sources: SuffixSources,
  ) {
    this.emitter = Emitter.forGraph(index);
    this.initializerDims = new Map(
      index.proto.graph.initializer.map((t) => [t.name, t.dims.map(toNumber)]),
    );
    this.hookInput = this.newInput(`${hookValue}::suffix`, index.elementTypes.get(hookValue) ?? DataType.FLOAT);
    this.startInput = this.newInput('teardown/suffix/start', codeOfDtype('int64'));
    this.layouts.set(hookValue, { kind: 'suffix', axis: 1 });
    this.renamed.set(hookValue, this.hookInput);
  }

  build(output: string): SuffixGraph {
    for (const node of this.index.nodes) {
      if (!node.input.some((input) => this.layouts.has(input))) continue;
      if (node.output.every((out) => !out || !this.index.isActivation(out))) continue; // shape arithmetic: fed at full length
      if (!this.follow(node)) this.computeWhole(node);
    }
    if (!this.layouts.has(output))
      throw new NotCausal(`output '${output}' does not depend on '${this.hookValue}'`);
    const final = this.complete(output, `output '${output}'`);
    this.emitter.op('Identity', [final], {}, 'teardown/suffix', undefined);
    const last = this.emitter.nodes[this.emitter.nodes.length - 1];
    last.output = [output];
    return this.assemble(output);
  }

  private assemble(output: string): SuffixGraph {
    const graph = this.index.proto.graph;
    const constantNodes = this.index.nodes.filter((node) =>
      node.output.every((out) => !out || !this.index.fromInputs.has(out)),
    );
    const dtype = (value: string) => this.index.dtype(value) ?? 'float32';
    const feeds = [...this.cleanInputs.keys(), ...this.cutActivations, ...this.staticInputs];
    const inputs = [
      valueInfo(this.hookInput, dtype(this.hookValue)),
      valueInfo(this.startInput, 'int64', [1]),
      ...[...this.cleanInputs].map(([input, value]) => valueInfo(input, dtype(value))),
      ...[...this.cutActivations, ...this.staticInputs].map((value) =>
        valueInfo(value, dtype(value)),
      ),
    ];
    const draft = derive(graph, {
      node: [...constantNodes, ...this.emitter.nodes],
      input: inputs,
      output: [valueInfo(output, dtype(output))],
      valueInfo: [],
    });
    const nodes = pruneUnused(draft);
    const used = new Set(nodes.flatMap((node) => node.input));
    const initializer = [...graph.initializer, ...this.emitter.initializers].filter((t) =>
      used.has(t.name),
    );
    const proto = derive(this.index.proto, {
      graph: derive(draft, {
        node: nodes,
        initializer,
        input: inputs.filter((info) => used.has(info.name)),
      }),
    });
    const fed = new Set(feeds.filter((name) => used.has(name)));
    return {
      proto,
      hookInput: this.hookInput,
      startInput: this.startInput,
      cleanInputs: new Map([...this.cleanInputs].filter(([input]) => fed.has(input))),
      cutActivations: [...this.cutActivations].filter((value) => fed.has(value)),
      staticInputs: [...this.staticInputs].filter((value) => fed.has(value)),
    };
  }

  // ---- values -------------------------------------------------------------------------------

  private newInput(hint: string, elementType: number): string {
    const name = this.emitter.fresh(hint);
    this.emitter.types.set(name, elementType);
    return name;
  }

  private shape(value: string): readonly Dim[] | undefined {
    return this.sources.shapeOf(value) ?? this.initializerDims.get(value);
  }

  private rank(value: string): number {
    const shape = this.shape(value);
    if (!shape) throw new NotCausal(`the shape of '${value}' is unknown`);
    return shape.length;
  }

  /** The name a node of the suffix graph reads for an original input that is not recomputed. */
  private unchanged(value: string): string {
    if (!value || this.index.initializerNames.has(value) || !this.index.fromInputs.has(value))
      return value; // constants come along
    if (this.index.isActivation(value)) this.cutActivations.add(value);
    else this.staticInputs.add(value);
    return value;
  }

  /** The suffix graph's name for `value`: its recomputed copy, or the original. */
  private read(value: string): string {
    return this.renamed.get(value) ?? this.unchanged(value);
  }

  /** `value` at positions ≥ start along `axis` (an operand that is not recomputed, e.g. a mask). */
  private sliceFromStart(value: string, axis: number): string {
    return this.emitter.op(
      'Slice',
      [this.read(value), this.startInput, this.emitter.int64s([END]), this.emitter.int64s([axis])],
      {},
      'teardown/suffix',
    );
  }

  /** The number of recomputed positions, int64 [1]. */
  private length(): string {
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
  private complete(value: string, use: string): string {
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
    const clean = this.newInput(`${value}::clean`, this.index.elementTypes.get(value) ?? DataType.FLOAT);
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
  private copy(node: NodeProto, inputs: string[], layout: Layout): true {
    const outputs = this.emitter.opN(
      node.opType,
      inputs,
      {},
      `${node.name || node.opType}/suffix`,
      node.output.length,
    );
    this.emitter.nodes[this.emitter.nodes.length - 1].attribute = node.attribute; // the original's attributes, as they are
    node.output.forEach((original, k) => {
      if (!original) return;
      this.renamed.set(original, outputs[k]);
      this.layouts.set(original, layout);
    });
    return true;
  }

  /** A node the pass does not follow: computed on the whole of its inputs, its outputs whole. */
  private computeWhole(node: NodeProto): void {
    const use = `node '${node.name}' (${node.opType})`;
    this.copy(
      node,
      node.input.map((input) =>
        this.layouts.has(input) ? this.complete(input, use) : this.read(input),
      ),
      { kind: 'whole' },
    );
  }

  // ---- rules: true when followed, false to compute the node whole ----------------------------

  private follow(node: NodeProto): boolean {
    const layouts = node.input.map((input) => this.layouts.get(input));
    if (layouts.some((layout) => layout?.kind === 'whole')) return false;
    const op = node.opType;
    if (ELEMENTWISE.has(op)) return this.elementwise(node, layouts as (Suffix | undefined)[]);
    if (op === 'Concat') return this.concat(node, layouts as (Suffix | undefined)[]);
    if (op === 'MatMul') return this.matMul(node, layouts as (Suffix | undefined)[]);
    // The rest read one recomputed value, the first input; the others are parameters.
    const data = layouts[0] as Suffix | undefined;
    if (!data || layouts.slice(1).some((layout) => layout !== undefined)) return false;
    if (data.flat !== undefined && !FOLLOWS_FLAT_ROWS.has(op) && !UNARY.has(op)) return false;
    if (UNARY.has(op)) return this.unary(node, data);
    if (op === 'Transpose') return this.transpose(node, data);
    if (op === 'Reshape') return this.reshape(node, data);
    if (op === 'Softmax' || op === 'LogSoftmax') return this.softmax(node, data);
    if (op === 'LayerNormalization')
      return this.alongLaterAxes(node, data, this.axisAttribute(node, -1));
    if (REDUCE.has(op)) return this.reduce(node, data);
    if (op === 'Split') return this.along(node, data, this.axisAttribute(node, 0));
    if (op === 'Unsqueeze' || op === 'Squeeze') return this.squeeze(node, data);
    if (op === 'Gather') return this.gather(node, data);
    if (op === 'Slice') return this.slice(node, data);
    if (op === 'Gemm') return this.gemm(node, data);
    return false;
  }

  private unary(node: NodeProto, layout: Suffix): boolean {
    const hidden = KEEPS_HIDDEN.has(node.opType) ? layout.hidden : undefined;
    return this.copy(
      node,
      node.input.map((input) => this.read(input)),
      { ...layout, hidden },
    );
  }

  private transpose(node: NodeProto, layout: Suffix): boolean {
    const rank = this.rank(node.input[0]);
    const perm = ints(node, 'perm') ?? Array.from({ length: rank }, (_, a) => rank - 1 - a);
    const moved = (axis: number | undefined) =>
      axis === undefined ? undefined : perm.indexOf(axis);
    return this.copy(node, [this.read(node.input[0])], {
      ...layout,
      axis: moved(layout.axis)!,
      keyAxis: moved(layout.keyAxis),
    });
  }

  /** A Reshape that keeps every axis up to the positions keeps them there; its target gets the suffix length at that axis. */
  private reshape(node: NodeProto, layout: Suffix): boolean {
    const [from, to] = [this.shape(node.input[0]), this.shape(node.output[0])];
    if (layout.keyAxis !== undefined || !from || !to) return false;
    const same = (a: readonly Dim[], b: readonly Dim[]) =>
      a.length === b.length && a.every((dim, k) => dim === b[k]);
    const data = this.read(node.input[0]);
    if (layout.flat === undefined) {
      if (from.slice(0, layout.axis + 1).every((dim, a) => dim === to[a]))
        return this.copy(
          node,
          [data, this.setTarget(node.input[1], layout.axis, this.length())],
          layout,
        );
      // [batch, positions, ...rest] → [batch·positions, ...rest]: the rows of a Gemm.
      if (layout.axis > 0 && same(to.slice(1), from.slice(layout.axis + 1))) {
        const rows = this.emitter.op(
          'ReduceProd',
          [this.leadingShape(data, layout.axis + 1)],
          { keepdims: int(1) },
          'teardown/suffix',
        );
        const target = this.setTarget(node.input[1], 0, rows);
        return this.copy(node, [data, target], { ...layout, axis: 0, flat: layout.axis });
      }
      return false;
    }
    // Back from rows: [batch·positions, ...rest] → [batch, positions, ...rest].
    const axis = layout.flat;
    if (
      layout.axis !== 0 ||
      to[axis] !== this.positions ||
      !same(to.slice(axis + 1), from.slice(1))
    )
      return false;
    const target = this.setTarget(node.input[1], axis, this.length());
    return this.copy(node, [data, target], { ...layout, axis, flat: undefined });
  }

  /** A Reshape target (fed at full length) with `size` (int64 [1]) at `axis`. */
  private setTarget(target: string, axis: number, size: string): string {
    const at = this.emitter.int64s([axis]);
    return this.emitter.op('ScatterElements', [this.read(target), at, size], {}, 'teardown/suffix');
  }

  /** The first `count` dims of `value`'s shape, int64 [count]. */
  private leadingShape(value: string, count: number): string {
    const shape = this.emitter.op('Shape', [value], {}, 'teardown/suffix');
    const [start, end] = [this.emitter.int64s([0]), this.emitter.int64s([count])];
    return this.emitter.op('Slice', [shape, start, end], {}, 'teardown/suffix');
  }

  private softmax(node: NodeProto, layout: Suffix): boolean {
    const rank = this.rank(node.input[0]);
    const legacy = defaultOpset(this.index.proto) < 13; // before opset 13: flattened from `axis` (default 1)
    const axis = normalise(this.axisAttribute(node, legacy ? 1 : -1), rank);
    if (legacy && axis !== rank - 1) return false;
    if (axis === layout.axis) return false;
    if (axis !== layout.keyAxis)
      return this.copy(node, [this.read(node.input[0])], { ...layout, hidden: undefined });
    // Over the keys: hidden scores (−∞) become exactly 0 (Softmax) or stay −∞ (LogSoftmax).
    const hidden =
      layout.hidden === 'minus-infinity'
        ? node.opType === 'Softmax'
          ? 'zero'
          : 'minus-infinity'
        : undefined;
    return this.copy(node, [this.read(node.input[0])], { ...layout, hidden });
  }

  /** An op that works along `axis` (Split): followed when that is neither the positions nor the keys. */
  private along(node: NodeProto, layout: Suffix, axis: number): boolean {
    const normalised = normalise(axis, this.rank(node.input[0]));
    if (normalised === layout.axis || normalised === layout.keyAxis) return false;
    return this.copy(
      node,
      node.input.map((input) => this.read(input)),
      layout,
    );
  }

  /** LayerNormalization: normalises over `axis` and every later one. */
  private alongLaterAxes(node: NodeProto, layout: Suffix, axis: number): boolean {
    if (layout.keyAxis !== undefined || normalise(axis, this.rank(node.input[0])) <= layout.axis)
      return false;
    return this.copy(
      node,
      node.input.map((input) => this.read(input)),
      { ...layout, hidden: undefined },
    );
  }

  private reduce(node: NodeProto, layout: Suffix): boolean {
    const rank = this.rank(node.input[0]);
    const listed = node.input[1] ? this.constantInts(node.input[1]) : ints(node, 'axes');
    if (!listed || listed.length === 0) return false;
    const axes = listed.map((axis) => normalise(axis, rank));
    if (
      axes.includes(layout.axis) ||
      (layout.keyAxis !== undefined && axes.includes(layout.keyAxis))
    )
      return false;
    const keep = this.intAttribute(node, 'keepdims', 1) === 1;
    const moved = (axis: number | undefined) =>
      axis === undefined || keep ? axis : axis - axes.filter((a) => a < axis).length;
    return this.copy(
      node,
      node.input.map((input) => this.read(input)),
      { ...layout, axis: moved(layout.axis)!, keyAxis: moved(layout.keyAxis), hidden: undefined },
    );
  }

  private concat(node: NodeProto, layouts: (Suffix | undefined)[]): boolean {
    if (layouts.some((layout) => layout?.flat !== undefined)) return false;
    const rank = this.rank(node.output[0]);
    const axis = normalise(this.axisAttribute(node, 0), rank);
    const first = layouts.find((layout) => layout !== undefined)!;
    if (axis === first.axis || axis === first.keyAxis) return false;
    if (
      layouts.some((l) => l !== undefined && (l.axis !== first.axis || l.keyAxis !== first.keyAxis))
    )
      return false;
    const inputs = node.input.map((input, k) =>
      layouts[k] ? this.read(input) : this.sliceFromStart(input, first.axis),
    );
    return this.copy(node, inputs, {
      ...first,
      notCausal: layouts.find((l) => l?.notCausal)?.notCausal,
      hidden: undefined,
    });
  }

  private squeeze(node: NodeProto, layout: Suffix): boolean {
    const [inRank, outRank] = [this.rank(node.input[0]), this.rank(node.output[0])];
    const listed = node.input[1] ? this.constantInts(node.input[1]) : ints(node, 'axes');
    let moved: (axis: number) => number;
    if (node.opType === 'Unsqueeze') {
      if (!listed) return false;
      const added = listed.map((axis) => normalise(axis, outRank)).sort((a, b) => a - b);
      moved = (axis) => added.reduce((at, a) => (a <= at ? at + 1 : at), axis);
    } else {
      const shape = this.shape(node.input[0])!;
      const removed = (listed ?? shape.flatMap((dim, a) => (dim === 1 ? [a] : []))).map((axis) =>
        normalise(axis, inRank),
      );
      if (
        removed.includes(layout.axis) ||
        (layout.keyAxis !== undefined && removed.includes(layout.keyAxis))
      )
        return false;
      moved = (axis) => axis - removed.filter((a) => a < axis).length;
    }
    return this.copy(
      node,
      node.input.map((input) => this.read(input)),
      {
        ...layout,
        axis: moved(layout.axis),
        keyAxis: layout.keyAxis === undefined ? undefined : moved(layout.keyAxis),
      },
    );
  }

  private gather(node: NodeProto, layout: Suffix): boolean {
    const axis = normalise(this.axisAttribute(node, 0), this.rank(node.input[0]));
    if (axis === layout.axis || axis === layout.keyAxis) return false;
    const indicesRank = this.rank(node.input[1]);
    const moved = (at: number | undefined) =>
      at === undefined || at < axis ? at : at - 1 + indicesRank;
    return this.copy(
      node,
      node.input.map((input) => this.read(input)),
      { ...layout, axis: moved(layout.axis)!, keyAxis: moved(layout.keyAxis), hidden: undefined },
    );
  }

  /** Gemm over flattened rows (transA 0): each row is one (example, position). */
  private gemm(node: NodeProto, layout: Suffix): boolean {
    if (
      layout.flat === undefined ||
      layout.axis !== 0 ||
      this.intAttribute(node, 'transA', 0) !== 0
    )
      return false;
    return this.copy(
      node,
      node.input.map((input) => this.read(input)),
      { ...layout, hidden: undefined },
    );
  }

  /** A Slice away from the positions is followed; `[-1:]` along them is the last position, whole. */
  private slice(node: NodeProto, layout: Suffix): boolean {
    const rank = this.rank(node.input[0]);
    const legacy = node.input.length < 3; // before opset 10: attributes
    const starts = legacy ? ints(node, 'starts') : this.constantInts(node.input[1]);
    const ends = legacy ? ints(node, 'ends') : this.constantInts(node.input[2]);
    const axes =
      (legacy
        ? ints(node, 'axes')
        : node.input[3]
          ? this.constantInts(node.input[3])
          : undefined) ?? starts?.map((_, k) => k);
    const steps = !legacy && node.input[4] ? this.constantInts(node.input[4]) : undefined;
    if (!starts || !ends || !axes) return false;
    const k = axes.map((axis) => normalise(axis, rank)).indexOf(layout.axis);
    const keyed =
      layout.keyAxis !== undefined &&
      axes.map((axis) => normalise(axis, rank)).includes(layout.keyAxis);
    if (k < 0)
      return (
        !keyed &&
        this.copy(
          node,
          node.input.map((input) => this.read(input)),
          { ...layout, hidden: undefined },
        )
      );
    const lastOnly = starts[k] === -1 && ends[k] >= this.positions && (steps?.[k] ?? 1) === 1;
    return (
      lastOnly &&
      this.copy(
        node,
        node.input.map((input) => this.read(input)),
        { kind: 'whole' },
      )
    );
  }

  /**
   * Elementwise with broadcasting: recomputed operands share their positions' axis (aligned from
   * the right); an operand that is not recomputed and runs along the positions is sliced to them.
   * On pairwise scores, a constant mask that hides every later key is recognised here.
   */
  private elementwise(node: NodeProto, layouts: (Suffix | undefined)[]): boolean {
    const rank = this.rank(node.output[0]);
    const aligned = layouts.map(
      (layout, k) =>
        layout && {
          ...layout,
          axis: layout.axis + rank - this.rank(node.input[k]),
          keyAxis:
            layout.keyAxis === undefined
              ? undefined
              : layout.keyAxis + rank - this.rank(node.input[k]),
        },
    );
    const first = aligned.find((layout) => layout !== undefined)!;
    if (
      aligned.some(
        (l) =>
          l !== undefined &&
          (l.axis !== first.axis || l.keyAxis !== first.keyAxis || l.flat !== first.flat),
      )
    )
      return false;
    const inputs: string[] = [];
    for (const [k, input] of node.input.entries()) {
      if (aligned[k] || !input) {
        inputs.push(this.read(input));
        continue;
      }
      const shape = this.shape(input);
      if (!shape) return false;
      const own = first.axis - (rank - shape.length);
      if (own < 0 || shape[own] === 1) inputs.push(this.read(input));
      else if (shape[own] === this.positions && first.flat === undefined)
        inputs.push(this.sliceFromStart(input, own));
      else return false;
    }
    const notCausal = aligned.find((l) => l?.notCausal)?.notCausal;
    const hidden =
      first.keyAxis === undefined ? undefined : this.hiddenAfter(node, aligned, rank, first);
    return this.copy(node, inputs, {
      kind: 'suffix',
      axis: first.axis,
      keyAxis: first.keyAxis,
      notCausal,
      hidden,
      flat: first.flat,
    });
  }

  /** Which later keys of pairwise scores are hidden after an elementwise node with constant operands. */
  private hiddenAfter(
    node: NodeProto,
    aligned: (Suffix | undefined)[],
    rank: number,
    scores: Suffix,
  ): Suffix['hidden'] {
    if (aligned.filter((l) => l !== undefined).length !== 1) return undefined;
    const constant = (k: number) =>
      aligned[k] || !node.input[k] || this.index.isActivation(node.input[k])
        ? undefined
        : this.sources.valueOf(node.input[k]);
    const hides = (mask: Tensor, hidden: (i: number) => boolean) =>
      hidesLaterKeys(mask, rank, scores.axis, scores.keyAxis!, this.positions, hidden);
    const before = aligned.find((l) => l !== undefined)!.hidden;
    if (node.opType === 'Where') {
      // Where(c, fill, x) or Where(c, x, fill): a fill ≤ −1e30 hides x where c selects it.
      const fillAt = aligned[1] ? 2 : 1;
      const [condition, fill] = [constant(0), constant(fillAt)];
      if (!fill || !allHidden(fill)) return undefined;
      if (before === 'minus-infinity') return before;
      if (!condition) return undefined;
      const selected = (i: number) => Boolean(condition.data[i]) === (fillAt === 1);
      return hides(condition, selected) ? 'minus-infinity' : undefined;
    }
    const other = constant(aligned[0] ? 1 : 0);
    if (!other) return undefined;
    if (node.opType === 'Add') {
      if (before === 'minus-infinity' && noneNanOrPlusInfinity(other)) return before;
      return hides(other, (i) => Number(other.data[i]) <= HIDDEN_BELOW)
        ? 'minus-infinity'
        : undefined;
    }
    if (
      (node.opType === 'Mul' || (node.opType === 'Div' && aligned[0])) &&
      allFinitePositive(other)
    )
      return before;
    return undefined;
  }

  /**
   * Products. Rows of A and columns of B keep their positions (position-wise), as do broadcast
   * axes. q·kᵀ of two recomputed values completes the keys and gives pairwise scores; pattern·v
   * over the keys completes v and is causal only for a pattern that hides every later key (0).
   */
  private matMul(node: NodeProto, layouts: (Suffix | undefined)[]): boolean {
    if (
      layouts.some((layout) => layout?.flat !== undefined) &&
      layouts.every((l) => l !== undefined)
    )
      return false;
    const [a, b] = layouts;
    const [rankA, rankB, rank] = [
      this.rank(node.input[0]),
      this.rank(node.input[1]),
      this.rank(node.output[0]),
    ];
    if (rankA < 2 || rankB < 2) return false;
    const [left, right] = node.input;
    const broadcast = (layout: Suffix, ownRank: number) =>
      layout.axis < ownRank - 2 && layout.keyAxis === undefined;
    if (a && !b) {
      if (a.keyAxis === undefined && a.axis === rankA - 2)
        return this.copy(node, [this.read(left), this.read(right)], {
          ...a,
          axis: rank - 2,
          hidden: undefined,
        });
      if (a.keyAxis === rankA - 1 && a.axis === rankA - 2)
        return this.copy(node, [this.read(left), this.read(right)], {
          kind: 'suffix',
          axis: rank - 2,
          notCausal: this.patternCausality(a, node),
        });
      if (broadcast(a, rankA)) return this.matMulBroadcast(node, a.axis + rank - rankA, a);
      return false;
    }
    if (b && !a) {
      if (b.keyAxis === undefined && b.axis === rankB - 1)
        return this.copy(node, [this.read(left), this.read(right)], {
          ...b,
          axis: rank - 1,
          hidden: undefined,
        });
      if (broadcast(b, rankB)) return this.matMulBroadcast(node, b.axis + rank - rankB, b);
      return false;
    }
    if (!a || !b) return false;
    const use = `node '${node.name}' (MatMul)`;
    if (
      a.keyAxis === undefined &&
      a.axis === rankA - 2 &&
      b.keyAxis === undefined &&
      b.axis === rankB - 1
    ) {
      // Scores: query rows i ≥ start against every key j.
      const notCausal = a.notCausal ?? b.notCausal;
      return this.copy(node, [this.read(left), this.complete(right, use)], {
        kind: 'suffix',
        axis: rank - 2,
        keyAxis: rank - 1,
        notCausal,
      });
    }
    if (
      a.keyAxis === rankA - 1 &&
      a.axis === rankA - 2 &&
      b.keyAxis === undefined &&
      b.axis === rankB - 2
    ) {
      return this.copy(node, [this.read(left), this.complete(right, use)], {
        kind: 'suffix',
        axis: rank - 2,
        notCausal: this.patternCausality(a, node),
      });
    }
    if (
      broadcast(a, rankA) &&
      broadcast(b, rankB) &&
      a.axis + rank - rankA === b.axis + rank - rankB
    ) {
      return this.copy(node, [this.read(left), this.read(right)], {
        kind: 'suffix',
        axis: a.axis + rank - rankA,
        notCausal: a.notCausal ?? b.notCausal,
      });
    }
    return false;
  }

  /** A product along broadcast axes with one recomputed operand: the other is sliced where it runs along the positions. */
  private matMulBroadcast(node: NodeProto, axis: number, layout: Suffix): boolean {
    const rank = this.rank(node.output[0]);
    const inputs = node.input.map((input) => {
      if (this.layouts.has(input)) return this.read(input);
      const shape = this.shape(input);
      const own = axis - (rank - (shape?.length ?? 0));
      return !shape || own < 0 || shape[own] === 1
        ? this.read(input)
        : this.sliceFromStart(input, own);
    });
    return this.copy(node, inputs, { ...layout, axis, hidden: undefined });
  }

  /** Why pattern·v over the keys may not be causal; undefined when row i reads keys ≤ i only. */
  private patternCausality(pattern: Suffix, node: NodeProto): string | undefined {
    if (pattern.notCausal) return pattern.notCausal;
    return pattern.hidden === 'zero'
      ? undefined
      : `node '${node.name}' (MatMul) mixes positions through a pattern with no constant mask hiding later keys`;
  }

  // ---- attributes and constants ----------------------------------------------------------------

  private axisAttribute(node: NodeProto, fallback: number): number {
    return this.intAttribute(node, 'axis', fallback);
  }

  private intAttribute(node: NodeProto, name: string, fallback: number): number {
    const attribute = node.attribute.find((a) => a.name === name);
    return attribute ? toNumber(attribute.i) : fallback;
  }

  private constantInts(value: string): number[] | undefined {
    const tensor = this.index.isActivation(value) ? undefined : this.sources.valueOf(value);
    return tensor && Array.from(tensor.data as ArrayLike<number | bigint>, Number);
  }
}

function ints(node: NodeProto, name: string): number[] | undefined {
  return node.attribute.find((a) => a.name === name)?.ints?.map(toNumber);
}

function normalise(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
