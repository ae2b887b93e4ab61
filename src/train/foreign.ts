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
 *   - an LSTM/GRU/RNN layer's packed W, R, B (`onnx::LSTM_N`, autodiff/recurrent-names.ts): each
 *     holds several PyTorch parameters (both directions, bias_ih and bias_hh) with gate blocks
 *     permuted — a permutation, so trained as stored too;
 *   - a Conv's exporter-made weight and bias with a BatchNorm folded in at export, named for both
 *     modules (`conv1.weight (+bn1 folded)`): the fused Conv is what trains (README says how that
 *     differs from training PyTorch's Conv and BatchNorm);
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
import {
  recurrentPackings,
  underRecurrentNames,
  type RecurrentPacking,
} from '../autodiff/recurrent-names.ts';
import { ints, makeNode } from '../graph/builder.ts';
import { derive } from '../graph/edit.ts';
import type { GraphIndex } from '../graph/graph.ts';
import { DataType, type ModelProto, type TensorProto } from '../onnx/proto.ts';
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
  /** The PyTorch parameters it holds: one, or a recurrent layer's packed directions and biases. */
  pytorchNames: string[];
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
  /** Untied exporter copies and recurrent packings, to report values under PyTorch's names. */
  copies: TransposedCopy[];
  packings: RecurrentPacking[];
}

export function fineTuningPlan(
  model: Model,
  selection: ParameterSelection = {},
  output = model.outputNames[0],
): FineTuningPlan {
  const graph = model.graph;
  const copies = transposedCopies(graph, model.hooks.foldings);
  const tied = copies
    .filter((copy) => copy.tied)
    .map((copy): TiedCopy => ({ copy: copy.initializers[0], source: copy.parameter }));
  const untied = copies.filter((copy) => !copy.tied);
  const packings = recurrentPackings(graph);
  const copyOf = new Map<string, string[]>(
    untied.flatMap((copy) => copy.initializers.map((name) => [name, [copy.parameter]] as const)),
  );
  for (const [name, parameters] of packedParameters(model, packings)) copyOf.set(name, parameters);
  const tiedCopies = new Set(tied.map((t) => t.copy));
  const proto = trainingProto(model, tied);
  const onPath = differentiablePath(graph, output, tied);
  const runningStatistics = new Set(
    graph.nodes
      .filter((node) => node.opType === 'BatchNormalization')
      .flatMap((node) => [node.input[3], node.input[4]]),
  );
  const candidates: TrainedParameter[] = [];
  const frozen: FrozenValue[] = [];
  for (const tensor of proto.graph.initializer) {
    const name = tensor.name;
    if (tensor.dataType !== DataType.FLOAT || tiedCopies.has(name)) continue;
    if (runningStatistics.has(name)) {
      frozen.push({ initializer: name, reason: 'BatchNorm running statistic' });
      continue;
    }
    if (!onPath.has(name)) {
      frozen.push({
        initializer: name,
        reason:
          'no differentiable path to the output (a buffer: mask, index table, shape constant)',
      });
      continue;
    }
    const named = pytorchNameOf(name, copyOf);
    if (!named) {
      frozen.push({
        initializer: name,
        reason: 'an exporter-made constant, not a PyTorch parameter',
      });
      continue;
    }
    candidates.push({ initializer: name, ...named });
  }
  const parameters = select(candidates, selection, frozen);
  return { proto, parameters, frozen, tied, copies: untied, packings };
}

/** The PyTorch names a trainable initializer holds, or undefined for an exporter's constant. */
function pytorchNameOf(
  name: string,
  copyOf: Map<string, string[]>,
): { pytorchNames: string[]; note?: string } | undefined {
  if (copyOf.has(name)) return { pytorchNames: copyOf.get(name)!, note: `exporter-made '${name}'` };
  return name.startsWith('onnx::') ? undefined : { pytorchNames: [name] };
}

/** Each packed recurrent initializer → the PyTorch parameters it holds (recurrent-names.ts). */
function packedParameters(model: Model, packings: RecurrentPacking[]): Map<string, string[]> {
  const values = new Map(model.proto.graph.initializer.map((t) => [t.name, t]));
  const result = new Map<string, string[]>();
  for (const packing of packings) {
    for (const { name } of packing.initializers) {
      const unpacked = underRecurrentNames(new Map([[name, tensorFromProto(values.get(name)!)]]), [
        { ...packing, initializers: packing.initializers.filter((i) => i.name === name) },
      ]);
      result.set(name, [...unpacked.keys()]);
    }
  }
  return result;
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
  for (const node of graph.nodes)
    if (
      node.opType === 'Identity' &&
      onPath.has(node.output[0]) &&
      graph.initializerNames.has(node.input[0])
    )
      onPath.add(node.output[0]);
  return onPath;
}

