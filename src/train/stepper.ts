/**
 * One optimizer step per onnxruntime run of the step graph (step-graph.ts): feeds the batch, the
 * target, the per-step scalars, the parameters and the optimizer state; takes the updated
 * parameters and state back.
 */
import { encodeModel } from '../onnx/proto.ts';
import { tensorFromProto } from '../onnx/tensor-proto.ts';
import { TARGET_INPUT, type LossSpec } from '../autodiff/loss.ts';
import type { Model } from '../runtime/model.ts';
import { Session, type RuntimeOptions } from '../runtime/session.ts';
import { tensor, type Feeds, type Tensor } from '../tensor.ts';
import { scalarValues, type OptimizerSpec } from './optimizers.ts';
import { buildStepGraph, type StepGraph } from './step-graph.ts';
import { updateRunningStatistics } from './batch-norm.ts';

export interface StepState {
  parameters: Map<string, Tensor>;
  optimizerState: Map<string, Tensor>;
  /** Non-trained state: BatchNorm running statistics, updated from batch statistics. */
  buffers: Map<string, Tensor>;
}

export class Stepper {
  private constructor(readonly graph: StepGraph, private readonly session: Session, private readonly optimizer: OptimizerSpec) {}

  /** Builds the step graph for batches shaped like `feeds` and `target`. */
  static async create(model: Model, feeds: Feeds, target: Tensor, loss: LossSpec, optimizer: OptimizerSpec, clipNorm: number | undefined, runtime: RuntimeOptions): Promise<Stepper> {
    const graph = await buildStepGraph(model, feeds, target, loss, optimizer, clipNorm);
    return new Stepper(graph, await Session.create(encodeModel(graph.proto), runtime, 'the training step graph'), optimizer);
  }

  /** The model's parameters as initialised, and zero optimizer state. */
  initialState(model: Model): StepState {
    const initializers = new Map(model.proto.graph.initializer.map((t) => [t.name, t]));
    const copies = new Map(model.graph.nodes.filter((node) => node.opType === 'Identity').map((node) => [node.output[0], node.input[0]]));
    const parameters = new Map(this.graph.parameters.map((name) => [name, tensorFromProto(initializers.get(name) ?? initializers.get(copies.get(name)!)!)]));
    const optimizerState = new Map(this.graph.stateInputs.map((name) => [name, tensor('float32', parameters.get(name.slice(0, name.indexOf('::')))!.dims)]));
    const buffers = new Map(this.bufferNames().map((name) => [name, tensorFromProto(initializers.get(name)!)]));
    return { parameters, optimizerState, buffers };
  }

  /** Names of the running statistics the steps update. */
  bufferNames(): string[] {
    return this.graph.statistics.flatMap((statistic) => [statistic.runningMean, statistic.runningVar]);
  }

  /** Step t (1-based) with learning rate lr: updates `state` in place; returns the batch loss and the model's scores. */
  async step(state: StepState, feeds: Feeds, target: Tensor, lr: number, t: number): Promise<{ loss: number; scores: Tensor; gradientNorm: number }> {
    const scalars = Object.fromEntries(Object.entries(scalarValues(this.optimizer, lr, t)).map(([name, value]) => [name, tensor('float32', [], [value])]));
    const graph = this.graph;
    const outputs = await this.session.run({
      ...feeds, [TARGET_INPUT]: target, ...scalars,
      ...Object.fromEntries(state.parameters), ...Object.fromEntries(state.optimizerState),
    }, [graph.loss, graph.scores, graph.gradientNorm, ...graph.nextParameter.values(), ...graph.nextState.values(), ...graph.statistics.flatMap((s) => [s.batchMean, s.batchVar])]);
    for (const [parameter, output] of graph.nextParameter) state.parameters.set(parameter, outputs[output]);
    for (const [name, output] of graph.nextState) state.optimizerState.set(name, outputs[output]);
    const batch = Object.values(feeds)[0].dims[0];
    for (const statistic of graph.statistics) {
      const running = { mean: state.buffers.get(statistic.runningMean)!, var: state.buffers.get(statistic.runningVar)! };
      updateRunningStatistics(running, outputs[statistic.batchMean], outputs[statistic.batchVar], batch * statistic.perExample);
    }
    return { loss: Number(outputs[graph.loss].data[0]), scores: outputs[graph.scores], gradientNorm: Number(outputs[graph.gradientNorm].data[0]) };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
