/**
 * A training run's spec: everything its result depends on (besides the thread count), so that a
 * run is a pure function spec → result and can be stored in the trained model's metadata.
 */
import { InputError } from '../errors.ts';
import { TASK_NAMES, type TaskOptions } from '../data/tasks.ts';
import { checkOptimizer, type OptimizerSpec } from './optimizers.ts';
import { parseModelSpec } from './model-spec.ts';
import type { Schedule } from './schedule.ts';
import type { Objective } from './objective.ts';

/** Fine-tuning an existing ONNX model (foreign.ts) instead of building one. */
export interface FineTuneSource {
  path: string;
  /** The file's sha256 when the run started: a resumed or reproduced run checks it is the same model. */
  sha256?: string;
  /** Globs over PyTorch parameter names: --train, --freeze. */
  train?: string[];
  freeze?: string[];
  /** The model's other inputs, each a .npy file with one row per row of the task's data (--input NAME=FILE.npy). */
  inputs?: Record<string, string>;
}

export interface TrainSpec {
  task: string;
  taskOptions: TaskOptions;
  /** A model spec (model-spec.ts); for a fine-tuning, `from:PATH`. */
  model: string;
  from?: FineTuneSource;
  optimizer: OptimizerSpec;
  lr: number;
  schedule: Schedule;
  clipNorm?: number;
  /** Total steps; or give epochs. */
  steps?: number;
  epochs?: number;
  /** Examples per step, or 'full' for the whole training set every step. */
  batch: number | 'full';
  seed: number;
  /** Steps between evaluations on the whole train and test sets (and curve points). */
  evalEvery: number;
  /** Default ERM (objective.ts). */
  objective?: Objective;
}

export const DEFAULT_OPTIMIZER: OptimizerSpec = {
  kind: 'adamw',
  momentum: 0,
  weightDecay: 0.01,
  betas: [0.9, 0.999],
  eps: 1e-8,
};

export function checkSpec(spec: TrainSpec): void {
  if (
    !spec.task.startsWith('csv:') &&
    !spec.task.startsWith('npy:') &&
    !TASK_NAMES.includes(spec.task)
  )
    throw new InputError(`Unknown task '${spec.task}': use one of ${TASK_NAMES.join(', ')}.`);
  if (!spec.from) parseModelSpec(spec.model);
  checkOptimizer(spec.optimizer, spec.lr);
  if (spec.steps === undefined && spec.epochs === undefined)
    throw new InputError('Give the length of training with --steps N or --epochs N.');
  for (const [name, value] of [
    ['steps', spec.steps],
    ['epochs', spec.epochs],
    ['eval-every', spec.evalEvery],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1))
      throw new InputError(`--${name} must be a positive integer, got ${value}.`);
  }
  if (spec.batch !== 'full' && (!Number.isInteger(spec.batch) || spec.batch < 1))
    throw new InputError(`--batch-size must be a positive integer or 'full', got ${spec.batch}.`);
  if (spec.clipNorm !== undefined && !(spec.clipNorm > 0))
    throw new InputError(`--clip must be a positive number, got ${spec.clipNorm}.`);
  if (!Number.isInteger(spec.seed))
    throw new InputError(`--seed must be an integer, got ${spec.seed}.`);
  checkObjective(spec.objective, spec.from !== undefined);
  if (!Number.isInteger(spec.schedule.warmupSteps) || spec.schedule.warmupSteps < 0)
    throw new InputError(
      `--warmup must be a non-negative integer, got ${spec.schedule.warmupSteps}.`,
    );
}

/** `fineTuning`: Just-Train-Twice may take 0 identification steps, the starting model's own errors. */
function checkObjective(objective: Objective | undefined, fineTuning: boolean): void {
  if (!objective || objective.kind === 'erm') return;
  const positive = (value: number, name: string) => {
    if (!(Number.isFinite(value) && value > 0))
      throw new InputError(
        `Objective '${objective.kind}': ${name} must be a positive number, got ${value}.`,
      );
  };
  if (objective.kind === 'reweight') {
    if (!objective.attributes?.length)
      throw new InputError("Objective 'reweight' needs the attributes that define the groups.");
  } else if (objective.kind === 'jtt') {
    if (!(fineTuning && objective.identificationSteps === 0))
      positive(objective.identificationSteps, 'identificationSteps');
    positive(objective.upweight, 'upweight');
  } else if (objective.kind === 'irm') {
    positive(objective.penaltyWeight, 'penaltyWeight');
    if (objective.environment !== undefined && !objective.environment)
      throw new InputError(
        "Objective 'irm': the environment attribute's name is empty; give irm:PENALTY:ANNEAL:ATTRIBUTE or leave it out for 'environment'.",
      );
    if (!(objective.annealSteps >= 0))
      throw new InputError(
        `Objective 'irm': annealSteps must be ≥ 0, got ${objective.annealSteps}.`,
      );
  } else {
    throw new InputError(
      `Unknown training objective '${(objective as { kind: string }).kind}': use erm, reweight, jtt or irm.`,
    );
  }
}
