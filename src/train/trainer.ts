/**
 * The training loop: a pure function of its spec (spec.ts). Consecutive steps run together in one
 * onnxruntime run of the step loop (stepper.ts); batches are drawn from a permutation of the
 * training set seeded by (seed, epoch), so the same spec and thread count give the same losses
 * bit for bit, also across a checkpoint and --resume.
 */
import { InputError } from '../errors.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { loadTask, permutation, takeRows, type Task } from '../data/tasks.ts';
import { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { hashIndex } from '../random.ts';
import { trackProgress, type ProgressOptions } from '../progress.ts';
import type { Tensor } from '../tensor.ts';
import { Evaluator, logOf, scoreRows } from './evaluate.ts';
import { examplesInput, loadStartingModel, trainingSource, type TrainingSource } from './source.ts';
import { loadExtraInputs } from './extra-inputs.ts';
import { learningRate } from './schedule.ts';
import { checkSpec, type TrainSpec } from './spec.ts';
import { TRAIN_SPEC_KEY } from './read-spec.ts';
import { Stepper, type StepState } from './stepper.ts';
import { objectiveInputs, taskOptionsFor, type Objective } from './objective.ts';
import { predictClasses } from './evaluate.ts';

export interface CurvePoint {
  step: number;
  lr: number;
  /** Mean loss and accuracy over the training batches since the previous point. */
  batchLoss: number;
  batchAccuracy: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
}

export interface TrainState extends StepState {
  step: number;
  curve: CurvePoint[];
  secondsBefore: number;
}

export interface TrainResult {
  spec: TrainSpec;
  task: Task;
  model: ModelProto;
  curve: CurvePoint[];
  steps: number;
  seconds: number;
  final: CurvePoint;
}

/** What a checkpoint holds: every float tensor of the saved model by name, the optimizer state and the loop's position. */
export interface ResumeState {
  step: number;
  values: Map<string, Tensor>;
  optimizerState: Map<string, Tensor>;
  curve: CurvePoint[];
  secondsBefore: number;
}

/** `onProgress` hears every step; `signal` is checked between steps (an aborted run rejects, writing nothing). */
export interface TrainOptions extends ProgressOptions {
  runtime: RuntimeOptions;
  /** Called every `checkpointEvery` steps with the state to save. */
  checkpoint?: (state: TrainState, model: ModelProto) => void;
  checkpointEvery?: number;
  /** Called with each curve point (e.g. to log progress where no progress bar shows). */
  onEvaluation?: (point: CurvePoint, totalSteps: number) => void;
  resume?: ResumeState;
  /** Most steps per onnxruntime run (default MAX_STEPS_PER_RUN); results do not depend on it. */
  stepsPerRun?: number;
}

export async function train(spec: TrainSpec, options: TrainOptions): Promise<TrainResult> {
  checkSpec(spec);
  const task = loadTask(spec.task, taskOptionsFor(spec.task, spec.taskOptions, spec.objective));
  const source = await trainingSource(spec, task, options.runtime);
  try {
    return await trainFrom(source, spec, task, options);
  } finally {
    await source.release();
  }
}

async function trainFrom(
  source: TrainingSource,
  spec: TrainSpec,
  task: Task,
  options: TrainOptions,
): Promise<TrainResult> {
  const { model, inputName, lossPositions, extraInputs } = source;
  const trainRows = task.train.labels.dims[0];
  const batchSize = spec.batch === 'full' ? trainRows : Math.min(spec.batch, trainRows);
  const batchesPerEpoch = Math.ceil(trainRows / batchSize);
  const totalSteps = spec.steps ?? spec.epochs! * batchesPerEpoch;
  const batchRows = (step: number) => rowsOfStep(step, batchSize, batchesPerEpoch, trainRows, spec);

  const objective = objectiveInputs(
    spec.objective,
    task,
    spec.objective?.kind === 'jtt' ? await identificationErrors(spec, options) : undefined,
  );
  /** A step's feeds: the examples, the model's other inputs and the objective's per-row inputs for these training rows. */
  const feedsOf = (rows: number[], step: number) => ({
    [inputName]: takeRows(task.train.inputs, rows),
    ...extraInputs.feeds(task.train, rows),
    ...objective.feeds(rows, step),
  });
  const first = batchRows(1);
  const stepper = await Stepper.create(
    model,
    feedsOf(first, 1),
    takeRows(task.train.labels, first),
    {
      kind: 'cross-entropy',
      positions: lossPositions,
      sliceEarly: lossPositions === 'last',
      ...objective.loss,
    },
    spec.optimizer,
    spec.clipNorm,
    options.runtime,
    source.stepGraph,
  );
  const evaluator = await Evaluator.create(
    model,
    [...stepper.graph.parameters, ...stepper.bufferNames()],
    options.runtime,
    source.outputIsProbability,
    inputName,
  );
  const state: TrainState = {
    step: 0,
    ...stepper.initialState(model),
    curve: [],
    secondsBefore: 0,
  };
  if (options.resume) restore(state, options.resume);
  const started = Date.now();
  const progress = trackProgress('train', totalSteps, options);
  progress.tick(state.step);
  let window = { lossSum: 0, correct: 0, rows: 0 };
  const lastStepOfRun = runPlanner(
    spec,
    totalSteps,
    batchSize,
    batchesPerEpoch,
    trainRows,
    options,
    task.train.inputs.data.byteLength / trainRows,
  );
  try {
    while (state.step < totalSteps) {
      const first = state.step + 1;
      const run = Array.from({ length: lastStepOfRun(first) - first + 1 }, (_, k) => {
        const step = first + k;
        const rows = batchRows(step);
        const lr = learningRate(spec.lr, spec.schedule, step, totalSteps);
        return {
          feeds: feedsOf(rows, step),
          target: takeRows(task.train.labels, rows),
          lr,
          t: step,
        };
      });
      const results = await stepper.steps(state, run);
      for (const [k, result] of results.entries()) {
        const { target, lr, t: step } = run[k];
        const scored = scoreRows(
          source.outputIsProbability ? logOf(result.scores) : result.scores,
          target,
          lossPositions,
        );
        if (!Number.isFinite(scored.lossSum))
          throw divergedAt(
            step,
            `the loss is ${scored.lossSum}`,
            lr,
            options.checkpoint !== undefined,
          );
        window = {
          lossSum: window.lossSum + scored.lossSum,
          correct: window.correct + scored.correct,
          rows: window.rows + scored.rows,
        };
        state.step = step;
        // Runs end at evaluations and checkpoints (runPlanner), so the state here is the state after `step`.
        if (step % spec.evalEvery === 0 || step === totalSteps) {
          const seconds = state.secondsBefore + (Date.now() - started) / 1000;
          const values = new Map([...state.parameters, ...state.buffers]);
          const [onTrain, onTest] = [
            await evaluator.evaluate(values, task.train, lossPositions, extraInputs.feeds),
            await evaluator.evaluate(values, task.test, lossPositions, extraInputs.feeds),
          ];
          state.curve.push({
            step,
            lr,
            batchLoss: window.lossSum / window.rows,
            batchAccuracy: window.correct / window.rows,
            trainLoss: onTrain.loss,
            trainAccuracy: onTrain.accuracy,
            testLoss: onTest.loss,
            testAccuracy: onTest.accuracy,
            seconds,
          });
          options.onEvaluation?.(state.curve[state.curve.length - 1], totalSteps);
          window = { lossSum: 0, correct: 0, rows: 0 };
        }
        if (
          options.checkpoint &&
          options.checkpointEvery &&
          step % options.checkpointEvery === 0 &&
          step < totalSteps
        ) {
          if (!weightsFinite(state))
            throw divergedAt(step, 'the weights hold NaN or ±Inf', lr, true);
          options.checkpoint(
            { ...state, secondsBefore: state.secondsBefore + (Date.now() - started) / 1000 },
            trainedModel(source, state, spec, 'with timings'),
          );
        }
        const last = state.curve[state.curve.length - 1];
        progress.tick(
          1,
          `loss ${(scored.lossSum / scored.rows).toFixed(4)}${last ? ` test acc ${(100 * last.testAccuracy).toFixed(1)}%` : ''}`,
        );
      }
    }
    progress.finish();
  } finally {
    await stepper.release();
    await evaluator.release();
  }
  if (!weightsFinite(state))
    throw divergedAt(
      totalSteps,
      'the weights hold NaN or ±Inf',
      learningRate(spec.lr, spec.schedule, totalSteps, totalSteps),
      options.checkpoint !== undefined,
    );
  const seconds = state.secondsBefore + (Date.now() - started) / 1000;
  return {
    spec,
    task,
    model: trainedModel(source, state, spec),
    curve: state.curve,
    steps: totalSteps,
    seconds,
    final: state.curve[state.curve.length - 1],
  };
}

/** Most steps one onnxruntime run takes, and most bytes of stacked batches it is fed (stepper.ts). */
export const MAX_STEPS_PER_RUN = 16;
const MAX_STACKED_BYTES = 32 * 2 ** 20;

/**
 * The last step of the run that starts at step `first`: up to MAX_STEPS_PER_RUN steps, ending at
 * every evaluation and checkpoint (so they see the state after their step) and at the end, and
 * never mixing batch shapes (an epoch's short last batch runs alone). Bytes per step are
 * estimated from a full batch of the training inputs.
 */
function runPlanner(
  spec: TrainSpec,
  totalSteps: number,
  batchSize: number,
  batchesPerEpoch: number,
  trainRows: number,
  options: TrainOptions,
  bytesPerRow: number,
): (first: number) => number {
  const stepsPerRun = Math.max(
    1,
    Math.min(
      options.stepsPerRun ?? MAX_STEPS_PER_RUN,
      Math.floor(MAX_STACKED_BYTES / (batchSize * bytesPerRow)),
    ),
  );
  const shortLastBatch = trainRows % batchSize !== 0;
  return (first) => {
    let last = Math.min(totalSteps, first + stepsPerRun - 1);
    for (const every of [spec.evalEvery, options.checkpointEvery])
      if (every) last = Math.min(last, Math.ceil(first / every) * every);
    if (shortLastBatch) {
      const epochEnd = Math.ceil(first / batchesPerEpoch) * batchesPerEpoch;
      last = first === epochEnd ? first : Math.min(last, epochEnd - 1);
    }
    return last;
  };
}

/** Just-Train-Twice's first stage: an ERM run of the spec for `identificationSteps`; which training examples it gets wrong. */
async function identificationErrors(spec: TrainSpec, options: TrainOptions): Promise<Uint8Array> {
  const objective = spec.objective as Extract<Objective, { kind: 'jtt' }>;
  const task = loadTask(spec.task, taskOptionsFor(spec.task, spec.taskOptions, spec.objective));
  // Fine-tuning with 0 identification steps: the starting model is the ERM model whose errors are up-weighted.
  const model =
    spec.from && objective.identificationSteps === 0
      ? loadStartingModel(spec.from.path, spec.from.sha256, options.runtime)
      : Model.fromProto(
          (
            await train(
              {
                ...spec,
                objective: undefined,
                steps: objective.identificationSteps,
                epochs: undefined,
                evalEvery: objective.identificationSteps,
              },
              { runtime: options.runtime, signal: options.signal },
            )
          ).model,
          'the identification model',
          options.runtime,
        );
  try {
    const extra = loadExtraInputs(spec.from?.inputs, task);
    const predictions = await predictClasses(
      model,
      task.train.inputs,
      examplesInput(model, extra),
      (indices) => extra.feeds(task.train, indices),
    );
    return Uint8Array.from(predictions, (predicted, i) =>
      predicted === Number(task.train.labels.data[i]) ? 0 : 1,
    );
  } finally {
    await model.release();
  }
}

/** Copies a checkpoint's position, weights, buffers and optimizer state into a fresh state. */
function restore(state: TrainState, saved: ResumeState): void {
  for (const map of [state.parameters, state.buffers])
    for (const name of map.keys()) map.set(name, saved.values.get(name)!);
  for (const name of state.optimizerState.keys()) {
    const value = saved.optimizerState.get(name);
    // Checkpoints from before the flat optimizer state (one state tensor per parameter) lack these names.
    if (!value)
      throw new InputError(
        `The checkpoint has no optimizer state '${name}' (it holds ${[...saved.optimizerState.keys()].join(', ') || 'none'}): it was written by another version of teardown; start the run again without --resume.`,
      );
    state.optimizerState.set(name, value);
  }
  Object.assign(state, {
    step: saved.step,
    curve: saved.curve,
    secondsBefore: saved.secondsBefore,
  });
}

/** Rows of the training set used at step t (1-based): a slice of the epoch's seeded permutation. */
function rowsOfStep(
  step: number,
  batchSize: number,
  batchesPerEpoch: number,
  trainRows: number,
  spec: TrainSpec,
): number[] {
  if (spec.batch === 'full') return [...Array(trainRows).keys()];
  const epoch = Math.floor((step - 1) / batchesPerEpoch);
  const position = (step - 1) % batchesPerEpoch;
  const order = epochOrder(trainRows, spec.seed, epoch);
  return order.slice(position * batchSize, (position + 1) * batchSize);
}

const orderCache = new Map<string, number[]>();
function epochOrder(rows: number, seed: number, epoch: number): number[] {
  const key = `${rows}|${seed}|${epoch}`;
  if (!orderCache.has(key)) {
    orderCache.clear();
    orderCache.set(key, permutation(rows, hashIndex(seed, epoch)));
  }
  return orderCache.get(key)!;
}

/**
 * The model with the trained values and the spec in its metadata (source.ts saves it). The
 * trained model holds no wall-clock time, so the same spec, seed and threads give the same bytes
 * (timings are in the TrainResult); a checkpoint keeps each curve point's seconds for --resume.
 */
function trainedModel(
  source: TrainingSource,
  state: TrainState,
  spec: TrainSpec,
  timings: 'with timings' | 'without timings' = 'without timings',
): ModelProto {
  const curve =
    timings === 'with timings'
      ? state.curve
      : state.curve.map(({ seconds: _seconds, ...point }) => point);
  return source.save(new Map([...state.parameters, ...state.buffers]), [
    { key: TRAIN_SPEC_KEY, value: JSON.stringify(spec) },
    { key: 'teardown.train_steps', value: String(state.step) },
    { key: 'teardown.train_curve', value: JSON.stringify(curve) },
  ]);
}

/** Every float weight and buffer finite (checked before a checkpoint and the final model are saved). */
function weightsFinite(state: TrainState): boolean {
  for (const map of [state.parameters, state.buffers]) {
    for (const value of map.values()) {
      if (
        (value.dtype === 'float32' || value.dtype === 'float64') &&
        !(value.data as Float32Array).every(Number.isFinite)
      )
        return false;
    }
  }
  return true;
}

/**
 * A step whose loss or weights are not finite (NaN or ±Inf) is not a model. The run stops with an
 * InputError (exit 2) and nothing is saved; the last checkpoint, written at an earlier step whose
 * weights were finite, stays as it was.
 */
function divergedAt(step: number, what: string, lr: number, checkpointed: boolean): InputError {
  return new InputError(
    `Training diverged at step ${step}: ${what} (learning rate ${lr}). Nothing was saved${checkpointed ? '; the last checkpoint, from an earlier step, is kept' : ''}. Lower --lr, clip gradients (--clip) or check the data for extreme values.`,
  );
}
