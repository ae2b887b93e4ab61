/**
 * The walker: from a forward graph, a scalar loss and the values to differentiate with respect
 * to, build one graph that computes the loss and the gradients (reverse-mode, in ONNX ops).
 *
 * It visits nodes in reverse graph order; each node with a gradient on some output and an input
 * that needs one asks its rule (rules/) for input gradients. Here, once for all rules:
 * - fused pairs (fused-pairs.ts): two ops differentiated at once where the table has a row;
 * - broadcast reduction: a rule's output-shaped gradient is summed over the axes along which
 *   its input was broadcast;
 * - fan-out: a value read by several nodes gets the sum of their contributions, `<value>_grad`;
 * - stop points: integer values, outputs of NO_GRADIENT ops, and the Identity copies PyTorch
 *   makes of merged parameters (each copy is its own parameter: gradients do not flow through
 *   it to the initializer it copies).
 */
import { int, valueInfo, type Dim } from '../graph/builder.ts';
import type { GraphIndex } from '../graph/graph.ts';
import {
  DataType,
  toNumber,
  type ModelProto,
  type NodeProto,
  type ValueInfoProto,
} from '../onnx/proto.ts';
import { derive } from '../graph/edit.ts';
import { dtypeOfCode, tensorFromProto } from '../onnx/tensor-proto.ts';
import { GradContext, type Grad, type GraphFacts } from './context.ts';
import { Emitter } from './emitter.ts';
import { AutodiffError } from './errors.ts';
import { FUSED_PAIRS, type FusedPair } from './fused-pairs.ts';
import { NO_GRADIENT, RULES } from './rules/index.ts';
import { checkGradientGraph } from './spec.ts';
import { defaultOpset } from '../onnx/model-file.ts';
import { tensor, type DType } from '../tensor.ts';

export interface BackwardSpec {
  /** The value to differentiate (a scalar; otherwise its sum is). */
  loss: string;
  /** Values to differentiate with respect to: graph inputs, initializers, parameter copies or any float value. */
  wrt: readonly string[];
  /** onnxruntime intra-op threads the graph will run with, when known: a rule may pick the form that runs faster there. */
  threads?: number;
}

export interface BackwardGraph {
  proto: ModelProto;
  /** wrt value → the graph output holding its gradient. */
  gradientOf: Map<string, string>;
}

