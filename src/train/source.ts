/**
 * Where a training run starts: a model teardown builds from its spec (`--model`, initialised by
 * the seed), or an existing ONNX model fine-tuned from its weights (`--from`, foreign.ts). Either
 * way the trainer gets the graph it trains, the input the task's examples feed, the values it
 * trains and how the trained model is saved.
 */
import { builtByTeardown, InputError } from '../errors.ts';
import type { Task } from '../data/tasks.ts';
import { takeRows } from '../data/tasks.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { tensorToProto } from '../onnx/tensor-proto.ts';
import { derive } from '../graph/edit.ts';
import { Model } from '../runtime/model.ts';
import { run } from '../runtime/run.ts';
import { normalizedOutput } from '../autodiff/loss.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { shapeString, type Tensor } from '../tensor.ts';
import { buildModel } from './builders.ts';
import { loadExtraInputs, NO_EXTRA_INPUTS, type ExtraInputs } from './extra-inputs.ts';
import { fineTunedModel } from './fine-tune.ts';
import { fineTuningPlan, type FineTuningPlan } from './foreign.ts';
import { parseModelSpec } from './model-spec.ts';
import type { TrainSpec } from './spec.ts';
import type { StepGraphOptions } from './step-graph.ts';

export interface TrainingSource {
  /** The graph trained (for a fine-tuning, tied copies computed from their source). */
  model: Model;
  /** The input the task's examples feed. */
  inputName: string;
  /** The model's other inputs, read for the same rows (fine-tuning with --input). */
  extraInputs: ExtraInputs;
  /** Where the loss is scored: every position, or a sequence's last. */
  lossPositions: 'all' | 'last';
  /** The output is a Softmax's probabilities (the loss takes the logits before it, autodiff/loss.ts). */
  outputIsProbability: boolean;
  stepGraph: StepGraphOptions;
  /** The model to save, given the trained values and the metadata to record. */
  save(values: ReadonlyMap<string, Tensor>, metadata: { key: string; value: string }[]): ModelProto;
  /** For a fine-tuning: what trains and what stays frozen. */
  plan?: FineTuningPlan;
  release(): Promise<void>;
}

export async function trainingSource(
  spec: TrainSpec,
  task: Task,
  runtime: RuntimeOptions,
): Promise<TrainingSource> {
  if (!spec.from) return builtSource(spec, task, runtime);
  const original = loadStartingModel(spec.from.path, spec.from.sha256, runtime);
  try {
    const extraInputs = loadExtraInputs(spec.from.inputs, task);
    const inputName = examplesInput(original, extraInputs);
    const { positions, rank } = await checkTaskFits(original, task, inputName, extraInputs);
    const plan = fineTuningPlan(original, { train: spec.from.train, freeze: spec.from.freeze });
    const model = Model.fromProto(plan.proto, original.path, runtime);
    return {
      model,
      plan,
      inputName,
      extraInputs,
      lossPositions: positions,
      outputIsProbability:
        normalizedOutput(original.graph, original.outputNames[0], rank)?.op === 'Softmax',
      stepGraph: {
        parameters: plan.parameters.map((p) => p.initializer),
        batchNorm: 'running-statistics',
      },
      save: (values, metadata) => fineTunedModel(original.proto, plan, values, metadata),
      release: async () => {
        await model.release();
        await original.release();
      },
    };
  } catch (error) {
    await original.release();
    throw error;
  }
}

function builtSource(spec: TrainSpec, task: Task, runtime: RuntimeOptions): TrainingSource {
  const built = buildModel(parseModelSpec(spec.model), task.input, task.classes, spec.seed);
  const name = `${spec.model} on ${spec.task}`;
  const model = builtByTeardown(`the new model ${name}`, () =>
    Model.fromProto(built.proto, name, runtime),
  );
  return {
    model,
    inputName: 'input',
    extraInputs: NO_EXTRA_INPUTS,
    lossPositions: task.lossPositions,
    outputIsProbability: false,
    stepGraph: {},
    save: (values, metadata) => withValues(built.proto, values, metadata),
    release: () => model.release(),
  };
}

