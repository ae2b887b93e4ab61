/**
 * Training objectives beyond plain empirical risk minimisation (ERM), as used to try fixes for a
 * shortcut (audit --try-fixes):
 *   reweight  group-balanced reweighting: groups are the label × the named attributes; an
 *             example's weight is N / (G·n_g), so every group weighs the same in the loss
 *             (Sagawa et al. 2020's reweighting baseline);
 *   jtt       Just Train Twice (Liu et al. 2021): train ERM for `identificationSteps`, then
 *             train again from scratch with the examples the first model got wrong up-weighted
 *             by `upweight` (fine-tuning: from the starting model; with 0 identification steps
 *             the starting model's own errors are up-weighted);
 *   irm       IRMv1 (Arjovsky et al. 2019): ERM plus λ·Σₑ‖∇_w R_e(w·Φ)‖² over the training
 *             environments (the values of a task attribute, `environment` unless named), λ = 1
 *             for the first `annealSteps` steps and `penaltyWeight` after (objective-losses.ts).
 * The attributes are the task's (data/tasks.ts): built in (colored-mnist: color, environment) or,
 * for a user's csv: and npy: tasks, CSV columns and .npy files (data/user-tasks.ts).
 */
import { InputError } from '../errors.ts';
import type { LossSpec } from '../autodiff/loss.ts';
import type { Task, TaskOptions } from '../data/tasks.ts';
import { tensor, type Feeds } from '../tensor.ts';
import {
  ENVIRONMENT_INPUT,
  irmV1,
  PENALTY_WEIGHT_INPUT,
  WEIGHT_INPUT,
  weightedCrossEntropy,
} from './objective-losses.ts';

export type Objective =
  | { kind: 'erm' }
  | { kind: 'reweight'; attributes: string[] }
  | { kind: 'jtt'; identificationSteps: number; upweight: number }
  | { kind: 'irm'; penaltyWeight: number; annealSteps: number; environment?: string };

/** The attribute whose values are IRM's environments when the objective names none. */
export const DEFAULT_ENVIRONMENT = 'environment';

/** The task attributes an objective reads. */
export function objectiveAttributes(objective: Objective | undefined): string[] {
  if (objective?.kind === 'reweight') return objective.attributes;
  if (objective?.kind === 'irm') return [objective.environment ?? DEFAULT_ENVIRONMENT];
  return [];
}

export function describeObjective(objective: Objective | undefined): string {
  switch (objective?.kind ?? 'erm') {
    case 'erm':
      return 'ERM';
    case 'reweight':
      return `group-balanced reweighting over label × ${(objective as { attributes: string[] }).attributes.join(' × ')}`;
    case 'jtt': {
      const o = objective as { identificationSteps: number; upweight: number };
      return o.identificationSteps === 0
        ? `Just-Train-Twice (the starting model's errors up-weighted ×${o.upweight})`
        : `Just-Train-Twice (identification ${o.identificationSteps} steps, errors up-weighted ×${o.upweight})`;
    }
    case 'irm': {
      const o = objective as { penaltyWeight: number; annealSteps: number; environment?: string };
      return `IRMv1 over the environments of '${o.environment ?? DEFAULT_ENVIRONMENT}' (penalty weight ${o.penaltyWeight} after ${o.annealSteps} steps)`;
    }
  }
}

/**
 * The task options a training run loads its task with: on a csv: task, an attribute the objective
 * names and --attribute does not is read from the table's column of that name
 * (`--objective reweight:group` on a table with a column `group`).
 */
export function taskOptionsFor(
  task: string,
  options: TaskOptions,
  objective: Objective | undefined,
): TaskOptions {
  if (!task.startsWith('csv:')) return options;
  const given = (options.attributes ?? []).map((text) => text.split('=')[0]);
  const missing = objectiveAttributes(objective).filter((name) => !given.includes(name));
  return missing.length
    ? { ...options, attributes: [...(options.attributes ?? []), ...missing] }
    : options;
}

/** What a step needs besides the batch: per-row loss inputs, and the loss spec that reads them. */
export interface ObjectiveInputs {
  loss: Partial<LossSpec>;
  /** The loss's extra feeds for these training rows at this step. */
  feeds(rows: readonly number[], step: number): Feeds;
}