export function buildBackward(
  index: GraphIndex,
  shapes: ReadonlyMap<string, readonly Dim[]>,
  spec: BackwardSpec,
): BackwardGraph {
  const proto = index.proto;
  const opset = defaultOpset(proto);
  checkGradientOpset(opset);
  const nodes = proto.graph.node.map((node) => derive(node, { output: [...node.output] }));
  const used = new Set<string>([
    ...index.valueNames(),
    ...index.initializerNames,
    ...nodes.flatMap((node) => [node.name, ...node.output]),
  ]);
  const types = new Map(index.elementTypes);
  const emitter = new Emitter(used, types);
  const leadingSums = new LeadingSums(emitter);
  const facts = graphFacts(index, shapes, types, opset, spec.threads);
  const parameterCopies = findParameterCopies(index);
  const relevant = differentiableFrom(nodes, spec.wrt, parameterCopies, facts);
  if (!relevant.has(spec.loss))
    throw new AutodiffError(
      `The loss '${spec.loss}' does not depend on any of ${spec.wrt.map((w) => `'${w}'`).join(', ')}: there is nothing to differentiate.`,
    );

  const contributions = new Map<string, string[]>();
  const add = (value: string, grad: string) =>
    contributions.set(value, [...(contributions.get(value) ?? []), grad]);
  const total = (value: string, named = false): string | undefined => {
    const parts = contributions.get(value);
    if (!parts || parts.length === 0) return undefined;
    const name =
      parts.length > 1 || named
        ? emitter.op(
            parts.length > 1 ? 'Sum' : 'Identity',
            parts,
            {},
            `${value}/grad`,
            `${value}_grad`,
          )
        : parts[0];
    contributions.set(value, [name]);
    return name;
  };
  add(spec.loss, seedGradient(emitter, facts, spec.loss));
  // A first op of a fused pair whose output only the second reads (and no one asked for its gradient).
  const readers = new Map<string, number>();
  for (const node of nodes)
    for (const input of node.input) readers.set(input, (readers.get(input) ?? 0) + 1);
  const graphOutputs = new Set(proto.graph.output.map((output) => output.name));
  const fusedPairAt = (second: NodeProto): { pair: FusedPair; first: NodeProto } | undefined => {
    if (!FUSED_PAIRS.some((pair) => pair.second === second.opType)) return undefined;
    const first = nodes[index.producer.get(second.input[0]) ?? -1];
    const pair = FUSED_PAIRS.find(
      (row) => row.second === second.opType && row.first === first?.opType,
    );
    const out = first?.output[0] ?? '';
    return pair && readers.get(out) === 1 && !graphOutputs.has(out) && !spec.wrt.includes(out)
      ? { pair, first }
      : undefined;
  };

  for (let position = nodes.length - 1; position >= 0; position--) {
    const node = nodes[position];
    if (NO_GRADIENT.has(node.opType) || parameterCopies.has(node.output[0])) continue;
    const outputGrads = node.output.map((output) => (output ? total(output) : undefined));
    if (outputGrads.every((grad) => grad === undefined)) continue;
    const needs = node.input.map((input) => !!input && relevant.has(input));
    if (!needs.some(Boolean)) continue;
    const rule = RULES[node.opType];
    if (!rule || (node.domain && node.domain !== 'ai.onnx'))
      throw new AutodiffError(missingRuleMessage(node, opset));
    const requestOutput = (slot: number) => {
      while (node.output.length <= slot) node.output.push('');
      node.output[slot] = emitter.fresh(`${node.name || node.opType}_output_${slot}`);
      return node.output[slot];
    };
    const context = new GradContext(node, outputGrads, needs, facts, emitter, requestOutput);
    const fused = fusedPairAt(node);
    if (fused && fused.pair.applies(context)) {
      // the pair at once: the first op then has no gradient to pass on
      if (relevant.has(fused.first.input[0]))
        add(fused.first.input[0], fused.pair.gradient(context));
      continue;
    }
    const inputGrads = rule(context);
    node.input.forEach((input, slot) => {
      if (!needs[slot] || inputGrads[slot] === undefined) return;
      add(input, reduceToInput(emitter, leadingSums, context, inputGrads[slot]!, input));
    });
  }

  const gradientOf = new Map<string, string>();
  const outputs: ValueInfoProto[] = [...proto.graph.output];
  const seen = new Set(outputs.map((output) => output.name));
  for (const value of spec.wrt) {
    const grad =
      total(value, true) ??
      emitter.op(
        'Mul',
        [value, emitter.scalar(0, facts.dtype(value) ?? 'float32')],
        {},
        `${value}/grad`,
        `${value}_grad`,
      );
    gradientOf.set(value, grad);
    if (!seen.has(grad)) outputs.push(valueInfo(grad, facts.dtype(value) ?? 'float32'));
    seen.add(grad);
  }
  if (!seen.has(spec.loss)) outputs.push(valueInfo(spec.loss, facts.dtype(spec.loss) ?? 'float32'));
  const graph = derive(proto.graph, {
    node: [...nodes, ...emitter.nodes],
    initializer: [...proto.graph.initializer, ...emitter.initializers],
    output: outputs,
  });
  const backward = derive(proto, { graph });
  checkGradientGraph(backward, emitter.nodes);
  return { proto: backward, gradientOf };
}

/**
 * What a user can do about an op without a gradient rule: which commands work without gradients,
 * how to get gradients anyway (values after the node, an export without the op), whom to tell.
 */
function missingRuleMessage(node: NodeProto, opset: number): string {
  const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : '';
  const op = `${domain ? `${domain}.` : ''}${node.opType}`;
  const around =
    domain === 'com.microsoft'
      ? "com.microsoft ops come from onnxruntime's graph optimizations (fused kernels): differentiate the model as torch.onnx.export wrote it, before optimizing it"
      : domain
        ? `ops of the '${domain}' domain are specific to one runtime: export the model with standard ONNX ops only`
        : `re-export the model with that computation written in other ops (in PyTorch, replace the module or function that exports as ${node.opType} by equivalent elementary operations before torch.onnx.export)`;
  return (
    `No gradient rule for op '${op}' (node '${node.name}', opset ${opset}), so teardown cannot differentiate through that node. ` +
    "Commands that need gradients through it stop here: grad, train, audit --try-fixes, and inspect's gradient analyses (grad × activation, integrated gradients, attribution patching, which inspect skips with a note). " +
    "run (with its interventions), hooks, inspect's census, ablations, patch sweeps and circuits, and audit work without gradients. " +
    `To get gradients anyway: ask for them with respect to values after '${node.name}' (grad --wrt HOOK, a hook downstream of it), or ${around}; and report the op to teardown's issues so a rule can be added.`
  );
}

