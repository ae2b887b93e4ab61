/**
 * One training step as one ONNX graph: forward, loss, backward (autodiff/), optional gradient
 * clipping and the optimizer update (optimizers.ts). Parameters and optimizer state become graph
 * inputs, their updated values graph outputs; the step loop (step-loop.ts) carries them from
 * one step to the next.
 *
 * Clipping follows torch.nn.utils.clip_grad_norm_: g ← g·min(1, max_norm / (‖g‖₂ + 10⁻⁶)) with
 * ‖g‖₂ over every parameter together.
 */
import { buildBackward } from '../autodiff/backward.ts';
import { Emitter } from '../autodiff/emitter.ts';
import { lossModelWithShapes, modelFeeds, parameterNames } from '../autodiff/gradients.ts';
import type { LossSpec } from '../autodiff/loss.ts';
import { float, int, makeAttribute, valueInfo } from '../graph/builder.ts';
import { derive } from '../graph/edit.ts';
import { GraphIndex } from '../graph/graph.ts';
import { toNumber, type ModelProto, type NodeProto } from '../onnx/proto.ts';
import type { Model } from '../runtime/model.ts';
import { probeValueShapes } from '../runtime/probe.ts';
import { sessionThreads } from '../runtime/session.ts';
import { batchNormForTraining, type BatchStatistics } from './batch-norm.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import {
  emitUpdate,
  stateNames,
  stepScalars,
  type Accumulate,
  type OptimizerSpec,
} from './optimizers.ts';

export interface StepGraph {
  proto: ModelProto;
  parameters: string[];
  /** Graph outputs: the loss and the model's output (scores). */
  loss: string;
  scores: string;
  /** Parameter → output holding its updated value. */
  nextParameter: Map<string, string>;
  /** State input name → output holding its updated value. */
  nextState: Map<string, string>;
  stateInputs: string[];
  /** State input name → its dims (its parameter's, or the flat vector's). */
  stateDims: Map<string, number[]>;
  /** BatchNorm running statistics to update from each step's batch statistics. */
  statistics: BatchStatistics[];
}

export interface StepGraphOptions {
  /** The values trained (default: every parameter, autodiff/gradients.ts parameterNames). */
  parameters?: readonly string[];
  /**
   * BatchNorm normalises by each batch's statistics and its running statistics follow them, as in
   * PyTorch's train() (default, teardown's own models); or by its running statistics, frozen, as
   * in eval() — what an exported graph computes, and what fine-tuning an existing model keeps.
   */
  batchNorm?: 'batch-statistics' | 'running-statistics';
}

export async function buildStepGraph(
  model: Model,
  feeds: Feeds,
  target: Tensor,
  loss: LossSpec,
  optimizer: OptimizerSpec,
  clipNorm?: number,
  options: StepGraphOptions = {},
): Promise<StepGraph> {
  let statistics: BatchStatistics[] = [];
  const trainingBatchNorm = async (proto: ModelProto) => {
    const training = await withTrainingBatchNorm(model, proto, feeds);
    statistics = training.statistics;
    return training.proto;
  };
  const {
    lossModel,
    loss: lossValue,
    scores,
    shapes,
  } = await lossModelWithShapes(
    model,
    feeds,
    target,
    loss,
    options.batchNorm === 'running-statistics' ? undefined : trainingBatchNorm,
  );
  await lossModel.release();
  const parameters = options.parameters ? [...options.parameters] : parameterNames(model);
  const backward = buildBackward(lossModel.graph, shapes, {
    loss: lossValue,
    wrt: parameters,
    threads: sessionThreads(model.options),
  });

  const index = new GraphIndex(backward.proto);
  const emitter = Emitter.forGraph(index);
  const gradients = parameters.map((parameter) => backward.gradientOf.get(parameter)!);
  const clipped = clipNorm === undefined ? gradients : clip(emitter, gradients, clipNorm);

  const graph = backward.proto.graph;
  const dims = new Map(graph.initializer.map((tensor) => [tensor.name, tensor.dims.map(toNumber)]));
  const parameterDims = (name: string) => dims.get(name) ?? (shapes.get(name) as number[]);
  const fused = gemmAccumulator(graph.node, emitter);
  const { nextParameter, nextState, stateDims } = emitUpdates(
    emitter,
    optimizer,
    parameters,
    clipped,
    parameterDims,
    fused,
  );
  const stateInputs = [...nextState.keys()];

  // Parameters move from initializers to inputs; state and per-step scalars are new inputs.
  const isParameter = new Set(parameters);
  const inputs = [
    ...graph.input,
    ...parameters.map((name) => valueInfo(name, 'float32', parameterDims(name))),
    ...stateInputs.map((name) => valueInfo(name, 'float32', stateDims.get(name))),
    ...stepScalars(optimizer).map((name) => valueInfo(name, 'float32', [])),
  ];
  const statisticsOutputs = statistics.flatMap((statistic) => [
    statistic.batchMean,
    statistic.batchVar,
  ]);
  const outputs = [
    lossValue,
    scores,
    ...nextParameter.values(),
    ...nextState.values(),
    ...statisticsOutputs,
  ].map((name) => valueInfo(name, 'float32'));
  // A parameter copy (PyTorch's merged parameters) is produced by an Identity node: as an input, that node must go.
  const nodes = [
    ...fused
      .nodes()
      .filter((node) => !(node.opType === 'Identity' && isParameter.has(node.output[0]))),
    ...emitter.nodes,
  ];
  const proto = derive(backward.proto, {
    graph: derive(graph, {
      node: nodes,
      input: inputs,
      output: outputs,
      initializer: [
        ...graph.initializer.filter((tensor) => !isParameter.has(tensor.name)),
        ...emitter.initializers,
      ],
    }),
  });
  return {
    proto,
    parameters,
    loss: lossValue,
    scores,
    nextParameter,
    nextState,
    stateInputs,
    stateDims,
    statistics,
  };
}

