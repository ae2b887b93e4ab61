/**
 * How a backprop contender spends its budget. teardown's trainer runs a given number of steps,
 * not a given time, so the steps are planned from a measured cost: a short calibration run of
 * the trainer gives the seconds per step, the set-up of a run (step graph, sessions) and its
 * final evaluation. Then, with K configurations in the search, trials of s steps on the cut
 * = round(0.8·N) search rows, and a final run of the same epochs on all N rows,
 * s·N/cut steps:
 *
 *   budget ≈ worker start + K·(set-up + evaluation) + (K + N/cut)·s·step + final set-up
 *
 * solved for s with a safety margin. The final run is planned again after the search, from the
 * time then left and the step time the trials showed: at most s·N/cut steps, fewer when the
 * search took longer than planned (the machine's load changes under it), but at least
 * MIN_TRIAL_STEPS.
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

/** Steps of the calibration run: four onnxruntime runs of 16 (train/trainer.ts). */
const CALIBRATION_STEPS = 64;
/** Estimated start of sweep()'s worker process (Node, tsx in a checkout, onnxruntime). */
export const WORKER_START_SECONDS = 1.5;
/** The share of the budget the plan fills, against noise in the measured costs. */
const SAFETY = 0.85;
/** The fewest steps a search trial takes, whatever the budget. */
export const MIN_TRIAL_STEPS = 20;

/**
 * Times the trainer on `spec` for 64 steps. The progress callback hears each step when its run
 * of 16 ends (the trainer's runs end at steps 16, 32, 48, 64; the evaluation comes before step
 * 64's tick): step = (t₄₈ − t₁₆)/32, set-up = t₁₆ − 16·step, evaluation = t₆₄ − t₄₈ − 16·step.
 */
export async function measureStepCost(
  spec: TrainSpecInput,
  options: { threads: number; signal?: AbortSignal },
): Promise<StepCost> {
  const started = performance.now();
  const ticks: number[] = [];
  const result = await train(
    { ...spec, steps: CALIBRATION_STEPS, evalEvery: CALIBRATION_STEPS },
    {
      threads: options.threads,
      signal: options.signal,
      onProgress: (event) => (ticks[event.done] = (performance.now() - started) / 1000),
    },
  );
  await result.trained.release();
  const seconds = (performance.now() - started) / 1000;
  const [at16, at48, at64] = [ticks[16], ticks[48], ticks[64] ?? seconds];
  const stepSeconds = Math.max((at48 - at16) / 32, 1e-6);
  return {
    stepSeconds,
    setupSeconds: Math.max(at16 - 16 * stepSeconds, 0),
    evaluationSeconds: Math.max(at64 - at48 - 16 * stepSeconds, 0),
    seconds,
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
    WORKER_START_SECONDS +
    configurations * (cost.setupSeconds + cost.evaluationSeconds) +
    finalFixedSeconds(cost, shape);
  const stepsPerTrialStep = configurations + rows / searchRows;
  const steps = Math.floor((SAFETY * secondsLeft - fixed) / (stepsPerTrialStep * cost.stepSeconds));
  return Math.min(Math.max(steps, MIN_TRIAL_STEPS), maxSteps);
}

/**
 * Steps of the final run: the trials' epochs on all rows, s·N/cut, or as many as fit in the time
 * left, but at least MIN_TRIAL_STEPS.
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
  return Math.max(MIN_TRIAL_STEPS, Math.min(sameEpochs, fit));
}

/**
 * The step time the search's trials showed, (seconds − set-up − evaluation) / steps, the median
 * over the trials after the first (whose seconds include loading the trainer in the worker);
 * the calibration's when fewer than two trials finished.
 */
export function observedStepCost(
  cost: StepCost,
  trialSeconds: readonly (number | null)[],
  trialSteps: number,
): StepCost {
  const perStep = trialSeconds
    .slice(1)
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
