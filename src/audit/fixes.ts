/**
 * Fixes as experiments (audit --try-fixes): retrain the audited model's training spec with
 * group-balanced reweighting, Just-Train-Twice and IRMv1 (train/objective.ts), and measure each
 * in and out of distribution next to the audited model itself. Measured, not promised: every row
 * is a training run made here.
 *
 * A model teardown did not train (no spec in its metadata, none given) is fine-tuned instead,
 * from its own weights, on the audit's data (train/fine-tune.ts, FOREIGN_FIX_SETTINGS); its
 * Just-Train-Twice up-weights the examples the audited model itself gets wrong (it is the ERM
 * model of the first stage).
 *
 * Where accuracy is measured depends on the task: a task whose test split is shifted by
 * construction (colored-mnist) is measured on its training environments (in) and its test split
 * (out); a user's own data (csv:, npy:) on its held-out split (in, drawn like the training data)
 * and on the audit's --shifted set (out), which it then needs.
 */
import { resolve } from 'node:path';
import { InputError, UserError } from '../errors.ts';
import { loadTask, type Task } from '../data/tasks.ts';
import { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { predictClasses } from '../train/evaluate.ts';
import {
  DEFAULT_ENVIRONMENT,
  describeObjective,
  taskOptionsFor,
  type Objective,
} from '../train/objective.ts';
import { checkSpec, DEFAULT_OPTIMIZER, type TrainSpec } from '../train/spec.ts';
import { train } from '../train/trainer.ts';
import { loadExtraInputs, type ExtraInputs } from '../train/extra-inputs.ts';
import { examplesInput } from '../train/source.ts';
import type { Attribute, AuditData } from './data.ts';
import { correctCount, predict } from './predictions.ts';
import type { Counterfactual } from './shortcut.ts';
import type { ProgressOptions } from '../progress.ts';
import { transformExamples } from './transforms.ts';

export interface FixRow {
  method: string;
  inDistribution: number;
  outOfDistribution: number;
  /** The re-audit: the share of the audit's examples whose prediction the shortcut's counterfactual flips (when the audit had one). */
  flipRate?: number;
  settings: string;
  seconds: number;
}

export interface FixesResult {
  description: string;
  attribute: string;
  spec: TrainSpec;
  rows: FixRow[];
}

/** What --try-fixes retrains and where it measures, settled before the audit runs (fixPlan). */
export interface FixPlan {
  /** The audited model's spec, its task given every attribute the fixes may group by. */
  spec: TrainSpec;
  /** The audit's attributes the retraining task has, in the audit's order. */
  attributes: string[];
  /** The out-of-distribution set when the task has none of its own: the audit's --shifted data. */
  shifted?: AuditData;
  /** The fixes fine-tune the audited model itself (it carries no training spec). */
  fromAudited?: boolean;
}

/** IRMv1 as Arjovsky et al. train it on Colored MNIST: full batch, penalty annealed in after a warm start. */
export const IRM_SETTINGS = { steps: 500, penaltyWeight: 1e4, annealSteps: 100 };
export const JTT_UPWEIGHT = 6;

/**
 * Fine-tuning of a model without a training spec: AdamW without weight decay (the weights are the
 * user's, not to be shrunk), a small learning rate that moves them gently, 10 epochs of batches of 64.
 */
export const FOREIGN_FIX_SETTINGS = { lr: 1e-3, batch: 64, epochs: 10 };

/** Where the audit's examples and labels came from, to train on the same files. */
export interface AuditDataSource {
  /** --labels FILE.npy */
  labels?: string;
  /** --label-column NAME (CSV data) */
  labelColumn?: string;
  /** --input NAME=FILE.npy (models with several inputs): each input's file. */
  inputs?: Record<string, string>;
}

/**
 * The spec that fine-tunes `model` (which carries no training spec) on the audit's own data: the
 * CSV table with its label column, or the .npy examples with their --labels file, split 80/20
 * by data seed 0 as any csv:/npy: task; fixPlan adds the attributes.
 */
export function foreignFixSpec(model: Model, data: AuditData, source: AuditDataSource): TrainSpec {
  let task: string;
  let inputs: Record<string, string> | undefined;
  if (data.inputs.input !== undefined && source.inputs) {
    // Several inputs: the transformed input's file is the task's examples, the others go with them row for row.
    if (!source.labels)
      throw new InputError(
        `--try-fixes fine-tunes '${model.path}' on the audit's inputs and needs their labels file: give --labels FILE.npy.`,
      );
    task = `npy:${source.inputs[data.inputs.input]},${source.labels}`;
    inputs = Object.fromEntries(
      Object.entries(source.inputs).filter(([name]) => name !== data.inputs.input),
    );
  } else if (data.path.endsWith('.csv')) {
    if (!source.labelColumn)
      throw new InputError(
        `--try-fixes fine-tunes '${model.path}' on the table '${data.path}' with its label column: give --label-column NAME instead of --labels.`,
      );
    task = `csv:${data.path}`;
  } else {
    if (!source.labels)
      throw new InputError(
        `--try-fixes fine-tunes '${model.path}' on '${data.path}' and needs its labels file: give --labels FILE.npy.`,
      );
    task = `npy:${data.path},${source.labels}`;
  }
  return {
    task,
    taskOptions: {
      dataSeed: 0,
      ...(source.labelColumn ? { labelColumn: source.labelColumn } : {}),
    },
    model: `from:${model.path}`,
    from: { path: model.path, sha256: model.file.sha256, ...(inputs ? { inputs } : {}) },
    optimizer: { ...DEFAULT_OPTIMIZER, weightDecay: 0 },
    lr: FOREIGN_FIX_SETTINGS.lr,
    schedule: { warmupSteps: 0, cosine: false },
    epochs: FOREIGN_FIX_SETTINGS.epochs,
    batch: FOREIGN_FIX_SETTINGS.batch,
    seed: 0,
    evalEvery: Number.MAX_SAFE_INTEGER,
  };
}

/**
 * Refuses, before any work, a retraining that cannot group by any of the audit's attributes or
 * cannot be measured out of distribution. An audit attribute reaches a user's task as the CSV
 * column of that name, or as its .npy file when the audit data is the task's own data file (the
 * values then follow the task's rows).
 */
export function fixPlan(spec: TrainSpec, data: AuditData, shifted?: AuditData): FixPlan {
  checkSpec(spec);
  if (!data.attributes.length)
    throw new InputError(
      `--try-fixes groups the training data by the shortcut attribute: give one with --attribute ${data.layout.kind === 'table' ? 'COLUMN or ' : ''}NAME=FILE.npy (and --counterfactual NAME:TRANSFORM).`,
    );
  const userData = spec.task.startsWith('csv:') || spec.task.startsWith('npy:');
  if (!userData)
    return builtInPlan(
      spec,
      data.attributes.map((a) => a.name),
    );
  const known = new Set((spec.taskOptions.attributes ?? []).map((text) => text.split('=')[0]));
  const reasons: string[] = [];
  const added: string[] = [];
  for (const attribute of data.attributes) {
    if (known.has(attribute.name)) continue;
    const source = taskAttributeSource(spec, attribute, data);
    if (typeof source !== 'string') {
      reasons.push(source.reason);
      continue;
    }
    try {
      loadRetrainingTask({
        ...spec,
        taskOptions: {
          ...spec.taskOptions,
          attributes: [...(spec.taskOptions.attributes ?? []), source],
        },
      });
      added.push(source);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      reasons.push(error.message);
    }
  }
  const usable = data.attributes
    .map((a) => a.name)
    .filter((name) => known.has(name) || added.some((text) => text.split('=')[0] === name));
  if (!usable.length)
    throw new InputError(
      `--try-fixes retrains on task '${spec.task}' grouped by the shortcut attribute, but none of the audit's attributes reaches its rows: ${reasons.join('; ')}.`,
    );
  const planned: TrainSpec = {
    ...spec,
    taskOptions: {
      ...spec.taskOptions,
      attributes: [...(spec.taskOptions.attributes ?? []), ...added],
    },
  };
  const task = loadRetrainingTask(planned);
  if (!shifted)
    throw new InputError(
      `--try-fixes measures each fix out of distribution, and task '${spec.task}' has no shifted split of its own (its test split is drawn like its training data): give the deployment or shifted data with --shifted FILE (and its labels).`,
    );
  const expected = task.train.inputs.dims.slice(1).join(', ');
  if (shifted.inputs.dims.join(', ') !== expected)
    throw new InputError(
      `--try-fixes measures the retrained models on --shifted '${shifted.path}', whose examples are [${shifted.inputs.dims.join(', ')}], but task '${spec.task}' trains on [${expected}]: give shifted data in the training data's format.`,
    );
  return { spec: planned, attributes: usable, shifted };
}

function builtInPlan(spec: TrainSpec, attributes: string[]): FixPlan {
  const taskAttributes = Object.keys(loadRetrainingTask(spec).train.attributes ?? {});
  const usable = attributes.filter((name) => taskAttributes.includes(name));
  if (!usable.length) {
    throw new InputError(
      `--try-fixes retrains on task '${spec.task}' grouped by the shortcut attribute, but the task has ${taskAttributes.length ? `the attributes ${taskAttributes.join(', ')}` : 'no per-example attributes'} and the audit names ${attributes.join(', ')}: name the attribute as the task does (e.g. --attribute color=FILE).`,
    );
  }
  return { spec, attributes: usable };
}

/** How the retraining task gets an audit attribute (NAME or NAME=FILE.npy), or why it cannot. */
function taskAttributeSource(
  spec: TrainSpec,
  attribute: Attribute,
  data: AuditData,
): string | { reason: string } {
  if (attribute.column !== undefined && spec.task.startsWith('csv:')) return attribute.name;
  const sameData =
    resolve(data.path) ===
    resolve(spec.task.startsWith('csv:') ? spec.task.slice(4) : spec.task.slice(4).split(',')[0]);
  if (attribute.file && sameData) return `${attribute.name}=${attribute.file}`;
  const trainedOn = spec.task.slice(4);
  return {
    reason: `'${attribute.name}' holds values for the audit data '${data.path}', not for the training data '${trainedOn}' (retrain with teardown train --attribute ${attribute.name}${spec.task.startsWith('csv:') ? '' : '=FILE.npy'} so that the spec carries it, or audit the training data itself)`,
  };
}

/** The task a retraining loads; a user error in its attributes is reported as --try-fixes'. */
function loadRetrainingTask(spec: TrainSpec): Task {
  try {
    return loadTask(spec.task, taskOptionsFor(spec.task, spec.taskOptions, spec.objective));
  } catch (error) {
    if (error instanceof UserError)
      throw new InputError(
        `--try-fixes cannot load the training task '${spec.task}' of the audited model: ${error.message}`,
      );
    throw error;
  }
}

/** Re-audits a candidate model: the share of the audit's examples whose prediction the shortcut's counterfactual flips. */
export type Reaudit = (candidate: Model) => Promise<number>;

/** The audit's shortcut-attribute check (audit/shortcut.ts) on any model: the same transformed examples (same seed), its flip rate. */
export function counterfactualReaudit(
  data: AuditData,
  counterfactual: Counterfactual,
  seed: number,
  batchSize: number,
): Reaudit {
  const transformed = transformExamples(counterfactual.transform, data.inputs, {
    seed,
    column: counterfactual.column,
  });
  return async (candidate) => {
    const [before, after] = [
      await predict(candidate, data.inputs, { batchSize }),
      await predict(candidate, transformed, { batchSize }),
    ];
    return (
      before.predicted.reduce(
        (flips, predicted, i) => flips + (predicted !== after.predicted[i] ? 1 : 0),
        0,
      ) / before.predicted.length
    );
  };
}

/** Each retraining's steps reported to `onProgress`; `maxSteps` caps them (the CLI's --smoke). */
export interface FixOptions extends ProgressOptions {
  maxSteps?: number;
}

/**
 * Accepts a plan (fixPlan) or, for a built-in task, the audited model's spec itself. `reaudit`
 * measures each retrained model's reliance on the shortcut again, next to its accuracies.
 */
export async function tryFixes(
  model: Model,
  specOrPlan: TrainSpec | FixPlan,
  attribute: string,
  runtime: RuntimeOptions,
  onRow?: (row: FixRow) => void,
  reaudit?: Reaudit,
  options: FixOptions = {},
): Promise<FixesResult> {
  const plan = 'spec' in specOrPlan ? specOrPlan : builtInPlan(specOrPlan, [attribute]);
  const spec = plan.spec;
  const task = loadRetrainingTask(spec);
  const ownShift = task.testDistribution === 'shifted';
  const environment = task.train.attributes?.[DEFAULT_ENVIRONMENT]
    ? DEFAULT_ENVIRONMENT
    : attribute;
  const measured = measurer(
    task,
    ownShift ? undefined : plan.shifted,
    loadExtraInputs(spec.from?.inputs, task),
  );
  const measure: Measure = async (candidate) => ({
    ...(await measured(candidate)),
    ...(reaudit ? { flipRate: await reaudit(candidate) } : {}),
  });
  const rows: FixRow[] = [];
  const add = (row: FixRow) => {
    rows.push(row);
    onRow?.(row);
  };
  const asAudited = plan.fromAudited
    ? 'the model as given'
    : `${spec.model}, ${describeObjective(spec.objective)}`;
  add({ method: 'as audited (ERM)', ...(await measure(model)), settings: asAudited, seconds: 0 });

  const trainRows = task.train.labels.dims[0];
  // Fine-tuning the audited model: it is the first stage's ERM model, its errors are the ones up-weighted.
  const epochSteps = plan.fromAudited
    ? 0
    : spec.batch === 'full'
      ? 1
      : Math.ceil(trainRows / Math.min(spec.batch, trainRows));
  const irm: Objective = {
    kind: 'irm',
    penaltyWeight: IRM_SETTINGS.penaltyWeight,
    annealSteps: IRM_SETTINGS.annealSteps,
    ...(environment === DEFAULT_ENVIRONMENT ? {} : { environment }),
  };
  const variants: { method: string; spec: TrainSpec }[] = [
    {
      method: 'group-balanced reweighting',
      spec: { ...spec, objective: { kind: 'reweight', attributes: [attribute] } },
    },
    {
      method: 'Just-Train-Twice',
      spec: {
        ...spec,
        objective: { kind: 'jtt', identificationSteps: epochSteps, upweight: JTT_UPWEIGHT },
      },
    },
    {
      method: 'IRMv1',
      spec: {
        ...spec,
        batch: 'full',
        steps: IRM_SETTINGS.steps,
        epochs: undefined,
        objective: irm,
      },
    },
  ];
  for (const variant of variants) {
    const started = Date.now();
    const trained = capSteps(variant.spec, options.maxSteps);
    const result = await train(
      { ...trained, evalEvery: Number.MAX_SAFE_INTEGER },
      { runtime, onProgress: options.onProgress, signal: options.signal },
    );
    const measuredFix =
      ownShift && !reaudit
        ? {
            inDistribution: result.final.trainAccuracy,
            outOfDistribution: result.final.testAccuracy,
          }
        : await measureTrained(result.model, measure, runtime);
    const seconds = (Date.now() - started) / 1000;
    add({
      method: variant.method,
      ...measuredFix,
      settings: `${describeObjective(trained.objective)}; ${trained.batch === 'full' ? 'full batch' : `batch ${variant.spec.batch}`}, ${result.steps} steps`,
      seconds,
    });
  }
  const where = ownShift
    ? 'in distribution = the training environments, out of distribution = the test split'
    : `in distribution = the task's held-out split (drawn like its training data), out of distribution = --shifted '${plan.shifted!.path}'`;
  const how = plan.fromAudited
    ? `Each fix fine-tunes the audited model from its own weights (it carries no training spec): AdamW, lr ${spec.lr}, batches of ${spec.batch}, ${spec.epochs} epochs (IRMv1: full batch)`
    : `Each fix retrains ${spec.model} from the audited model's spec (seed ${spec.seed})`;
  return { description: `${task.description}. ${how}; ${where}.`, attribute, spec, rows };
}

/** A spec shortened to `maxSteps` steps (JTT's first stage to half of them). */
function capSteps(spec: TrainSpec, maxSteps: number | undefined): TrainSpec {
  if (maxSteps === undefined) return spec;
  const objective =
    spec.objective?.kind === 'jtt'
      ? {
          ...spec.objective,
          identificationSteps: Math.min(
            spec.objective.identificationSteps,
            Math.floor(maxSteps / 2),
          ),
        }
      : spec.objective;
  return { ...spec, steps: maxSteps, epochs: undefined, objective };
}

type Measure = (
  candidate: Model,
) => Promise<{ inDistribution: number; outOfDistribution: number; flipRate?: number }>;

/**
 * Accuracy in distribution (training split for a task with its own shift, else its held-out split)
 * and out of distribution (its test split, or `shifted`); `extra`: a fine-tuned model's other inputs.
 */
function measurer(task: Task, shifted: AuditData | undefined, extra: ExtraInputs): Measure {
  const rate = async (candidate: Model, split: Task['train']) => {
    const predicted = await predictClasses(
      candidate,
      split.inputs,
      examplesInput(candidate, extra),
      (indices) => extra.feeds(split, indices),
    );
    return (
      predicted.reduce((right, p, i) => right + (p === Number(split.labels.data[i]) ? 1 : 0), 0) /
      predicted.length
    );
  };
  if (!shifted)
    return async (candidate) => ({
      inDistribution: await rate(candidate, task.train),
      outOfDistribution: await rate(candidate, task.test),
    });
  return async (candidate) => {
    const predictions = await predict(candidate, shifted.inputs);
    return {
      inDistribution: await rate(candidate, task.test),
      outOfDistribution:
        correctCount(predictions.predicted, shifted.labels) / shifted.labels.length,
    };
  };
}

async function measureTrained(
  proto: Parameters<typeof Model.fromProto>[0],
  measure: Measure,
  runtime: RuntimeOptions,
) {
  const candidate = Model.fromProto(proto, 'a retrained model', runtime);
  try {
    return await measure(candidate);
  } finally {
    await candidate.release();
  }
}
