/**
 * Optimizer steps as onnxruntime runs of the step loop (step-loop.ts): one run takes the
 * parameters and optimizer state, any number of steps' batches, targets and per-step scalars
 * stacked, and gives back the updated parameters and state and what each step reported. Every
 * step runs the same body graph, so results do not depend on how steps are grouped into runs.
 */
import { tensorFromProto } from '../onnx/tensor-proto.ts';
import { TARGET_INPUT, type LossSpec } from '../autodiff/loss.ts';
import type { Model } from '../runtime/model.ts';
import { openSession, type RuntimeOptions, type Session } from '../runtime/session.ts';
import { stack, tensor, unstack, type Feeds, type Tensor } from '../tensor.ts';
import { scalarValues, type OptimizerSpec } from './optimizers.ts';
import { buildStepGraph, type StepGraph, type StepGraphOptions } from './step-graph.ts';
import { buildStepLoop, type StepLoop } from './step-loop.ts';
import { updateRunningStatistics } from './batch-norm.ts';

export interface StepState {
  parameters: Map<string, Tensor>;
  optimizerState: Map<string, Tensor>;
  /** Non-trained state: BatchNorm running statistics, updated from batch statistics. */
  buffers: Map<string, Tensor>;
}

export interface StepBatch {
  feeds: Feeds;
  target: Tensor;
  lr: number;
  /** The step's number, 1-based (AdamW's bias corrections depend on it). */
  t: number;
}

export interface StepResult {
  loss: number;
  /** The model's output for the batch. */
  scores: Tensor;
}

export class Stepper {
  /** The stacked inputs of the previous run, whose buffers the next run reuses (onnxruntime is done with them). */
  private readonly stacked = new Map<string, Tensor>();

  private constructor(
    readonly graph: StepGraph,
    private readonly loop: StepLoop,
    private readonly session: Session,
    private readonly optimizer: OptimizerSpec,
  ) {}

  /** Builds the step graph for batches shaped like `feeds` and `target`. */
  static async create(
    model: Model,
    feeds: Feeds,
    target: Tensor,
    loss: LossSpec,
    optimizer: OptimizerSpec,
    clipNorm: number | undefined,
    runtime: RuntimeOptions,
    options: StepGraphOptions = {},
  ): Promise<Stepper> {
    const graph = await buildStepGraph(model, feeds, target, loss, optimizer, clipNorm, options);
    const loop = buildStepLoop(graph);
    return new Stepper(
      graph,
      loop,
      await openSession(loop.proto, runtime, 'the training step loop'),
      optimizer,
    );
  }

  /** The model's parameters as initialised, and zero optimizer state. */
  initialState(model: Model): StepState {
    const initializers = new Map(model.proto.graph.initializer.map((t) => [t.name, t]));
    const copies = new Map(
      model.graph.nodes
        .filter((node) => node.opType === 'Identity')
        .map((node) => [node.output[0], node.input[0]]),
    );
    const parameters = new Map(
      this.graph.parameters.map((name) => [
        name,
        tensorFromProto(initializers.get(name) ?? initializers.get(copies.get(name)!)!),
      ]),
    );
    const optimizerState = new Map(
      this.graph.stateInputs.map((name) => [
        name,
        tensor('float32', this.graph.stateDims.get(name)!),
      ]),
    );
    const buffers = new Map(
      this.bufferNames().map((name) => [name, tensorFromProto(initializers.get(name)!)]),
    );
    return { parameters, optimizerState, buffers };
  }

  /** Names of the running statistics the steps update. */
  bufferNames(): string[] {
    return this.graph.statistics.flatMap((statistic) => [
      statistic.runningMean,
      statistic.runningVar,
    ]);
  }

  /** One step: updates `state` in place. */
  async step(
    state: StepState,
    feeds: Feeds,
    target: Tensor,
    lr: number,
    t: number,
  ): Promise<StepResult> {
    return (await this.steps(state, [{ feeds, target, lr, t }]))[0];
  }

  /** Consecutive steps in one onnxruntime run (their batches must have one shape): updates `state` in place. */
  async steps(state: StepState, batches: readonly StepBatch[]): Promise<StepResult[]> {
    const { graph, loop } = this;
    const perStep = batches.map(({ feeds, target, lr, t }): Feeds => ({
      ...feeds,
      [TARGET_INPUT]: target,
      ...Object.fromEntries(
        Object.entries(scalarValues(this.optimizer, lr, t)).map(([name, value]) => [
          name,
          tensor('float32', [], [value]),
        ]),
      ),
    }));
    const feeds: Feeds = {};
    for (const [name, input] of loop.stacked) {
      feeds[input] = stack(
        perStep.map((values) => values[name]),
        this.stacked.get(input),
      );
      this.stacked.set(input, feeds[input]);
    }
    for (const [name, value] of [...state.parameters, ...state.optimizerState])
      feeds[loop.initial.get(name)!] = value;
    const outputs = await this.session.run(feeds);

    for (const name of state.parameters.keys())
      state.parameters.set(name, outputs[loop.final.get(name)!]);
    for (const name of state.optimizerState.keys())
      state.optimizerState.set(name, outputs[loop.final.get(name)!]);
    const reported = (name: string, k: number) => unstack(outputs[loop.perStep.get(name)!], k);
    return batches.map(({ feeds: stepFeeds }, k) => {
      const batch = Object.values(stepFeeds)[0].dims[0];
      for (const statistic of graph.statistics) {
        const running = {
          mean: state.buffers.get(statistic.runningMean)!,
          var: state.buffers.get(statistic.runningVar)!,
        };
        updateRunningStatistics(
          running,
          reported(statistic.batchMean, k),
          reported(statistic.batchVar, k),
          batch * statistic.perExample,
        );
      }
      return { loss: Number(reported(graph.loss, k).data[0]), scores: reported(graph.scores, k) };
    });
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