/** Element types of the initializers whose values rules may read as constants (axes, shapes, exponents). */
const CONSTANT_TYPES = new Set<number>([
  DataType.INT64,
  DataType.INT32,
  DataType.FLOAT,
  DataType.DOUBLE,
  DataType.BOOL,
]);

function graphFacts(
  index: GraphIndex,
  shapes: ReadonlyMap<string, readonly Dim[]>,
  types: Map<string, number>,
  opset: number,
  threads: number | undefined,
): GraphFacts {
  const initializerShapes = new Map(
    index.proto.graph.initializer.map((tensor) => [tensor.name, tensor.dims.map(toNumber)]),
  );
  const constants = new Map<string, number[]>();
  for (const tensor of index.proto.graph.initializer) {
    if (CONSTANT_TYPES.has(tensor.dataType))
      constants.set(
        tensor.name,
        Array.from(tensorFromProto(tensor).data as ArrayLike<number | bigint>, Number),
      );
  }
  // Constant nodes, and the few ops exporters wrap around them (axes, pads, steps), folded: only the flat values matter here.
  const passThrough = new Set(['Identity', 'Cast', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten']);
  for (const node of index.nodes) {
    const value =
      node.opType === 'Constant' ? node.attribute.find((a) => a.name === 'value')?.t : undefined;
    if (value && node.output[0])
      constants.set(
        node.output[0],
        Array.from(tensorFromProto(value).data as ArrayLike<number | bigint>, Number),
      );
    else if (passThrough.has(node.opType) && constants.has(node.input[0]))
      constants.set(node.output[0], constants.get(node.input[0])!);
    else if (node.opType === 'Concat' && node.input.every((input) => constants.has(input)))
      constants.set(
        node.output[0],
        node.input.flatMap((input) => constants.get(input)!),
      );
  }
  return {
    opset,
    threads,
    shape: (value) => shapes.get(value) ?? initializerShapes.get(value),
    dtype: (value) => {
      const code = types.get(value);
      return code === undefined ? undefined : dtypeOfCode(code);
    },
    constant: (value) => constants.get(value),
  };
}

/** Identity nodes that copy an initializer into another parameter name (PyTorch's merged parameters). */
function findParameterCopies(index: GraphIndex): Set<string> {
  return new Set(
    index.nodes
      .filter((node) => node.opType === 'Identity' && index.initializerNames.has(node.input[0]))
      .map((node) => node.output[0]),
  );
}

/** Float values that depend on a wrt value through differentiable ops. */
function differentiableFrom(
  nodes: readonly NodeProto[],
  wrt: readonly string[],
  parameterCopies: Set<string>,
  facts: GraphFacts,
): Set<string> {
  const isFloat = (value: string) => {
    const dtype = facts.dtype(value);
    return dtype === 'float32' || dtype === 'float64';
  };
  const relevant = new Set(wrt.filter(isFloat));
  for (const node of nodes) {
    if (NO_GRADIENT.has(node.opType) || parameterCopies.has(node.output[0])) continue;
    if (node.input.some((input) => relevant.has(input)))
      for (const output of node.output) if (output && isFloat(output)) relevant.add(output);
  }
  return relevant;
}

/** d(loss)/d(loss) = 1 (for a non-scalar loss, ones: the gradient of its sum). */
function seedGradient(emitter: Emitter, facts: GraphFacts, loss: string): string {
  const dtype = facts.dtype(loss) ?? 'float32';
  const shape = facts.shape(loss);
  if (shape && shape.length === 0) return emitter.scalar(1, dtype);
  return emitter.op(
    'Expand',
    [emitter.scalar(1, dtype), emitter.op('Shape', [loss], {}, `${loss}/grad`)],
    {},
    `${loss}/grad`,
  );
}

/**
 * Gradient graphs use scatter-add (opset 16) and training-mode BatchNormalization (opset 14);
 * autodiff/opset.ts lifts opset 13–15 models to 17 before any backward graph is built.
 */
export function checkGradientOpset(opset: number): void {
  if (opset < 16)
    throw new Error(
      `Internal: a backward graph was asked for at opset ${opset}; gradientProto (autodiff/opset.ts) lifts models to opset 17 first. Please report this.`,
    );
}

/** Sums an output-shaped gradient over the axes its input was broadcast along (NumPy rules). */
function reduceToInput(
  emitter: Emitter,
  leadingSums: LeadingSums,
  context: GradContext,
  grad: Exclude<Grad, undefined>,
  input: string,
): string {
  if (typeof grad === 'string') return grad;
  const from = grad.shape;
  const to = context.shape(input);
  let value = grad.grad;
  const leading = from.length - to.length;
  const hint = `${input}/grad`;
  if (leading > 0) value = leadingSums.sum(value, context.dtype(input), from, leading, hint);
  const broadcastAxes = to
    .map((dim, axis) => (dim === 1 && from[axis + leading] !== 1 ? axis : -1))
    .filter((axis) => axis >= 0);
  if (broadcastAxes.length > 0)
    value = emitter.op(
      'ReduceSum',
      [value, emitter.int64s(broadcastAxes)],
      { keepdims: int(1) },
      hint,
    );
  return value;
}

/**
 * Σ over a gradient's first axes (a bias gradient: Σ over the batch) as a vector–matrix product,
 * ones[rows] · grad[rows, rest]: onnxruntime's MatMul does it several times faster than its
 * ReduceSum over leading axes (~1 µs vs ~32 µs for [128, 256]). One ones vector, sized from the
 * run's values, serves every gradient summed over the same leading axes (an MLP's biases share
 * the batch), so the product costs one op per gradient. ReduceSum where the other axes are not static.
 */
class LeadingSums {
  private readonly ones = new Map<string, string>();

  constructor(private readonly emitter: Emitter) {}

  sum(value: string, dtype: DType, from: readonly Dim[], leading: number, hint: string): string {
    const { emitter } = this;
    const rest = from.slice(leading);
    if (
      !rest.every((dim) => typeof dim === 'number') ||
      (dtype !== 'float32' && dtype !== 'float64')
    ) {
      return emitter.op(
        'ReduceSum',
        [value, emitter.int64s([...Array(leading).keys()])],
        { keepdims: int(0) },
        hint,
      );
    }
    const size = (rest as number[]).reduce((a, b) => a * b, 1);
    const rows =
      rest.length === 1 && leading === 1
        ? value
        : emitter.op('Reshape', [value, emitter.int64s([-1, size])], {}, hint); // [rows, size]
    const summed = emitter.op(
      'MatMul',
      [this.onesFor(value, dtype, from.slice(0, leading)), rows],
      {},
      hint,
    ); // [size]
    return rest.length === 1
      ? summed
      : emitter.op('Reshape', [summed, emitter.int64s(rest as number[])], {}, hint);
  }

  /** ones[Π leading dims] of `dtype`, made once per leading dims from the value that first needs it. */
  private onesFor(value: string, dtype: DType, leadingDims: readonly Dim[]): string {
    const key = `${dtype}|${leadingDims.join(',')}`;
    if (!this.ones.has(key)) {
      const { emitter } = this;
      const hint = 'teardown/grad/ones';
      let count = emitter.op(
        'Slice',
        [
          emitter.op('Shape', [value], {}, hint),
          emitter.int64s([0]),
          emitter.int64s([leadingDims.length]),
        ],
        {},
        hint,
      );
      if (leadingDims.length > 1)
        count = emitter.op('ReduceProd', [count], { keepdims: int(1) }, hint);
      this.ones.set(
        key,
        emitter.op(
          'ConstantOfShape',
          [count],
          { value: { type: 'tensor', value: tensor(dtype, [1], [1]) } },
          hint,
        ),
      );
    }
    return this.ones.get(key)!;
  }
}
