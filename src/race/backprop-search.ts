/**
 * The backprop contenders' hyperparameter search, run by the library's sweep() as a user would:
 * a grid of schedule (constant, or cosine decay to 0) × learning rate, one trial per
 * configuration with the race's seed, each a run of teardown's trainer on the search task (the
 * training rows, 80% trained on, 20% held out: backprop-tasks.ts), scored by its accuracy on the
 * held-out rows. The configuration the sweep ranks best on that accuracy is chosen (ties: the
 * first in grid order).
 *
 * The trials run in this process, one after another (sweep's `workers: 0`). After each, the
 * caller may stop the search (the machine got slower than the plan assumed): the trials left are
 * not run, and the best of those finished, as the sweep's store holds them, is chosen. The grid
 * varies the learning rate fastest, so a search cut short has tried every learning rate.
 */
import { join } from 'node:path';
import { InputError } from '../errors.ts';
import type { ProgressOptions } from '../progress.ts';
import { analyzeSweep, type SweepAnalysis } from '../sweep/analysis.ts';
import { planConfigurations } from '../sweep/plan.ts';
import { parseSweepSpec, type SweepSpec } from '../sweep/spec.ts';
import { SweepStore, type TrialRecord } from '../sweep/store.ts';
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
  /** Every trial that ran, as the sweep's store holds it, in grid order. */
  trials: SearchTrial[];
  /** Configurations in the grid; more than trials.length when the search was stopped. */
  planned: number;
  seconds: number;
}

export interface SearchRun extends ProgressOptions {
  folder: TaskFolder;
  seed: number;
  threads: number;
  /** Asked after each trial with its seconds: false skips the trials left. */
  continueAfter?: (trialSeconds: number) => boolean;
}

export const configurationCount = (space: SearchSpace): number =>
  space.lr.length * space.cosine.length;

export async function searchHyperparameters(
  space: SearchSpace,
  recipe: TrialRecipe,
  data: NamedTask,
  run: SearchRun,
): Promise<SearchResult> {
  const started = performance.now();
  const spec = searchSpec(space, recipe, data, run.seed);
  const out = join(run.folder.path, 'sweep');
  const { trials, analysis } = await sweepUntilStopped(spec, out, run);
  const searched = trials
    .filter((trial) => trial.status === 'done' || trial.status === 'failed')
    .map(searchTrial);
  const best = analysis.best;
  if (!best) {
    throw new InputError(
      `Every configuration of the backprop search failed on these rows (${recipe.model}); ` +
        `the first: ${searched[0]?.error ?? 'no trial ran'}.`,
    );
  }
  return {
    chosen: {
      lr: Number(best.params.lr),
      cosine: best.params.cosine === true,
      validationAccuracy: best.mean,
    },
    trials: searched,
    planned: spec.configurations,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The grid as a sweep spec: trials of teardown's trainer, scored on the task's test rows. */
function searchSpec(
  space: SearchSpace,
  recipe: TrialRecipe,
  data: NamedTask,
  seed: number,
): SweepSpec {
  return parseSweepSpec({
    // The grid varies its last parameter fastest.
    parameters: { cosine: { values: space.cosine }, lr: { values: space.lr } },
    sampler: 'grid',
    seeds: 1,
    firstSeed: seed,
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
}

/** The sweep's trials and analysis; when stopped after a trial, those of its store then. */
async function sweepUntilStopped(
  spec: SweepSpec,
  out: string,
  run: SearchRun,
): Promise<{ trials: TrialRecord[]; analysis: SweepAnalysis }> {
  const stop = new AbortController();
  const stopped = new Error('the backprop search was stopped between trials, for time');
  const forward = () => stop.abort(run.signal?.reason);
  if (run.signal?.aborted) forward();
  else run.signal?.addEventListener('abort', forward, { once: true });
  let trialStarted = performance.now();
  try {
    return await sweep(spec, {
      out,
      // In this process: no worker to start, and trials run at the calibration's pace.
      workers: 0,
      threads: run.threads,
      signal: stop.signal,
      onProgress: (event) => {
        run.onProgress?.(event);
        const seconds = (performance.now() - trialStarted) / 1000;
        trialStarted = performance.now();
        if (event.done < event.total && run.continueAfter?.(seconds) === false) {
          stop.abort(stopped);
        }
      },
    });
  } catch (error) {
    if (error !== stopped) throw error;
    const store = await SweepStore.read(out);
    try {
      const trials = store.trials();
      return { trials, analysis: analyzeSweep(spec, planConfigurations(spec), trials) };
    } finally {
      store.close();
    }
  } finally {
    run.signal?.removeEventListener('abort', forward);
  }
}

function searchTrial(trial: TrialRecord): SearchTrial {
  return {
    lr: Number(trial.params.lr),
    cosine: trial.params.cosine === true,
    seed: trial.seed,
    validationAccuracy: trial.metric,
    seconds: trial.seconds,
    ...(trial.error ? { error: trial.error } : {}),
  };
}
