/**
 * The one reader of training specs. Every way a spec reaches teardown — the train command's flags,
 * the library's train(), a --train-spec file, the metadata of a trained model or a checkpoint, the
 * demo — goes through completeSpec: the defaults filled in, `labels` folded into an npy: task, and
 * the whole checked by checkSpec, so a spec means the same thing wherever it comes from.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.ts';
import { requireFile } from '../files.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { OptimizerSpec } from './optimizers.ts';
import type { Schedule } from './schedule.ts';
import { checkSpec, DEFAULT_OPTIMIZER, type TrainSpec } from './spec.ts';

/** The metadata key under which a trained model (and a checkpoint) carries its spec. */
export const TRAIN_SPEC_KEY = 'teardown.train_spec';

/**
 * What a spec may leave out, and its value then (the train command's flag defaults): AdamW at
 * lr 0.001, no warm-up nor decay, batches of 64, seed 0, an evaluation every 100 steps.
 */
export const TRAIN_DEFAULTS = {
  lr: 0.001,
  schedule: { warmupSteps: 0, cosine: false } as Schedule,
  batch: 64 as number | 'full',
  seed: 0,
  evalEvery: 100,
} as const;

/**
 * A spec where everything but the task and the model may be left to TRAIN_DEFAULTS (the optimizer
 * and the schedule key by key). `labels`: the labels file of an `npy:INPUTS.npy` task (the same
 * as `npy:INPUTS.npy,LABELS.npy`).
 */
export type TrainSpecInput = Pick<TrainSpec, 'task' | 'model'> &
  Partial<Omit<TrainSpec, 'task' | 'model' | 'optimizer' | 'schedule'>> & {
    optimizer?: Partial<OptimizerSpec>;
    schedule?: Partial<Schedule>;
    labels?: string;
  };

const OPTIMIZER_KINDS: readonly string[] = ['sgd', 'adamw'];

/** The full spec: defaults filled in, labels folded into the task, checked (checkSpec). */
export function completeSpec(input: TrainSpecInput): TrainSpec {
  const { labels, ...given } = input;
  // Keys keep the order they were given in (a stored spec reads as it was written); missing
  // ones follow.
  const spec = { ...given } as TrainSpec;
  spec.task = taskWithLabels(given.task, labels);
  spec.taskOptions = { ...given.taskOptions };
  spec.optimizer = { ...DEFAULT_OPTIMIZER, ...definedOnly(given.optimizer) };
  spec.lr = given.lr ?? TRAIN_DEFAULTS.lr;
  spec.schedule = { ...TRAIN_DEFAULTS.schedule, ...definedOnly(given.schedule) };
  spec.batch = given.batch ?? TRAIN_DEFAULTS.batch;
  spec.seed = given.seed ?? TRAIN_DEFAULTS.seed;
  spec.evalEvery = given.evalEvery ?? TRAIN_DEFAULTS.evalEvery;
  if (!OPTIMIZER_KINDS.includes(spec.optimizer.kind)) {
    throw new InputError(`--optimizer must be sgd or adamw, got '${spec.optimizer.kind}'.`);
  }
  checkSpec(spec);
  return spec;
}

/**
 * `npy:INPUTS.npy` with a separate labels file (--labels) is `npy:INPUTS.npy,LABELS.npy`, the form
 * the spec stores; the labels are then read and checked by the task's reader (data/user-tasks.ts,
 * data/validate.ts's label rule) like those named in the task.
 */
export function taskWithLabels(task: string, labels: string | undefined): string {
  if (!task.startsWith('npy:')) {
    if (labels === undefined) return task;
    const own = task.startsWith('csv:')
      ? 'a csv: task reads them from its --label-column'
      : `task '${task}' brings its own`;
    throw new InputError(
      `--labels '${labels}' gives the labels of an npy:INPUTS.npy task; ${own}: drop --labels.`,
    );
  }
  const files = task.slice('npy:'.length).split(',');
  if (labels === undefined) {
    if (files.length === 1) {
      throw new InputError(
        `Task '${task}' needs the labels of its examples: give --labels LABELS.npy (or the task npy:INPUTS.npy,LABELS.npy).`,
      );
    }
    return task;
  }
  if (files.length !== 1) {
    throw new InputError(
      `Task '${task}' names its labels file already; --labels '${labels}' gives another: give the labels once, in the task or with --labels.`,
    );
  }
  if (!labels)
    throw new InputError(
      '--labels expects a file (LABELS.npy: one integer class per example), got an empty name.',
    );
  return `${task},${labels}`;
}

/**
 * A spec given as JSON (a --train-spec file, a model's metadata): an object with at least the task
 * and the model, or a result of `teardown train --json` that holds one under `spec`.
 */
export function parseTrainSpec(json: unknown, source: string): TrainSpec {
  const value = isObject(json) && isObject(json.spec) ? json.spec : json;
  if (!isObject(value))
    throw new InputError(
      `${source} is not a training spec: expected a JSON object with "task" and "model" (docs/json.md, teardown train), got ${describe(value)}.`,
    );
  for (const key of ['task', 'model'] as const) {
    if (typeof value[key] !== 'string' || !value[key])
      throw new InputError(
        `${source}: "${key}" must be a non-empty string (e.g. "task": "mnist", "model": "mlp:hidden=64"), got ${describe(value[key])}.`,
      );
  }
  for (const key of ['taskOptions', 'optimizer', 'schedule', 'from', 'objective'] as const) {
    if (value[key] !== undefined && !isObject(value[key]))
      throw new InputError(`${source}: "${key}" must be an object, got ${describe(value[key])}.`);
  }
  return completeSpec(value as unknown as TrainSpecInput);
}

/** A --train-spec file: a spec as JSON, or the JSON result of `teardown train`. */
export function readTrainSpecFile(path: string): TrainSpec {
  requireFile(path, 'Training spec');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(
      `Training spec '${path}' is not valid JSON (${(error as Error).message}).`,
    );
  }
  return parseTrainSpec(json, `Training spec '${path}'`);
}

/** The spec a model trained by teardown (or a checkpoint) carries in its metadata, if any. */
export function storedTrainSpec(proto: ModelProto, source = 'the model'): TrainSpec | undefined {
  const entry = proto.metadataProps.find((prop) => prop.key === TRAIN_SPEC_KEY);
  if (!entry) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(entry.value);
  } catch (error) {
    throw new InputError(
      `The training spec in ${source}'s metadata ('${TRAIN_SPEC_KEY}') is not valid JSON (${(error as Error).message}).`,
    );
  }
  return parseTrainSpec(json, `The training spec in ${source}'s metadata`);
}

/** The entries whose value is not undefined: a key left undefined takes its default. */
function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(
    Object.entries(value ?? {}).filter(([, entry]) => entry !== undefined),
  ) as Partial<T>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === undefined
    ? 'nothing'
    : Array.isArray(value)
      ? 'an array'
      : JSON.stringify(value);
}
