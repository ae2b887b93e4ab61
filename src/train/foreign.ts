/**
 * Which initializers of an existing ONNX model (a PyTorch export, another exporter's, or a model
 * teardown trained) fine-tuning trains, under which PyTorch name, and the graph it trains.
 *
 * Trained: every float initializer that is, or is an exporter's copy of, a PyTorch parameter and
 * lies on a differentiable path to the scored output:
 *   - initializers under their own (module-path) names: `fc.weight`, `class_token`;
 *   - exporter copies (autodiff/parameter-names.ts): a transposed nn.Linear weight
 *     `onnx::MatMul_N` (= Wᵀ), nn.MultiheadAttention's in_proj_weight split in three, GroupNorm's
 *     affine reshaped to [C, 1, 1] — trained as stored: SGD and AdamW act element by element and
 *     clipping on the global norm, so training Wᵀ is training W, transposed;
 *   - a Conv's exporter-made weight and bias (`onnx::Conv_N`): a BatchNorm folded in at export;
 *     the folded product is what is trained (docs/training.md says how that differs from PyTorch);
 *   - a tied weight's copy (GPT-2's lm_head = wteᵀ stored as `onnx::MatMul_N`) is no parameter of
 *     its own: in the graph trained it is Transpose(wte), so both uses' gradients reach wte and
 *     one update moves both, as in PyTorch; the saved model stores the copy as the new wteᵀ.
 * Frozen: BatchNorm running statistics, initializers with no differentiable path to the output
 * (masks, position tables read by Gather through integer indices, constants of shape arithmetic)
 * and other exporter-made constants (`onnx::Div_N` …). `--train` / `--freeze` globs over the
 * PyTorch names (or initializer names) choose among the trainable ones.
 */
import { InputError, nearestNames } from '../errors.ts';
import { NO_GRADIENT } from '../autodiff/rules/index.ts';
import { transposedCopies, type TransposedCopy } from '../autodiff/parameter-names.ts';
import { ints, makeNode } from '../graph/builder.ts';
import { derive } from '../graph/edit.ts';
import type { GraphIndex } from '../graph/graph.ts';
import { moduleScopes } from '../graph/scopes.ts';
import type { ModelProto, TensorProto } from '../onnx/proto.ts';
import { tensorFromProto, tensorToProto } from '../onnx/tensor-proto.ts';
import type { Model } from '../runtime/model.ts';
import { concatRows, moveAxis, type Tensor } from '../tensor.ts';

export interface ParameterSelection {
  /** Globs (`*`, `?`) over PyTorch names: train only the parameters matching one (default: all). */
  train?: string[];
  /** Globs: keep these frozen. */
  freeze?: string[];
}

export interface TrainedParameter {
  /** The initializer trained (in the graph as trained). */
  initializer: string;
  /** Its PyTorch parameter name (a copy's source, a split's whole, a folded Conv's module). */
  pytorchName: string;
  note?: string;
}

export interface FrozenValue {
  initializer: string;
  reason: string;
}

export interface TiedCopy {
  /** The exporter-made initializer holding sourceᵀ. */
  copy: string;
  source: string;
}

export interface FineTuningPlan {
  /** The model as trained: every trained value an initializer, tied copies computed from their source. */
  proto: ModelProto;
  parameters: TrainedParameter[];
  frozen: FrozenValue[];
  tied: TiedCopy[];
  /** Untied exporter copies, to report values under PyTorch's names. */
  copies: TransposedCopy[];
}