/** The name standing for the flat vector of the parameters updated together; its state is `<name>::exp_avg` and so on. */
export const FLAT_PARAMETERS = 'teardown::parameters';

/**
 * A parameter with at least this many elements is updated on its own, never flattened: copying it
 * into the flat vector and back (its value and gradient in, its update out) costs more than the
 * ~14 op dispatches its own update adds (~5 µs each, about the time of copying 2¹⁸ floats).
 */
export const OWN_UPDATE_ELEMENTS = 1 << 18;

/**
 * The optimizer updates. A parameter whose SGD momentum folds into its gradient's Gemm
 * (gemmAccumulator), or with OWN_UPDATE_ELEMENTS or more elements, is updated on its own; all
 * others together, as one flat vector, as PyTorch's multi-tensor ("foreach") optimizers do: their
 * values and gradients flattened and concatenated, one update over the vector (its state flat
 * too), the vector split back into parameters. Every element sees the same arithmetic either way;
 * onnxruntime runs ~14 update ops for all the small parameters together instead of ~14 for each
 * (an MLP's step is a few ms), and no large parameter is copied (GPT-2-small's 162.5M elements
 * flattened took 0.5–2.3 s of copies a step).
 */
function emitUpdates(
  emitter: Emitter,
  optimizer: OptimizerSpec,
  parameters: string[],
  gradients: string[],
  dimsOf: (name: string) => number[],
  gemms: { accumulate: Accumulate; folds: (gradient: string) => boolean },
) {
  const nextParameter = new Map<string, string>();
  const nextState = new Map<string, string>();
  const stateDims = new Map<string, number[]>();
  /** Updates `value` (a parameter, or the flat vector) whose state is named after `name`; returns its next value. */
  const update = (
    name: string,
    value: string,
    gradient: string,
    dims: number[],
    accumulate?: Accumulate,
  ) => {
    const state = stateNames(optimizer, name);
    const [updated, ...updatedState] = emitUpdate(
      emitter,
      optimizer,
      value,
      gradient,
      state,
      accumulate,
      name,
    );
    state.forEach((stateName, s) => {
      nextState.set(stateName, updatedState[s]);
      stateDims.set(stateName, dims);
    });
    return updated;
  };
  // Two or more small parameters whose update folds into no Gemm go together; every other one alone.
  const folds = (k: number) =>
    optimizer.kind === 'sgd' && optimizer.momentum > 0 && gemms.folds(gradients[k]);
  const small = (k: number) =>
    dimsOf(parameters[k]).reduce((a, b) => a * b, 1) < OWN_UPDATE_ELEMENTS;
  const flattened = [...parameters.keys()].filter((k) => !folds(k) && small(k));
  const together = flattened.length > 1 ? flattened : [];
  parameters.forEach((parameter, k) => {
    if (!together.includes(k))
      nextParameter.set(
        parameter,
        update(parameter, parameter, gradients[k], dimsOf(parameter), gemms.accumulate),
      );
  });
  if (together.length > 0) {
    const hint = `teardown/optimizer/${FLAT_PARAMETERS}`;
    const sizes = together.map((k) => dimsOf(parameters[k]).reduce((a, b) => a * b, 1));
    const isVector = (k: number) => dimsOf(parameters[k]).length === 1;
    const flat = (names: string[]) =>
      emitter.op(
        'Concat',
        names.map((name, i) =>
          isVector(together[i])
            ? name
            : emitter.op('Reshape', [name, emitter.int64s([-1])], {}, hint),
        ),
        { axis: int(0) },
        hint,
      );
    const updated = update(
      FLAT_PARAMETERS,
      flat(together.map((k) => parameters[k])),
      flat(together.map((k) => gradients[k])),
      [sizes.reduce((a, b) => a + b, 0)],
    );
    const parts = emitter.opN(
      'Split',
      [updated, emitter.int64s(sizes)],
      { axis: int(0) },
      hint,
      together.length,
    );
    together.forEach((k, i) =>
      nextParameter.set(
        parameters[k],
        isVector(k)
          ? parts[i]
          : emitter.op('Reshape', [parts[i], emitter.int64s(dimsOf(parameters[k]))], {}, hint),
      ),
    );
  }
  return { nextParameter, nextState, stateDims };
}

