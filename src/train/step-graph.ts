/**
 * One training step as one ONNX graph: forward, loss, backward (autodiff/), optional gradient
 * clipping and the optimizer update (optimizers.ts). Parameters and optimizer state become graph
 * inputs, their updated values graph outputs, so one onnxruntime run is one step and the trainer
 * feeds each step's outputs back as the next step's inputs.
 *
 * Clipping follows torch.nn.utils.clip_grad_norm_: g ← g·min(1, max_norm / (‖g‖₂ + 10⁻⁶)) with
 * ‖g‖₂ over every parameter together.
 */
import { buildBackward } from '../autodiff/backward.ts';
import { Emitter } from '../autodiff/emitter.ts';
import { lossModelWithShapes, modelFeeds, parameterNames } from '../autodiff/gradients.ts';
import type { LossSpec } from '../autodiff/loss.ts';
import { int, valueInfo } from '../graph/builder.ts';
import { derive } from '../graph/edit.ts';
import { GraphIndex } from '../graph/graph.ts';
import { toNumber, type ModelProto } from '../onnx/proto.ts';
import type { Model } from '../runtime/model.ts';
import { probeValueShapes } from '../runtime/probe.ts';
import { defaultOpset } from '../onnx/model-file.ts';
import { batchNormForTraining, type BatchStatistics } from './batch-norm.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import { emitUpdate, stateNames, stepScalars, type OptimizerSpec } from './optimizers.ts';

export interface StepGraph {
  proto: ModelProto;
  parameters: string[];
  /** Graph outputs: the loss, the model's output (scores) and the global gradient norm (before clipping). */
  loss: string;
  scores: string;
  gradientNorm: string;
  /** Parameter → output holding its updated value. */
  nextParameter: Map<string, string>;
  /** State input name → output holding its updated value. */
  nextState: Map<string, string>;
  stateInputs: string[];
  /** BatchNorm running statistics to update from each step's batch statistics. */
  statistics: BatchStatistics[];
}

export async function buildStepGraph(model: Model, feeds: Feeds, target: Tensor, loss: LossSpec, optimizer: OptimizerSpec, clipNorm?: number): Promise<StepGraph> {
  let statistics: BatchStatistics[] = [];
  const { lossModel, loss: lossValue, scores, shapes } = await lossModelWithShapes(model, feeds, target, loss, async (proto) => {
    const training = await withTrainingBatchNorm(model, proto, feeds);
    statistics = training.statistics;
    return training.proto;
  });
  await lossModel.release();
  const parameters = parameterNames(model);
  const backward = buildBackward(lossModel.graph, shapes, { loss: lossValue, wrt: parameters });

  const index = new GraphIndex(backward.proto);
  const emitter = new Emitter(new Set([...index.valueNames(), ...index.initializerNames, ...index.nodes.map((node) => node.name)]), new Map(index.elementTypes));
  const gradients = parameters.map((parameter) => backward.gradientOf.get(parameter)!);
  const hint = 'teardown/clip';
  const squares = gradients.map((gradient) => emitter.op('ReduceSum', [emitter.op('Mul', [gradient, gradient], {}, hint)], { keepdims: int(0) }, hint));
  const gradientNorm = emitter.op('Sqrt', [emitter.op('Sum', squares, {}, hint)], {}, hint, 'teardown::gradient_norm');
  const clipped = clipNorm === undefined ? gradients : (() => {
    const coefficient = emitter.op('Min', [emitter.op('Div', [emitter.scalar(clipNorm, 'float32'), emitter.op('Add', [gradientNorm, emitter.scalar(1e-6, 'float32')], {}, hint)], {}, hint), emitter.scalar(1, 'float32')], {}, hint);
    return gradients.map((gradient) => emitter.op('Mul', [gradient, coefficient], {}, hint));
  })();

  const nextParameter = new Map<string, string>();
  const nextState = new Map<string, string>();
  const stateInputs: string[] = [];
  parameters.forEach((parameter, k) => {
    const state = stateNames(optimizer, parameter);
    const [updated, ...updatedState] = emitUpdate(emitter, optimizer, parameter, clipped[k], state);
    nextParameter.set(parameter, updated);
    state.forEach((name, s) => { nextState.set(name, updatedState[s]); stateInputs.push(name); });
  });

  // Parameters move from initializers to inputs; state and per-step scalars are new inputs.
  const graph = backward.proto.graph;
  const isParameter = new Set(parameters);
  const dims = new Map(graph.initializer.map((tensor) => [tensor.name, tensor.dims.map(toNumber)]));
  const parameterDims = (name: string) => dims.get(name) ?? (shapes.get(name) as number[]);
  const inputs = [
    ...graph.input,
    ...parameters.map((name) => valueInfo(name, 'float32', parameterDims(name))),
    ...parameters.flatMap((name) => stateNames(optimizer, name).map((state) => valueInfo(state, 'float32', parameterDims(name)))),
    ...stepScalars(optimizer).map((name) => valueInfo(name, 'float32', [])),
  ];
  const statisticsOutputs = statistics.flatMap((statistic) => [statistic.batchMean, statistic.batchVar]);
  const outputs = [lossValue, scores, gradientNorm, ...nextParameter.values(), ...nextState.values(), ...statisticsOutputs].map((name) => valueInfo(name, 'float32'));
  // A parameter copy (PyTorch's merged parameters) is produced by an Identity node: as an input, that node must go.
  const nodes = [...graph.node.filter((node) => !(node.opType === 'Identity' && isParameter.has(node.output[0]))), ...emitter.nodes];
  const proto = derive(backward.proto, {
    graph: derive(graph, { node: nodes, input: inputs, output: outputs, initializer: [...graph.initializer.filter((tensor) => !isParameter.has(tensor.name)), ...emitter.initializers] }),
  });
  return { proto, parameters, loss: lossValue, scores, gradientNorm, nextParameter, nextState, stateInputs, statistics };
}

/** The loss graph with every BatchNormalization normalising by batch statistics (batch-norm.ts). */
async function withTrainingBatchNorm(model: Model, proto: ModelProto, feeds: Feeds): Promise<{ proto: ModelProto; statistics: BatchStatistics[] }> {
  if (!proto.graph.node.some((node) => node.opType === 'BatchNormalization')) return { proto, statistics: [] };
  const shapes = await probeValueShapes(model, modelFeeds(model, feeds));
  const index = new GraphIndex(proto);
  const emitter = new Emitter(new Set([...index.valueNames(), ...index.initializerNames, ...index.nodes.map((node) => node.name)]), new Map(index.elementTypes));
  const { nodes, statistics } = batchNormForTraining(proto.graph.node, emitter, (value) => shapes.get(value)!, defaultOpset(proto));
  // Nodes still in the emitter (the flattened statistics) go last; the running statistics stay initializers, now unread.
  const graph = derive(proto.graph, { node: [...nodes, ...emitter.nodes], initializer: [...proto.graph.initializer, ...emitter.initializers] });
  return { proto: derive(proto, { graph }), statistics };
}
