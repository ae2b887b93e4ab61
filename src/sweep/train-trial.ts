/**
 * A trial that is teardown's own training (api/train.ts), on one onnxruntime thread. The spec's
 * `train` object is a training spec as `teardown train --train-spec` reads it (train/read-spec.ts:
 * task, model, lr, optimizer {kind, weightDecay, ...}, schedule, batch, steps or epochs, ...).
 * `{name}` placeholders anywhere in it take parameter values (`"model": "mlp:hidden={hidden}"`; a
 * string that is one placeholder takes the value as it is, so `"weightDecay": "{wd}"` stays a
 * number), and a parameter named after a top-level field (lr, steps, batch, ...) sets it. The
 * trial's seed is the training seed (initialisation and batch order); the data split keeps the
 * template's taskOptions.dataSeed. The metric is a field of the last evaluation.
 */
import { InputError, UserError } from '../errors.ts';
import type { TrainSpec } from '../train/spec.ts';
import { parseTrainSpec } from '../train/read-spec.ts';
import type { CurvePoint } from '../train/trainer.ts';
import type { Params } from './plan.ts';
import { TRAIN_PARAMETER_FIELDS } from './spec.ts';
import type { TrialOutcome } from './store.ts';

export const TRAIN_METRICS = ['testAccuracy', 'testLoss', 'trainAccuracy', 'trainLoss'] as const;
type TrainMetric = (typeof TRAIN_METRICS)[number];

/** Steps of a smoke-size training trial. */
export const SMOKE_TRAIN_STEPS = 5;

export interface TrainTrial {
  template: Record<string, unknown>;
  params: Params;
  seed: number;
  metric: string;
  smoke?: boolean;
  /** onnxruntime threads of the trial (default 1: the pool runs one trial per core). */
  threads?: number;
  signal?: AbortSignal;
}

/** The whole training spec of one trial, checked (an InputError names what is wrong). */
export function trainSpecFor(
  trial: Pick<TrainTrial, 'template' | 'params' | 'seed' | 'smoke'>,
): TrainSpec {
  const filled = fill(trial.template, trial.params) as Record<string, unknown>;
  for (const [name, value] of Object.entries(trial.params))
    if (TRAIN_PARAMETER_FIELDS.includes(name)) filled[name] = value;
  if (filled.seed !== undefined)
    throw new InputError(
      "Sweep spec field 'train.seed': the sweep sets the seed of each trial (field 'seeds'); leave it out.",
    );
  filled.seed = trial.seed;
  if (trial.smoke) {
    filled.steps = Math.min(SMOKE_TRAIN_STEPS, Number(filled.steps ?? SMOKE_TRAIN_STEPS));
    delete filled.epochs;
    filled.evalEvery = Math.min(Number(filled.evalEvery ?? SMOKE_TRAIN_STEPS), SMOKE_TRAIN_STEPS);
  }
  return parseTrainSpec(filled, "Sweep spec field 'train'");
}

/** Every configuration's training spec, checked before any trial runs. */
export function checkTrainTemplate(
  template: Record<string, unknown>,
  configurations: { index: number; params: Params }[],
  smoke?: boolean,
): void {
  for (const { index, params } of configurations) {
    try {
      trainSpecFor({ template, params, seed: 0, smoke });
    } catch (error) {
      if (!(error instanceof InputError) || error.message.startsWith('Sweep spec')) throw error;
      throw new InputError(`Sweep spec field 'train' (configuration ${index}): ${error.message}`);
    }
  }
}

/** The template with placeholders filled, at any depth. */
function fill(value: unknown, params: Params): unknown {
  if (typeof value === 'string') {
    const whole = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value);
    if (whole && Object.hasOwn(params, whole[1])) return params[whole[1]];
    return value.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (text, name: string) =>
      Object.hasOwn(params, name) ? String(params[name]) : text,
    );
  }
  if (Array.isArray(value)) return value.map((item) => fill(item, params));
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, fill(item, params)]),
    );
  return value;
}

export function checkTrainMetric(metric: string): void {
  if (!(TRAIN_METRICS as readonly string[]).includes(metric)) {
    throw new InputError(
      `Sweep spec field 'metric' is '${metric}': a training trial measures one of ${TRAIN_METRICS.join(', ')}.`,
    );
  }
}

export async function runTrainTrial(trial: TrainTrial): Promise<TrialOutcome> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const metric = trial.metric as TrainMetric;
  try {
    const { train } = await import('../api/train.ts');
    const result = await train(trainSpecFor(trial), {
      threads: trial.threads ?? 1,
      signal: trial.signal,
    });
    const value = result.final[metric];
    const curve = result.curve.map((point: CurvePoint): [number, number] => [
      point.step,
      point[metric],
    ]);
    if (!Number.isFinite(value))
      return {
        status: 'failed',
        metric: null,
        seconds: seconds(),
        error: `${metric} is ${value}`,
        curve,
      };
    return { status: 'done', metric: value, seconds: seconds(), curve };
  } catch (error) {
    if (trial.signal?.aborted) throw error;
    // A diverging run (an InputError from the trainer) is a result of the sweep, not its end.
    const message =
      error instanceof UserError
        ? error.message
        : `internal error: ${(error as Error).stack ?? String(error)}`;
    return { status: 'failed', metric: null, seconds: seconds(), error: message.slice(-2000) };
  }
}