export function fineTuningPlan(model: Model, selection: ParameterSelection = {}, output = model.outputNames[0]): FineTuningPlan {
  const graph = model.graph;
  const copies = transposedCopies(graph);
  const tied = copies.filter((copy) => copy.tied).map((copy): TiedCopy => ({ copy: copy.initializers[0], source: copy.parameter }));
  const untied = copies.filter((copy) => !copy.tied);
  const copyOf = new Map(untied.flatMap((copy) => copy.initializers.map((name) => [name, copy.parameter] as const)));
  const tiedCopies = new Set(tied.map((t) => t.copy));
  const proto = trainingProto(model, tied);
  const onPath = differentiablePath(graph, output, tied);
  const runningStatistics = new Set(graph.nodes.filter((node) => node.opType === 'BatchNormalization').flatMap((node) => [node.input[3], node.input[4]]));
  const candidates: TrainedParameter[] = [];
  const frozen: FrozenValue[] = [];
  for (const tensor of proto.graph.initializer) {
    const name = tensor.name;
    if (tensor.dataType !== 1 || tiedCopies.has(name)) continue;
    if (runningStatistics.has(name)) { frozen.push({ initializer: name, reason: 'BatchNorm running statistic' }); continue; }
    if (!onPath.has(name)) { frozen.push({ initializer: name, reason: 'no differentiable path to the output (a buffer: mask, index table, shape constant)' }); continue; }
    const named = pytorchNameOf(graph, name, copyOf);
    if (!named) { frozen.push({ initializer: name, reason: 'an exporter-made constant, not a PyTorch parameter' }); continue; }
    candidates.push({ initializer: name, ...named });
  }
  const parameters = select(candidates, selection, frozen);
  return { proto, parameters, frozen, tied, copies: untied };
}

/** The PyTorch name of a trainable initializer, or undefined for an exporter's constant. */
function pytorchNameOf(graph: GraphIndex, name: string, copyOf: Map<string, string>): { pytorchName: string; note?: string } | undefined {
  if (copyOf.has(name)) return { pytorchName: copyOf.get(name)!, note: `exporter copy '${name}'` };
  if (!name.startsWith('onnx::')) return { pytorchName: name };
  // A Conv weight or bias the exporter made: a BatchNorm folded into the Conv (constant folding).
  const readers = (graph.consumers.get(name) ?? []).map((i) => graph.nodes[i]);
  const conv = readers.length === 1 && /^Conv/.test(readers[0].opType) ? readers[0] : undefined;
  const slot = conv?.input.indexOf(name);
  if (!conv || (slot !== 1 && slot !== 2)) return undefined;
  const module = moduleScopes(conv).at(-1);
  const role = slot === 1 ? 'weight' : 'bias';
  return { pytorchName: module ? `${module}.${role}` : name, note: `'${name}': a BatchNorm folded into the Conv at export` };
}

/**
 * Initializers from which the output is reached through differentiable ops: walking the nodes
 * backwards from the output, a float input of a node with a gradient rule whose float output is
 * on the path is on it too. Integer values (indices, shapes, masks compared to 0) stop the walk.
 */
function differentiablePath(graph: GraphIndex, output: string, tied: TiedCopy[]): Set<string> {
  const onPath = new Set([output]);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (NO_GRADIENT.has(node.opType) || !node.output.some((value) => onPath.has(value))) continue;
    for (const input of node.input) if (input && graph.isFloat(input)) onPath.add(input);
  }
  for (const { copy, source } of tied) if (onPath.has(copy)) onPath.add(source);
  // PyTorch's merged identical parameters: Identity(initializer) → the other parameter's name.
  for (const node of graph.nodes) if (node.opType === 'Identity' && onPath.has(node.output[0]) && graph.initializerNames.has(node.input[0])) onPath.add(node.output[0]);
  return onPath;
}

/** --train / --freeze over PyTorch names (and initializer names): what stays trained. */
function select(candidates: TrainedParameter[], selection: ParameterSelection, frozen: FrozenValue[]): TrainedParameter[] {
  const names = (p: TrainedParameter) => [p.pytorchName, p.initializer];
  const check = (pattern: string, flag: string) => {
    if (!candidates.some((p) => names(p).some((name) => globMatches(pattern, name)))) {
      const known = [...new Set(candidates.map((p) => p.pytorchName))];
      throw new InputError(`${flag} '${pattern}' matches no trainable parameter. Nearest: ${nearestNames(pattern, known, 5).join(', ')} (${known.length} trainable in all; frozen values are listed by teardown train --from MODEL --list-parameters).`);
    }
  };
  selection.train?.forEach((pattern) => check(pattern, '--train'));
  selection.freeze?.forEach((pattern) => check(pattern, '--freeze'));
  const kept: TrainedParameter[] = [];
  for (const parameter of candidates) {
    const matches = (patterns: string[] | undefined) => patterns?.find((pattern) => names(parameter).some((name) => globMatches(pattern, name)));
    const notTrained = selection.train?.length && !matches(selection.train);
    const freeze = matches(selection.freeze);
    if (notTrained) frozen.push({ initializer: parameter.initializer, reason: 'not matched by --train' });
    else if (freeze) frozen.push({ initializer: parameter.initializer, reason: `--freeze '${freeze}'` });
    else kept.push(parameter);
  }
  if (!kept.length) throw new InputError(`--train ${selection.train?.join(' ') ?? ''} --freeze ${selection.freeze?.join(' ') ?? ''} leave no parameter to train: loosen the patterns.`);
  return kept;
}

