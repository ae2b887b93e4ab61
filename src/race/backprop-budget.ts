/**
 * How a backprop contender spends its budget. teardown's trainer runs a given number of steps,
 * not a given time, so the steps are planned from a measured cost: a short calibration run of
 * the trainer gives the seconds per step, the set-up of a run (step graph, sessions) and its
 * final evaluation, after a one-step run that takes the process's first-use costs (a run's
 * set-up is several times slower the first time). Then, with K configurations in the search
 * (its trials run in this process, one after another), trials of s steps on the
 * cut = round(0.8·N) search rows, and a final run of the same epochs on all N rows, s·N/cut
 * steps:
 *
 *   budget ≈ K·(set-up + evaluation) + (K + N/cut)·s·step + final set-up and evaluation
 *
 * solved for s with a safety margin. The final run is planned again after the search, from the
 * time then left and the step time the trials showed: at most s·N/cut steps, fewer (but not
 * fewer than s) when the search took longer than planned: the machine's load changes under it.
 */
import { train, type TrainSpecInput } from '../api/train.ts';

export interface StepCost {
  /** Seconds per training step, from the calibration's middle run of steps. */
  stepSeconds: number;
  /** Seconds a run takes besides its steps: building the step graph, opening sessions. */
  setupSeconds: number;
  /** Seconds of the final evaluation (every training and test row of the search task). */
  evaluationSeconds: number;
  /** Wall-clock seconds the calibration took. */
  seconds: number;
}

/** Steps of the first timed run: four onnxruntime runs of 16 (train/trainer.ts). */
const CALIBRATION_STEPS = 64;
/** Seconds of steps a timing should span (shorter ones are noise on a loaded machine). */
const TIMING_WINDOW_SECONDS = 0.15;
/** The most steps a second timed run takes to span that window. */
const MAX_CALIBRATION_STEPS = 2048;
/** The share of the budget the plan fills, against noise in the measured costs. */
const SAFETY = 0.85;
/**
 * How much slower a step of a long run is than the calibration's: runs of 1,400 steps took
 * 0.48-0.55 ms a step where the calibration measured 0.34 (MLP [32] on 1,000 MNIST digits, one
 * thread, load average 5): garbage collection grows with a run's allocations.
 */
const LONG_RUN_SLOWDOWN = 1.5;
/** The fewest steps a search trial takes, whatever the budget. */
const MIN_TRIAL_STEPS = 20;

type RunCost = Omit<StepCost, 'seconds'>;

/**
 * Times the trainer on `spec`: a 1-step run first takes the process's first-use costs, leaving
 * only those every later run here pays (the search runs its trials in this process); then 64
 * steps, and when their steps span less than TIMING_WINDOW_SECONDS, enough steps to span it.
 */
export async function measureStepCost(
  spec: TrainSpecInput,
  options: { threads: number; signal?: AbortSignal },
): Promise<StepCost> {
  const started = performance.now();
  const runtime = { threads: options.threads, signal: options.signal };
  await (await train({ ...spec, steps: 1, evalEvery: 1 }, runtime)).trained.release();
  let cost = await timeRun(spec, CALIBRATION_STEPS, runtime);
  const window = (CALIBRATION_STEPS - 32) * cost.stepSeconds;
  if (window < TIMING_WINDOW_SECONDS) {
    const wanted = 32 + TIMING_WINDOW_SECONDS / cost.stepSeconds;
    const steps = Math.min(MAX_CALIBRATION_STEPS, 16 * Math.ceil(wanted / 16));
    cost = await timeRun(spec, steps, runtime);
  }
  return { ...cost, seconds: (performance.now() - started) / 1000 };
}

/**
 * One run of n steps (a multiple of 16). The progress callback hears each step when its run of
 * 16 ends, and step n only after the final evaluation: step = (t_{n−16} − t₁₆)/(n − 32),
 * set-up = t₁₆ − 16·step, evaluation = t_n − t_{n−16} − 16·step.
 */
async function timeRun(
  spec: TrainSpecInput,
  steps: number,
  runtime: { threads: number; signal?: AbortSignal },
): Promise<RunCost> {
  const started = performance.now();
  const ticks: number[] = [];
  const result = await train(
    { ...spec, steps, evalEvery: steps },
    {
      ...runtime,
      onProgress: (event) => (ticks[event.done] = (performance.now() - started) / 1000),
    },
  );
  await result.trained.release();
  const [first, beforeLast, last] = [ticks[16], ticks[steps - 16], ticks[steps]];
  const stepSeconds = Math.max((beforeLast - first) / (steps - 32), 1e-6);
  return {
    stepSeconds,
    setupSeconds: Math.max(first - 16 * stepSeconds, 0),
    evaluationSeconds: Math.max(last - beforeLast - 16 * stepSeconds, 0),
  };
}

export interface SearchShape {
  configurations: number;
  /** Training rows N, and the rows a search trial trains on (its 80%). */
  rows: number;
  searchRows: number;
}

/** Steps of each search trial: the budget left solved for s (see the file's comment). */
export function planTrialSteps(
  secondsLeft: number,
  cost: StepCost,
  shape: SearchShape,
  maxSteps = Infinity,
): number {
  const { configurations, rows, searchRows } = shape;
  const fixed =
    configurations * (cost.setupSeconds + cost.evaluationSeconds) + finalFixedSeconds(cost, shape);
  const stepsPerTrialStep = configurations + rows / searchRows;
  const stepSeconds = LONG_RUN_SLOWDOWN * cost.stepSeconds;
  const steps = Math.floor((SAFETY * secondsLeft - fixed) / (stepsPerTrialStep * stepSeconds));
  return Math.min(Math.max(steps, MIN_TRIAL_STEPS), maxSteps);
}

/**
 * Steps of the final run: the trials' epochs on all rows, s·N/cut, or as many as fit in the time
 * left, but at least a trial's s: a final run much shorter than what the search validated would
 * not be the configuration it chose, so a search that overran makes the budget overrun by up to
 * about one trial.
 */
export function planFinalSteps(
  secondsLeft: number,
  cost: StepCost,
  shape: SearchShape,
  trialSteps: number,
): number {
  const sameEpochs = Math.round((trialSteps * shape.rows) / shape.searchRows);
  const fit = Math.floor(
    (SAFETY * secondsLeft - finalFixedSeconds(cost, shape)) / cost.stepSeconds,
  );
  return Math.max(trialSteps, Math.min(sameEpochs, fit));
}

/**
 * The step time the search's trials showed, (seconds − set-up − evaluation) / steps, the median
 * over the finished trials (a diverged one stops early and is left out); the calibration's when
 * none finished.
 */
export function observedStepCost(
  cost: StepCost,
  finishedTrialSeconds: readonly (number | null)[],
  trialSteps: number,
): StepCost {
  const perStep = finishedTrialSeconds
    .filter((seconds): seconds is number => seconds !== null)
    .map((seconds) => (seconds - cost.setupSeconds - cost.evaluationSeconds) / trialSteps)
    .sort((a, b) => a - b);
  if (perStep.length === 0) return cost;
  const median = perStep[Math.floor((perStep.length - 1) / 2)];
  return { ...cost, stepSeconds: Math.max(median, 1e-6) };
}

/** The final run's set-up and its evaluation, on ~1.25 times the search task's rows. */
function finalFixedSeconds(cost: StepCost, shape: SearchShape): number {
  return cost.setupSeconds + (cost.evaluationSeconds * shape.rows) / shape.searchRows;
}