/** --train / --freeze over PyTorch names (and initializer names): what stays trained. */
function select(
  candidates: TrainedParameter[],
  selection: ParameterSelection,
  frozen: FrozenValue[],
): TrainedParameter[] {
  const known = [...new Set(candidates.flatMap((p) => p.pytorchNames))];
  for (const [flag, patterns] of [
    ['--train', selection.train],
    ['--freeze', selection.freeze],
  ] as const) {
    for (const pattern of patterns ?? []) {
      if (candidates.some((p) => matchedBy(p, pattern) !== 'none')) continue;
      throw new InputError(
        `${flag} '${pattern}' matches no trainable parameter. Nearest: ${nearestNames(pattern, known, 5).join(', ')} (${known.length} in all; teardown train --from MODEL --list-parameters lists them and the frozen values).`,
      );
    }
  }
  const kept: TrainedParameter[] = [];
  for (const parameter of candidates) {
    const trainedBy = selection.train?.find((pattern) => matchedBy(parameter, pattern) !== 'none');
    const frozenBy = selection.freeze?.find((pattern) => matchedBy(parameter, pattern) !== 'none');
    for (const pattern of [trainedBy, frozenBy]) {
      if (pattern && matchedBy(parameter, pattern) === 'some') {
        throw new InputError(
          `'${pattern}' matches some of the PyTorch parameters stored together in '${parameter.initializer}' (${parameter.pytorchNames.join(', ')}) but not all: they train or stay frozen together; widen or narrow the pattern.`,
        );
      }
    }
    if (selection.train?.length && !trainedBy)
      frozen.push({ initializer: parameter.initializer, reason: 'not matched by --train' });
    else if (frozenBy)
      frozen.push({ initializer: parameter.initializer, reason: `--freeze '${frozenBy}'` });
    else kept.push(parameter);
  }
  if (!kept.length)
    throw new InputError(
      `--train ${selection.train?.join(' ') ?? ''} --freeze ${selection.freeze?.join(' ') ?? ''} leave no parameter to train: loosen the patterns.`,
    );
  return kept;
}

/** Whether a glob matches the initializer's name or all, some or none of the PyTorch parameters it holds. */
function matchedBy(parameter: TrainedParameter, pattern: string): 'all' | 'some' | 'none' {
  if (globMatches(pattern, parameter.initializer)) return 'all';
  const matched = parameter.pytorchNames.filter((name) => globMatches(pattern, name)).length;
  return matched === 0 ? 'none' : matched === parameter.pytorchNames.length ? 'all' : 'some';
}

/** A glob over names: `*` any run of characters (dots included), `?` one character. */
export function globMatches(pattern: string, name: string): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
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
  const merged = graph.node.filter(
    (node) =>
      node.opType === 'Identity' &&
      byName.has(node.input[0]) &&
      byName.get(node.input[0])!.dataType === DataType.FLOAT,
  );
  const mergedOutputs = new Set(merged.map((node) => node.output[0]));
  const transposes = tied.map(({ copy, source }) =>
    makeNode(`teardown/tied/${copy}`, 'Transpose', [source], [copy], { perm: ints([1, 0]) }),
  );
  const initializer: TensorProto[] = [
    ...graph.initializer.filter((t) => !tiedCopies.has(t.name)),
    ...merged.map((node) => ({ ...byName.get(node.input[0])!, name: node.output[0] })),
  ];
  const node = [
    ...transposes,
    ...graph.node.filter((n) => !mergedOutputs.has(n.output[0]) || n.opType !== 'Identity'),
  ];
  return derive(model.proto, { graph: derive(graph, { node, initializer }) });
}

/**
 * The original model with the trained values: trained initializers replaced, each tied copy set
 * to its trained source transposed, a merged parameter trained on its own stored as an
 * initializer in place of its Identity. Everything else (nodes, opset, metadata) is kept.
 */
export function withTrainedValues(
  original: ModelProto,
  plan: FineTuningPlan,
  values: ReadonlyMap<string, Tensor>,
): ModelProto {
  const graph = original.graph;
  const present = new Set(graph.initializer.map((t) => t.name));
  const transposedOf = new Map(
    plan.tied
      .filter(({ source }) => values.has(source))
      .map(({ copy, source }) => [copy, moveAxis(values.get(source)!, 1, 0)]),
  );
  const updated = (t: TensorProto) =>
    values.has(t.name)
      ? tensorToProto(t.name, values.get(t.name)!)
      : transposedOf.has(t.name)
        ? tensorToProto(t.name, transposedOf.get(t.name)!)
        : t;
  const separated = [...values.keys()].filter((name) => !present.has(name));
  const separatedSet = new Set(separated);
  return derive(original, {
    graph: derive(graph, {
      initializer: [
        ...graph.initializer.map(updated),
        ...separated.map((name) => tensorToProto(name, values.get(name)!)),
      ],
      node: graph.node.filter(
        (node) => !(node.opType === 'Identity' && separatedSet.has(node.output[0])),
      ),
    }),
  });
}

/** Initializer values of a model under PyTorch's names: exporter copies and packings undone (tied copies left out). */
export function valuesUnderPyTorchNames(
  proto: ModelProto,
  plan: FineTuningPlan,
): Map<string, Tensor> {
  const values = new Map(
    proto.graph.initializer
      .filter((t) => t.dataType === DataType.FLOAT)
      .map((t) => [t.name, tensorFromProto(t)]),
  );
  for (const { copy } of plan.tied) values.delete(copy);
  for (const copy of plan.copies) {
    const parts = copy.initializers.map((name) => values.get(name)!);
    copy.initializers.forEach((name) => values.delete(name));
    if (copy.layout === 'renamed') values.set(copy.parameter, parts[0]);
    else if (copy.layout === 'reshaped')
      values.set(copy.parameter, { ...parts[0], dims: [parts[0].data.length] });
    else values.set(copy.parameter, concatRows(parts.map((part) => moveAxis(part, 1, 0))));
  }
  return underRecurrentNames(values, plan.packings);
}
