/**
 * The backprop contenders' hyperparameter search, run by the library's sweep() as a user would:
 * a grid of learning rate × schedule (constant, or cosine decay to 0), one trial per
 * configuration with the race's seed, each a run of teardown's trainer on the search task (the
 * training rows, 80% trained on, 20% held out: backprop-tasks.ts), scored by its accuracy on the
 * held-out rows. The configuration the sweep ranks best on that accuracy is chosen (ties: the
 * first in grid order).
 */
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import type { ProgressOptions } from '../progress.ts';
import { parseSweepSpec } from '../sweep/spec.ts';
import { sweep } from '../sweep/sweep.ts';
import type { NamedTask, TaskFolder } from './backprop-tasks.ts';

export interface SearchSpace {
  /** Learning rates of AdamW (the trainer's optimizer). */
  lr: number[];
  /** Cosine decay of the learning rate to 0 over the run, or a constant rate. */
  cosine: boolean[];
}

/** Around the trainer's default lr (10⁻³), where Adam usually works for small networks. */
export const DEFAULT_SEARCH: SearchSpace = { lr: [1e-3, 3e-3, 1e-2], cosine: [false, true] };

/** What every trial and the final run share: the model spec, batch size and steps. */
export interface TrialRecipe {
  model: string;
  batch: number;
  steps: number;
}

export interface SearchTrial {
  lr: number;
  cosine: boolean;
  seed: number;
  /** Accuracy on the held-out rows; null when the trial failed (e.g. diverged). */
  validationAccuracy: number | null;
  seconds: number | null;
  error?: string;
}

export interface SearchResult {
  chosen: { lr: number; cosine: boolean; validationAccuracy: number };
  /** Every trial as the sweep's store holds it, in grid order. */
  trials: SearchTrial[];
  seconds: number;
}

export const configurationCount = (space: SearchSpace): number =>
  space.lr.length * space.cosine.length;

export async function searchHyperparameters(
  space: SearchSpace,
  recipe: TrialRecipe,
  data: NamedTask,
  run: ProgressOptions & { folder: TaskFolder; seed: number; threads: number },
): Promise<SearchResult> {
  const started = performance.now();
  const spec = parseSweepSpec({
    parameters: { lr: { values: space.lr }, cosine: { values: space.cosine } },
    sampler: 'grid',
    seeds: 1,
    firstSeed: run.seed,
    metric: 'testAccuracy',
    direction: 'maximize',
    success: 0,
    train: {
      ...data,
      model: recipe.model,
      batch: recipe.batch,
      steps: recipe.steps,
      evalEvery: recipe.steps,
      schedule: { cosine: '{cosine}' },
    },
  });
  const result = await sweep(spec, {
    out: join(run.folder.path, 'sweep'),
    // In this process: no worker to start, and the trials run as fast as the calibration did.
    workers: 0,
    threads: run.threads,
    signal: run.signal,
    onProgress: run.onProgress,
  });
  const trials = result.trials.map((trial): SearchTrial => ({
    lr: Number(trial.params.lr),
    cosine: trial.params.cosine === true,
    seed: trial.seed,
    validationAccuracy: trial.metric,
    seconds: trial.seconds,
    ...(trial.error ? { error: trial.error } : {}),
  }));
  const best = result.analysis.best;
  if (!best) {
    throw new InputError(
      `Every configuration of the backprop search failed on these rows (${recipe.model}); ` +
        `the first: ${trials[0]?.error ?? 'no trial ran'}.`,
    );
  }
  return {
    chosen: {
      lr: Number(best.params.lr),
      cosine: best.params.cosine === true,
      validationAccuracy: best.mean,
    },
    trials,
    seconds: (performance.now() - started) / 1000,
  };
}