/** A glob over names: `*` any run of characters (dots included), `?` one character. */
export function globMatches(pattern: string, name: string): boolean {
  const source = pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`).test(name);
}

/**
 * The graph as trained: each tied copy is Transpose(source) instead of an initializer, and a
 * parameter PyTorch's exporter merged into another (Identity of an initializer) becomes an
 * initializer of its own, so every trained value is an initializer and trains on its own.
 */
function trainingProto(model: Model, tied: TiedCopy[]): ModelProto {
  const graph = model.proto.graph;
  const byName = new Map(graph.initializer.map((t) => [t.name, t]));
  const tiedCopies = new Set(tied.map((t) => t.copy));
  const merged = graph.node.filter((node) => node.opType === 'Identity' && byName.has(node.input[0]) && byName.get(node.input[0])!.dataType === 1);
  const mergedOutputs = new Set(merged.map((node) => node.output[0]));
  const transposes = tied.map(({ copy, source }) => makeNode(`teardown/tied/${copy}`, 'Transpose', [source], [copy], { perm: ints([1, 0]) }));
  const initializer: TensorProto[] = [
    ...graph.initializer.filter((t) => !tiedCopies.has(t.name)),
    ...merged.map((node) => ({ ...byName.get(node.input[0])!, name: node.output[0] })),
  ];
  const node = [...transposes, ...graph.node.filter((n) => !mergedOutputs.has(n.output[0]) || n.opType !== 'Identity')];
  return derive(model.proto, { graph: derive(graph, { node, initializer }) });
}

/**
 * The original model with the trained values: trained initializers replaced, each tied copy set
 * to its trained source transposed, a merged parameter trained on its own stored as an
 * initializer in place of its Identity. Everything else (nodes, opset, metadata) is kept.
 */
export function withTrainedValues(original: ModelProto, plan: FineTuningPlan, values: ReadonlyMap<string, Tensor>): ModelProto {
  const graph = original.graph;
  const present = new Set(graph.initializer.map((t) => t.name));
  const transposedOf = new Map(plan.tied.filter(({ source }) => values.has(source)).map(({ copy, source }) => [copy, moveAxis(values.get(source)!, 1, 0)]));
  const updated = (t: TensorProto) => (values.has(t.name) ? tensorToProto(t.name, values.get(t.name)!) : transposedOf.has(t.name) ? tensorToProto(t.name, transposedOf.get(t.name)!) : t);
  const separated = [...values.keys()].filter((name) => !present.has(name));
  const separatedSet = new Set(separated);
  return derive(original, {
    graph: derive(graph, {
      initializer: [...graph.initializer.map(updated), ...separated.map((name) => tensorToProto(name, values.get(name)!))],
      node: graph.node.filter((node) => !(node.opType === 'Identity' && separatedSet.has(node.output[0]))),
    }),
  });
}

/** Initializer values of a model under PyTorch's names: untied exporter copies transposed back and stacked (tied copies left out). */
export function valuesUnderPyTorchNames(proto: ModelProto, plan: FineTuningPlan): Map<string, Tensor> {
  const values = new Map(proto.graph.initializer.filter((t) => t.dataType === 1).map((t) => [t.name, tensorFromProto(t)]));
  for (const { copy } of plan.tied) values.delete(copy);
  for (const copy of plan.copies) {
    const parts = copy.initializers.map((name) => values.get(name)!);
    copy.initializers.forEach((name) => values.delete(name));
    if (copy.layout === 'reshaped') values.set(copy.parameter, { ...parts[0], dims: [parts[0].data.length] });
    else values.set(copy.parameter, concatRows(parts.map((part) => moveAxis(part, 1, 0))));
  }
  return values;
}
