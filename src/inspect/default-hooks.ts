/**
 * Which hooks inspect takes apart when none are named: every float module hook that depends on
 * the input and is not a graph output, one per value. A model without module scopes (bare
 * `nn.Parameter`s and functional calls, like the original grokking code) gets one hook per
 * nonlinearity (Relu, Gelu — also when exported as its Erf formula —, Tanh, Sigmoid, ...), per
 * last-axis Softmax (attention patterns) and per Add of two data-dependent values (residual
 * additions), each the raw value its node produces.
 */
import { InputError } from '../errors.ts';
import type { Hook } from '../graph/hooks.ts';
import type { GraphIndex } from '../graph/graph.ts';
import type { Model } from '../runtime/model.ts';

export interface ChosenHooks {
  hooks: Hook[];
  /** How they were chosen, for the summary: named patterns, module hooks, or node hooks of a scope-less model. */
  source: 'patterns' | 'modules' | 'nodes';
}

const NONLINEARITIES = new Set([
  'Relu',
  'Gelu',
  'Tanh',
  'Sigmoid',
  'LeakyRelu',
  'Elu',
  'Selu',
  'Celu',
  'Softplus',
  'Softsign',
  'HardSigmoid',
  'HardSwish',
  'Mish',
  'PRelu',
  'ThresholdedRelu',
]);

export function chooseHooks(model: Model, patterns: string[] | undefined): ChosenHooks {
  const modules = model.hooks.hooks.filter(
    (hook) => hook.kind === 'module' && !model.graph.outputNames.has(hook.value),
  );
  const source = patterns?.length ? 'patterns' : modules.length ? 'modules' : 'nodes';
  const candidates =
    source === 'patterns'
      ? model.hooks.match(patterns!)
      : source === 'modules'
        ? modules
        : nodeHooks(model);
  const seen = new Set<string>();
  const chosen = candidates.filter((hook) => {
    if (hook.dtype !== 'float32' && hook.dtype !== 'float64') return false;
    if (
      !model.graph.fromInputs.has(hook.value) &&
      !model.graph.inputs.some((input) => input.name === hook.value)
    )
      return false;
    if (seen.has(hook.value)) return false;
    seen.add(hook.value);
    return true;
  });
  if (chosen.length === 0) {
    throw new InputError(
      source === 'patterns'
        ? `None of the hooks matching ${patterns!.map((p) => `'${p}'`).join(', ')} holds float values that depend on the input (parameters are not inspected).`
        : 'The model has no module hooks (its node names carry no PyTorch module scopes) and no nonlinearity, last-axis Softmax or residual Add to inspect: name raw values with --hooks PATTERN (list them with teardown hooks MODEL).',
    );
  }
  return { hooks: chosen, source };
}

/** The raw-value hooks of the model's nonlinearities (GELU formulas included), in graph order. */
export function nonlinearityHooks(model: Model): Hook[] {
  const graph = model.graph;
  const values = graph.nodes.flatMap((node, index) =>
    NONLINEARITIES.has(node.opType)
      ? [node.output[0]]
      : node.opType === 'Erf'
        ? gelu(graph, index)
        : [],
  );
  return [...new Set(values)]
    .filter((value) => !graph.outputNames.has(value))
    .map((value) => model.hooks.resolve(value));
}

/** The raw-value hooks of a scope-less model's nonlinearities, last-axis Softmaxes and data-dependent Adds, in graph order. */
function nodeHooks(model: Model): Hook[] {
  const graph = model.graph;
  const opset = model.proto.opsetImport.find((entry) => !entry.domain)?.version;
  const values = graph.nodes.flatMap((node, index) => {
    const output = node.output[0];
    if (!output || graph.outputNames.has(output)) return [];
    if (NONLINEARITIES.has(node.opType)) return [output];
    if (
      node.opType === 'Softmax' &&
      lastAxisSoftmax(node.attribute.find((a) => a.name === 'axis')?.i, Number(opset ?? 13))
    )
      return [output];
    if (
      node.opType === 'Add' &&
      node.input.length === 2 &&
      node.input.every((input) => graph.isActivation(input))
    )
      return [output];
    if (node.opType === 'Erf') return gelu(graph, index);
    return [];
  });
  return [...new Set(values)].map((value) => model.hooks.resolve(value));
}

/** Softmax over the last axis: axis −1, or no axis at opset ≥ 13 (earlier opsets defaulted to 1). */
function lastAxisSoftmax(
  axis: { toNumber(): number } | number | null | undefined,
  opset: number,
): boolean {
  if (axis === undefined || axis === null) return opset >= 13;
  return Number(typeof axis === 'number' ? axis : axis.toNumber()) === -1;
}

/**
 * GELU exported as its formula, x·½·(1 + erf(x/√2)): the Erf's single-reader chain
 * (Add, Mul, Mul in PyTorch's order) ends at the GELU's output, its last Mul within three steps.
 */
function gelu(graph: GraphIndex, erf: number): string[] {
  let value = graph.nodes[erf].output[0];
  let output: string | undefined;
  for (let step = 0; step < 3; step++) {
    const readers = graph.consumers.get(value) ?? [];
    if (readers.length !== 1) break;
    const node = graph.nodes[readers[0]];
    if (node.opType !== 'Add' && node.opType !== 'Mul') break;
    value = node.output[0];
    if (node.opType === 'Mul') output = value;
  }
  return output ? [output] : [];
}
