/**
 * The backprop networks of the race: teardown's own MLP and CNN (train/builders.ts), trained by
 * teardown's own trainer (api/train.ts: AdamW, cross-entropy, seeded batches), after a small
 * hyperparameter search through the library's sweep() inside the same budget as every other
 * contender:
 *
 *   1. a calibration run times the trainer's steps on these rows (backprop-budget.ts);
 *   2. the search: learning rate × schedule, one trial each, scored on a validation split held
 *      out from the training rows (backprop-search.ts, backprop-tasks.ts);
 *   3. the chosen configuration trained again on all the training rows, for the trials' epochs
 *      (fewer when the search took longer than planned).
 *
 * The test rows are never seen: a contender gets only the training rows.
 *
 *   const mlp = backpropMlp({ hidden: [64] });
 *   const classifier = await mlp.train(data, { seed: 1, budgetSeconds: 30 });
 *   (classifier as BackpropClassifier).run.search.chosen; // { lr, cosine, validationAccuracy }
 */
import { train, type TrainSpecInput } from '../api/train.ts';
import { InputError, InternalError } from '../errors.ts';
import { tensor } from '../tensor.ts';
import type { TrainSpec } from '../train/spec.ts';
import {
  measureStepCost,
  observedStepCost,
  planFinalSteps,
  planTrialSteps,
  type SearchShape,
  type StepCost,
} from './backprop-budget.ts';
import { trainedClassifier } from './backprop-classifier.ts';
import {
  configurationCount,
  DEFAULT_SEARCH,
  searchHyperparameters,
  type SearchResult,
  type SearchSpace,
} from './backprop-search.ts';
import {
  sameRows,
  searchTask,
  searchTrainingRows,
  TaskFolder,
  wholeTask,
  type TaskRows,
} from './backprop-tasks.ts';
import {
  featureMatrix,
  secondsSince,
  type Contender,
  type RaceData,
  type TrainedClassifier,
  type TrainOptions,
} from './contender.ts';
import type { HiddenActivation } from './mlp.ts';

export interface BackpropSettings {
  /** The search's grid (default DEFAULT_SEARCH: 3 learning rates × 2 schedules). */
  search?: Partial<SearchSpace>;
  /** Examples per step (default 64, the trainer's). */
  batch?: number;
  /** Steps of each search trial at most (default: as many as the budget allows). */
  maxTrialSteps?: number;
}

export interface MlpSettings extends BackpropSettings {
  /** Hidden widths, as `mlp:hidden=…` (default [64]: the race's shared widths). */
  hidden?: number[];
  act?: HiddenActivation;
}

export interface CnnSettings extends BackpropSettings {
  /** Channels of each conv(3×3) → act → maxpool(2) block, as `cnn:channels=…` (default 8-16). */
  channels?: number[];
  /** Units of the fully connected layer before the head (default 32). */
  fc?: number;
  act?: HiddenActivation;
}

/** How the budget went, and what was chosen. */
export interface BackpropRun {
  search: SearchResult;
  cost: StepCost;
  shape: SearchShape;
  trialSteps: number;
  finalSteps: number;
  /** The final run's spec as the trainer completed it (its task names a file now removed). */
  spec: TrainSpec;
  finalSeconds: number;
}

export type BackpropClassifier = TrainedClassifier & { run: BackpropRun };

/**
 * The least budget for the calibration, 6 trials of a few hundred steps (MLP) or ~70 (CNN) and
 * a final run, measured on colored-mnist's 8,000 training images (2×14×14), one thread, load
 * average 7 on two cores: at a 3 s budget the MLP ran 407 steps a trial in 3.1 s; at 5 s the
 * CNN ran 73 steps a trial in 4.9 s (larger images need more).
 */
const MINIMUM_BUDGET_SECONDS = { mlp: 3, cnn: 5 };

export function backpropMlp(settings: MlpSettings = {}): Contender {
  const hidden = settings.hidden ?? [64];
  if (hidden.length === 0 || hidden.some((width) => !Number.isInteger(width) || width < 1)) {
    throw new InputError(
      `The backprop MLP's hidden widths must be positive integers; got [${hidden.join(', ')}].`,
    );
  }
  const model = `mlp:hidden=${hidden.join('-')},act=${settings.act ?? 'relu'}`;
  return backpropContender('backprop MLP', MINIMUM_BUDGET_SECONDS.mlp, settings, (data) => {
    // Images stay images, as the trainer builds an MLP for them (Flatten, then fc1); other
    // shapes are flattened to features. Either way it predicts from any shape of as many values.
    const dims = data.inputs.dims.length === 4 ? data.inputs.dims.slice(1) : undefined;
    return { model, dims: dims ?? [featureMatrix(data).features], exactShape: false };
  });
}