/** The forward model with trained values as initializers and the metadata, producer teardown. */
function withValues(
  forward: ModelProto,
  values: ReadonlyMap<string, Tensor>,
  metadata: { key: string; value: string }[],
): ModelProto {
  const initializer = forward.graph.initializer.map((t) =>
    values.has(t.name) ? tensorToProto(t.name, values.get(t.name)!) : t,
  );
  return derive(forward, {
    graph: derive(forward.graph, { initializer }),
    metadataProps: metadata,
    producerName: 'teardown',
  });
}

/** The model a fine-tuning starts from; when the spec recorded its sha256 (a checkpoint, a stored spec), the same file. */
export function loadStartingModel(
  path: string,
  sha256: string | undefined,
  runtime: RuntimeOptions,
): Model {
  const model = Model.load(path, runtime);
  if (model.proto.metadataProps.some((entry) => entry.key === 'teardown.checkpoint')) {
    void model.release();
    throw new InputError(
      `'${path}' is a teardown training checkpoint (it carries the optimizer's state): continue its run with --resume ${path}, or fine-tune the model saved with --out.`,
    );
  }
  if (sha256 && model.file.sha256 !== sha256) {
    throw new InputError(
      `The training spec fine-tunes '${path}' with sha256 ${sha256.slice(0, 12)}…, but that file now has ${model.file.sha256.slice(0, 12)}…: give the model the run started from (the spec's from.path).`,
    );
  }
  return model;
}

/** The one model input the task's examples feed: the input no --input names. */
export function examplesInput(model: Model, extra: ExtraInputs): string {
  const unknown = extra.names.filter((name) => !model.inputs.some((input) => input.name === name));
  if (unknown.length)
    throw new InputError(
      `--input ${unknown[0]}: '${model.path}' has no input of that name; its inputs are ${model.describeInputs()}.`,
    );
  const left = model.inputs.filter((input) => !extra.names.includes(input.name));
  if (left.length !== 1) {
    throw new InputError(
      left.length === 0
        ? `Every input of '${model.path}' is given with --input, leaving none for the task's examples: drop the --input of the one the task's data feeds.`
        : `The task's examples feed one input of '${model.path}', which has ${model.inputs.length} (${model.describeInputs()}): give each other input as --input NAME=FILE.npy with one row per row of the task's data (e.g. --input ${left[1].name}=FILE.npy).`,
    );
  }
  return left[0].name;
}

/**
 * The task's examples must be what the model reads and its labels classes it scores: the
 * examples' dtype and shape that of their input, an output whose last axis has at least as many
 * classes. Returns where the loss is scored — a sequence's last position when the labels are one
 * per sequence and the output is [batch, seq, classes], else every row — and the output's rank.
 */
async function checkTaskFits(
  model: Model,
  task: Task,
  inputName: string,
  extra: ExtraInputs,
): Promise<{ positions: 'all' | 'last'; rank: number }> {
  const examples = task.train.inputs;
  const input = model.inputs.find((candidate) => candidate.name === inputName)!;
  const feeds = { [inputName]: takeRows(examples, [0]), ...extra.feeds(task.train, [0]) };
  try {
    model.checkFeeds(feeds);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    throw new InputError(
      `Task '${task.name}' does not fit '${model.path}': its examples are ${examples.dtype} ${shapeString(examples.dims.slice(1))} each and input '${inputName}' reads ${input.dtype ?? input.typeName} ${input.dims ? shapeString(input.dims) : '[?]'}. ${error.message}`,
    );
  }
  const scores = (await run(model, feeds)).outputs[model.outputNames[0]];
  const classes = scores.dims.at(-1)!;
  if (scores.dtype !== 'float32' || scores.dims.length < 2)
    throw new InputError(
      `'${model.path}' outputs ${scores.dtype} ${shapeString(scores.dims)} for one example: fine-tuning with cross-entropy needs class scores [batch, classes] (or [batch, seq, classes]) as its first output.`,
    );
  if (classes < task.classes)
    throw new InputError(
      `Task '${task.name}' has labels 0..${task.classes - 1} but '${model.path}' scores ${classes} classes (its output is ${shapeString(scores.dims)} for one example): give data whose labels the model's classes cover.`,
    );
  return {
    positions: task.lossPositions === 'last' && scores.dims.length === 3 ? 'last' : 'all',
    rank: scores.dims.length,
  };
}