/** The gradients scaled by min(1, max_norm / (‖g‖₂ + 10⁻⁶)), ‖g‖₂ over all of them together. */
function clip(emitter: Emitter, gradients: string[], clipNorm: number): string[] {
  const hint = 'teardown/clip';
  const squares = gradients.map((gradient) =>
    emitter.op('ReduceSumSquare', [gradient], { keepdims: int(0) }, hint),
  );
  const norm = emitter.op(
    'Sqrt',
    [emitter.op('Sum', squares, {}, hint)],
    {},
    hint,
    'teardown::gradient_norm',
  );
  const coefficient = emitter.op(
    'Min',
    [
      emitter.op(
        'Div',
        [
          emitter.scalar(clipNorm, 'float32'),
          emitter.op('Add', [norm, emitter.scalar(1e-6, 'float32')], {}, hint),
        ],
        {},
        hint,
      ),
      emitter.scalar(1, 'float32'),
    ],
    {},
    hint,
  );
  return gradients.map((gradient) => emitter.op('Mul', [gradient, coefficient], {}, hint));
}

/**
 * Folds an update of the form state' = β·state + g into the Gemm that makes g, where g comes
 * from a two-input Gemm (through the Identity that names it `<parameter>_grad`) and nothing else
 * reads it: Gemm computes α·A·B + β·C, so with C = state it yields state' in the same pass, instead
 * of a product, a scaling and a sum each over the whole weight (SGD's momentum buffer of a Gemm
 * layer's weight). A gradient has its parameter's shape, as does the state: C needs no broadcasting.
 * `nodes()` is the node list with the fused Gemms and without the Identities they made unread.
 */
function gemmAccumulator(
  backwardNodes: readonly NodeProto[],
  emitter: Emitter,
): { accumulate: Accumulate; folds: (gradient: string) => boolean; nodes: () => NodeProto[] } {
  const nodes: (NodeProto | undefined)[] = [...backwardNodes];
  const producer = new Map(
    nodes.flatMap((node, i) => node!.output.map((output) => [output, i] as const)),
  );
  const reads = new Map<string, number>();
  for (const node of [...backwardNodes, ...emitter.nodes])
    for (const input of node.input) reads.set(input, (reads.get(input) ?? 0) + 1);
  /** The two-input Gemm making `gradient`, directly or through an Identity, when nothing else reads what it makes. */
  const gemmOf = (gradient: string) => {
    if (reads.has(gradient)) return undefined;
    const identity = nodes[producer.get(gradient) ?? -1];
    const source =
      identity?.opType === 'Identity' && reads.get(identity.input[0]) === 1
        ? identity.input[0]
        : gradient;
    const i = producer.get(source);
    return i !== undefined && nodes[i]?.opType === 'Gemm' && nodes[i]!.input.length === 2
      ? { i, source }
      : undefined;
  };
  const accumulate: Accumulate = (gradient, state, beta) => {
    const found = gemmOf(gradient);
    if (!found) return undefined;
    const gemm = nodes[found.i]!;
    const next = emitter.fresh(`${state}/next`);
    nodes[found.i] = derive(gemm, {
      input: [...gemm.input, state],
      output: [next],
      attribute: [
        ...gemm.attribute.filter((a) => a.name !== 'beta'),
        makeAttribute('beta', float(beta)),
      ],
    });
    if (found.source !== gradient) nodes[producer.get(gradient)!] = undefined;
    reads.set(gradient, 1);
    return next;
  };
  return {
    accumulate,
    folds: (gradient) => gemmOf(gradient) !== undefined,
    nodes: () => nodes.filter((node) => node !== undefined),
  };
}

/** The loss graph with every BatchNormalization normalising by batch statistics (batch-norm.ts). */
async function withTrainingBatchNorm(
  model: Model,
  proto: ModelProto,
  feeds: Feeds,
): Promise<{ proto: ModelProto; statistics: BatchStatistics[] }> {
  if (!proto.graph.node.some((node) => node.opType === 'BatchNormalization'))
    return { proto, statistics: [] };
  const shapes = await probeValueShapes(model, modelFeeds(model, feeds));
  const index = new GraphIndex(proto);
  const emitter = Emitter.forGraph(index);
  const { nodes, statistics } = batchNormForTraining(proto.graph.node, emitter, (value) =>
    shapes.get(value)!,
  );
  const graph = derive(proto.graph, { node: nodes });
  return { proto: derive(proto, { graph }), statistics };
}