/** `errors`: for jtt, whether the identification model got each training example wrong. */
export function objectiveInputs(
  objective: Objective | undefined,
  task: Task,
  errors?: Uint8Array,
): ObjectiveInputs {
  if (!objective || objective.kind === 'erm') return { loss: {}, feeds: () => ({}) };
  const labels = Int32Array.from(task.train.labels.data as BigInt64Array, Number);
  if (objective.kind === 'irm') {
    const name = objective.environment ?? DEFAULT_ENVIRONMENT;
    const { environment, count } = environmentIndices(taskAttribute(task, name));
    return {
      loss: { objective: irmV1(count) },
      feeds: (rows, step) =>
        checkEnvironments(rows, step, environment, count, name) && {
          [ENVIRONMENT_INPUT]: tensor(
            'float32',
            [rows.length, count],
            rows.flatMap((row) =>
              Array.from({ length: count }, (_, e) => (environment[row] === e ? 1 : 0)),
            ),
          ),
          [PENALTY_WEIGHT_INPUT]: tensor(
            'float32',
            [],
            [step <= objective.annealSteps ? 1 : objective.penaltyWeight],
          ),
        },
    };
  }
  const weights =
    objective.kind === 'reweight'
      ? groupBalancedWeights(
          labels,
          objective.attributes.map((name) => taskAttribute(task, name)),
        )
      : Float32Array.from(errors!, (wrong) => (wrong ? objective.upweight : 1));
  return {
    loss: { objective: weightedCrossEntropy },
    feeds: (rows) => ({
      [WEIGHT_INPUT]: tensor(
        'float32',
        [rows.length],
        rows.map((row) => weights[row]),
      ),
    }),
  };
}

/** N / (G·n_g) for the group g of each example, groups being the distinct (label, attributes...) tuples. */
export function groupBalancedWeights(labels: Int32Array, attributes: Int32Array[]): Float32Array {
  const keys = Array.from(labels, (label, i) =>
    [label, ...attributes.map((values) => values[i])].join('|'),
  );
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return Float32Array.from(keys, (key) => labels.length / (counts.size * counts.get(key)!));
}

/** Each environment's risk is a mean over its rows in the batch: a batch without one would divide 0 by 0 and train on NaN. */
function checkEnvironments(
  rows: readonly number[],
  step: number,
  environment: Int32Array,
  count: number,
  name: string,
): true {
  const present = new Set(rows.map((row) => environment[row]));
  if (present.size === count) return true;
  const absent = [...Array(count).keys()].find((e) => !present.has(e));
  throw new InputError(
    `IRMv1: the batch of step ${step} (${rows.length} examples) holds no example of environment ${absent} of '${name}' (its ${count} environments are numbered from its sorted values), and the penalty needs every environment's risk: use larger batches (--batch-size full) or merge rare environments.`,
  );
}

/** Environment e of each training row as 0..E−1, E the number of distinct values present in training. */
export function environmentIndices(values: Int32Array): { environment: Int32Array; count: number } {
  const distinct = [...new Set(values)].sort((a, b) => a - b);
  const index = new Map(distinct.map((value, e) => [value, e]));
  return {
    environment: Int32Array.from(values, (value) => index.get(value)!),
    count: distinct.length,
  };
}

function taskAttribute(task: Task, name: string): Int32Array {
  const values = task.train.attributes?.[name];
  if (values) return values;
  const has = task.train.attributes
    ? ` (it has ${Object.keys(task.train.attributes).join(', ')})`
    : '';
  const fix = task.name.startsWith('csv:')
    ? `give it as a column of the table, or --attribute ${name}=FILE.npy with one value per row`
    : task.name.startsWith('npy:')
      ? `give --attribute ${name}=FILE.npy with one value per example of the inputs file`
      : 'use a task with per-example attributes (colored-mnist) or your own data (csv:FILE or npy:INPUTS.npy,LABELS.npy with --attribute)';
  throw new InputError(
    `Task '${task.name}' has no attribute '${name}' to train with${has}: ${fix}.`,
  );
}