export function backpropCnn(settings: CnnSettings = {}): Contender {
  const channels = settings.channels ?? [8, 16];
  const [fc, act] = [settings.fc ?? 32, settings.act ?? 'relu'];
  const model = `cnn:channels=${channels.join('-')},fc=${fc},act=${act}`;
  return backpropContender('backprop CNN', MINIMUM_BUDGET_SECONDS.cnn, settings, (data) => {
    const dims = data.inputs.dims;
    if (dims.length !== 4) {
      throw new InputError(
        `The CNN needs images [examples, channels, height, width]; these inputs have shape ` +
          `[${dims.join(', ')}]: race it on an image task, or leave 'cnn' out of --contenders.`,
      );
    }
    const smallest = 2 ** channels.length;
    if (Math.min(dims[2], dims[3]) < smallest) {
      throw new InputError(
        `The CNN halves its images at each of its ${channels.length} blocks: they need at ` +
          `least ${smallest}×${smallest} pixels; these are ${dims[2]}×${dims[3]}.`,
      );
    }
    return { model, dims: dims.slice(1), exactShape: true };
  });
}

/** What the two contenders differ in: the model spec, and the shape one example is fed in. */
type Architecture = (data: RaceData) => { model: string; dims: number[]; exactShape: boolean };

function backpropContender(
  name: string,
  minimumBudgetSeconds: number,
  settings: BackpropSettings,
  architecture: Architecture,
): Contender {
  return {
    name,
    family: 'network',
    usesBackprop: true,
    minimumBudgetSeconds,
    train: (data, options) => trainBackprop(data, options, settings, architecture),
  };
}

/** Calibrate, search, train the chosen configuration on every row (see the file's comment). */
async function trainBackprop(
  data: RaceData,
  options: TrainOptions,
  settings: BackpropSettings,
  architecture: Architecture,
): Promise<BackpropClassifier> {
  options.signal?.throwIfAborted();
  const started = performance.now();
  const secondsLeft = () => options.budgetSeconds - secondsSince(started);
  const { model, dims, exactShape } = architecture(data);
  const matrix = featureMatrix(data);
  if (!Number.isInteger(options.seed) || options.seed < 0) {
    throw new InputError(
      `The backprop contenders take a non-negative integer seed; got ${options.seed}.`,
    );
  }
  const rows: TaskRows = {
    inputs: tensor('float32', [matrix.rows, ...dims], matrix.values),
    labels: tensor('int64', [matrix.rows], Array.from(matrix.labels)),
  };
  const recipe = { model, batch: settings.batch ?? 64, seed: options.seed };
  const folder = TaskFolder.create();
  try {
    const searched = await calibrateAndSearch(folder, rows, recipe, settings, options, secondsLeft);
    const { search, cost, trialSteps, shape } = searched;
    const finished = search.trials.filter((trial) => trial.validationAccuracy !== null);
    const seen = observedStepCost(
      cost,
      finished.map((trial) => trial.seconds),
      trialSteps,
    );
    const finalSteps = planFinalSteps(secondsLeft(), seen, shape, trialSteps);
    const finalStarted = performance.now();
    const final = await trainOnEveryRow(
      { ...wholeTask(folder, rows, options.seed), ...recipe },
      search.chosen,
      finalSteps,
      rows,
      options,
    );
    const classifier = await trainedClassifier(
      final.model,
      { dims, exactShape, classes: matrix.classes },
      options.threads ?? 1,
    );
    const finalSeconds = secondsSince(finalStarted);
    return { ...classifier, run: { ...searched, finalSteps, spec: final.spec, finalSeconds } };
  } finally {
    folder.remove();
  }
}

/** Steps 1 and 2: time the trainer on the search task, size the trials, run the search. */
async function calibrateAndSearch(
  folder: TaskFolder,
  rows: TaskRows,
  recipe: { model: string; batch: number; seed: number },
  settings: BackpropSettings,
  options: TrainOptions,
  secondsLeft: () => number,
) {
  const space = { ...DEFAULT_SEARCH, ...settings.search };
  const threads = options.threads ?? 1;
  const validation = searchTask(folder, rows, options.seed);
  const cost = await measureStepCost(
    { ...validation, ...recipe },
    { threads, signal: options.signal },
  );
  const count = rows.labels.dims[0];
  const shape: SearchShape = {
    configurations: configurationCount(space),
    rows: count,
    searchRows: searchTrainingRows(count),
  };
  const trialSteps = planTrialSteps(secondsLeft(), cost, shape, settings.maxTrialSteps);
  const search = await searchHyperparameters(
    space,
    { model: recipe.model, batch: recipe.batch, steps: trialSteps },
    validation,
    {
      folder,
      seed: options.seed,
      threads,
      signal: options.signal,
      onProgress: options.onProgress,
      // Another trial, then a final run of ~N/cut trials' time, must fit in the time left.
      continueAfter: (seconds) => secondsLeft() >= seconds * (1 + count / shape.searchRows),
    },
  );
  return { search, cost, trialSteps, shape };
}

/** The chosen configuration on the whole task; the trainer's rows are checked to be `rows`. */
async function trainOnEveryRow(
  recipe: TrainSpecInput,
  chosen: { lr: number; cosine: boolean },
  steps: number,
  rows: TaskRows,
  options: TrainOptions,
) {
  const result = await train(
    { ...recipe, lr: chosen.lr, schedule: { cosine: chosen.cosine }, steps, evalEvery: steps },
    { threads: options.threads ?? 1, signal: options.signal, onProgress: options.onProgress },
  );
  await result.trained.release();
  if (!sameRows(result.task.train, rows)) {
    throw new InternalError(
      'The backprop final run trained on other rows than the race gave it (the npy task split ' +
        'changed?): please report this.',
    );
  }
  return result;
}
