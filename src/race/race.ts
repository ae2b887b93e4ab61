/**
 * The race itself, as a library call: every contender trains on the same training rows with the
 * same budget, once per seed, and is measured on the same test rows (and shifted rows, when
 * given) by the same code. A contender that fails is reported with its reason and the race goes
 * on; an abort stops the whole race. With `audit`, the library's audit runs on every trained
 * classifier over the test rows (calibration, worst group, column reliance, counterfactual
 * shortcuts, robustness), and each classifier's smallest faithful description is measured
 * (race/description.ts). race/scorecard.ts turns the results into the scorecard.
 *
 *   const entrants = contendersNamed('knn,logistic,dfa');
 *   const results = await race(entrants, { train, test }, { seeds: [1, 2, 3], budgetSeconds: 30 });
 *   const card = scorecard(results, settings);
 */
import { audit, type AuditResult } from '../api/audit.ts';
import { permutation, takeRows } from '../data/tasks.ts';
import { InputError } from '../errors.ts';
import { trackProgress, type ProgressEvent, type ProgressOptions } from '../progress.ts';
import { wilsonInterval } from '../stats.ts';
import { mean, standardDeviation } from '../sweep/spread.ts';
import {
  featureMatrix,
  type ClassifierSize,
  type Contender,
  type RaceData,
  type TrainedClassifier,
} from './contender.ts';
import {
  describeClassifier,
  type DescriptionOptions,
  type DescriptionSize,
} from './description.ts';

export interface RaceSplit {
  train: RaceData;
  test: RaceData;
  /** Rows from the deployment distribution, where the task has them. */
  shifted?: RaceData;
}

export interface RaceOptions extends ProgressOptions {
  seeds: readonly number[];
  /** Per contender and seed. */
  budgetSeconds: number;
  threads?: number;
  /** Shares of the training rows to train on, each in (0, 1] (default [1]): data efficiency. */
  fractions?: readonly number[];
  /** Run the library's audit on every trained classifier, on the test rows. */
  audit?: RaceAuditOptions;
  /**
   * The smallest faithful description of every trained classifier (description.ts: fitted on the
   * training rows, faithfulness on the test rows); false leaves it out. Default: measured.
   */
  description?: false | Pick<DescriptionOptions, 'target' | 'searchRows'>;
}

export interface RaceAuditOptions {
  /** Per test row, as audit() takes them; a table column of the same name is that column. */
  attributes?: Record<string, ArrayLike<number>>;
  /** The test rows' column names (a table's columns get their own counterfactual). */
  featureNames?: string[];
  /** 'NAME:TRANSFORM' per attribute, as audit() takes them. */
  counterfactuals?: string[];
}

/** What the scorecard takes from the audit of one trained classifier. */
export interface AuditSummary {
  ece: number;
  worstGroup?: { group: string; accuracy: number; size: number };
  /** Accuracy lost, in points, when each column is shuffled (tables). */
  featureReliance: { feature: string; reliance: number }[];
  /**
   * The counterfactual flip rate of every attribute tested (a Wilson 95% interval over the test
   * rows), a finding or not; `severity` when the audit made a finding of it.
   */
  shortcuts: {
    attribute: string;
    transform: string;
    flipRate: number;
    interval: [number, number];
    severity?: string;
  }[];
  /**
   * The flip rate under small Gaussian noise (the audit's robustness check, a Wilson 95% interval
   * over the test rows), a finding or not; absent where the audit could not perturb the input.
   */
  robustness?: {
    perturbation: string;
    flipRate: number;
    interval: [number, number];
    severity?: string;
  };
  findings: number;
}

export interface Accuracy {
  value: number;
  /** Wilson 95% interval over the rows. */
  interval: [number, number];
}

export interface SeedRun {
  seed: number;
  /** The share of the training rows trained on. */
  fraction: number;
  accuracy: { in: Accuracy; shifted?: Accuracy };
  trainSeconds: number;
  predictMicrosPerExample: number;
  size: ClassifierSize;
  audit?: AuditSummary;
  /** Comprehensibility: the size of the smallest faithful description found (description.ts). */
  description?: DescriptionSize;
}

export interface ContenderResult {
  name: string;
  family: Contender['family'];
  usesBackprop: boolean;
  runs: SeedRun[];
  /**
   * Accuracy in distribution over the seeds at the largest fraction: mean and sample standard
   * deviation (0 for one seed).
   */
  seedMean?: number;
  seedStd?: number;
  /** Why the contender stopped, when it failed (its other seeds are not run). */
  failed?: string;
}

export async function race(
  contenders: readonly Contender[],
  split: RaceSplit,
  options: RaceOptions,
): Promise<ContenderResult[]> {
  const fractions = checkedFractions(options.fractions ?? [1]);
  checkBudget(contenders, options.budgetSeconds);
  // Checked once, before any contender, and the classes fixed by the whole training set.
  const { classes } = featureMatrix(split.train);
  // The rows every contender is measured on too: a NaN there would fail each contender in turn.
  for (const rows of [split.test, split.shifted]) if (rows) featureMatrix({ ...rows, classes });
  const rounds = fractions.flatMap((fraction) => options.seeds.map((seed) => ({ fraction, seed })));
  const progress = raceProgress(contenders.length * rounds.length, options);
  const results: ContenderResult[] = [];
  for (const contender of contenders) {
    const { name, family, usesBackprop } = contender;
    const result: ContenderResult = { name, family, usesBackprop, runs: [] };
    results.push(result);
    let attempted = 0;
    for (const { fraction, seed } of rounds) {
      attempted++;
      const round = `${name}, ${Math.round(fraction * 100)}% of the data, seed ${seed}`;
      try {
        const train = { ...trainingRows(split.train, fraction, seed), classes };
        const onProgress = progress.within(round, options.budgetSeconds);
        const run = await runSeed(contender, { ...split, train }, seed, { ...options, onProgress });
        result.runs.push({ ...run, fraction });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        result.failed = error instanceof Error ? error.message : String(error);
        break;
      } finally {
        progress.end(1, round);
      }
    }
    // A failed contender's remaining rounds are not run: counted, so the progress reaches its total.
    if (attempted < rounds.length) progress.end(rounds.length - attempted, `${name} failed`);
    const full = result.runs.filter((run) => run.fraction === Math.max(...fractions));
    Object.assign(result, seedSpread(full.map((run) => run.accuracy.in.value)));
  }
  return results;
}

/** A round's share shown before it is measured: it ends only with its own tick. */
const WITHIN_ROUND_CAP = 0.99;

/**
 * The race's progress in rounds (one contender trained on one fraction and seed, then measured):
 * `end` counts whole rounds as they end; `within` is the onProgress a contender trains with, and
 * moves the bar inside the round by the larger of two shares — the steps the contender reports of
 * its total (done / total), and its training seconds of the budget (a learner that stops on the
 * clock long before its step limit) — never backwards, and at most WITHIN_ROUND_CAP, so that a
 * round counts once, when it ends.
 */
function raceProgress(total: number, options: ProgressOptions) {
  const tracker = trackProgress('race', total, options);
  let ended = 0;
  return {
    end(count: number, status: string) {
      ended += count;
      tracker.tick(count, status);
    },
    within(round: string, budgetSeconds: number): ProgressOptions['onProgress'] {
      const report = options.onProgress;
      if (!report) return undefined;
      const started = performance.now();
      let shown = 0;
      return (event: ProgressEvent) => {
        const steps = event.total > 0 ? event.done / event.total : 0;
        const clock = (performance.now() - started) / 1000 / budgetSeconds;
        const share = Math.min(WITHIN_ROUND_CAP, Math.max(steps, clock));
        // Hundredths of a round, so that the count reads "1.37/4".
        shown = Math.max(shown, Math.floor(100 * share) / 100);
        const said = `${event.task} ${event.done}/${event.total}`;
        const status = `${round}: ${said}${event.status ? `, ${event.status}` : ''}`;
        report({ task: 'race', done: ended + shown, total, status });
      };
    },
  };
}

function checkedFractions(fractions: readonly number[]): number[] {
  const bad = fractions.find((fraction) => !(fraction > 0 && fraction <= 1));
  if (bad !== undefined || fractions.length === 0) {
    throw new InputError(
      `Data fractions must be in (0, 1], e.g. 0.1,0.3,1; got [${fractions.join(', ')}].`,
    );
  }
  return [...fractions];
}

/** Refuses, before anything trains, a budget no contender can use or below one's minimum. */
export function checkBudget(contenders: readonly Contender[], budgetSeconds: number): void {
  if (!(budgetSeconds > 0) || !Number.isFinite(budgetSeconds)) {
    throw new InputError(
      `The budget must be a positive number of seconds per contender and seed; got ${budgetSeconds}.`,
    );
  }
  const short = contenders.find((c) => budgetSeconds < (c.minimumBudgetSeconds ?? 0));
  if (short) {
    throw new InputError(
      `A budget of ${budgetSeconds} s is below what contender '${short.name}' needs ` +
        `(${short.minimumBudgetSeconds} s per seed): give --budget ${short.minimumBudgetSeconds} ` +
        `or more, or leave '${short.name}' out of --contenders.`,
    );
  }
}

/**
 * The first ⌈fraction · n⌉ rows of a permutation drawn from the seed: for a seed and a fraction,
 * every contender trains on the same rows.
 */
export function trainingRows(train: RaceData, fraction: number, seed: number): RaceData {
  if (fraction === 1) return train;
  const rows = train.inputs.dims[0];
  const chosen = permutation(rows, seed).slice(0, Math.max(1, Math.ceil(fraction * rows)));
  const labels =
    'dims' in train.labels
      ? takeRows(train.labels, chosen)
      : chosen.map((row) => Number((train.labels as ArrayLike<number>)[row]));
  return { ...train, inputs: takeRows(train.inputs, chosen), labels };
}

async function runSeed(
  contender: Contender,
  split: RaceSplit,
  seed: number,
  options: RaceOptions,
): Promise<Omit<SeedRun, 'fraction'>> {
  const started = performance.now();
  const classifier = await contender.train(split.train, {
    seed,
    budgetSeconds: options.budgetSeconds,
    threads: options.threads,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  const trainSeconds = (performance.now() - started) / 1000;
  try {
    const predictStarted = performance.now();
    const inDistribution = await accuracyOn(classifier, split.test);
    const rows = split.test.inputs.dims[0];
    const predictMicrosPerExample = ((performance.now() - predictStarted) * 1000) / rows;
    const shifted = split.shifted && (await accuracyOn(classifier, split.shifted));
    const audited = options.audit && (await auditSummary(classifier, split.test, options));
    const description =
      options.description === false
        ? undefined
        : await describeClassifier(classifier, split, {
            ...options.description,
            threads: options.threads,
            signal: options.signal,
          });
    return {
      seed,
      accuracy: { in: inDistribution, ...(shifted ? { shifted } : {}) },
      trainSeconds,
      predictMicrosPerExample,
      size: classifier.size,
      ...(audited ? { audit: audited } : {}),
      ...(description ? { description } : {}),
    };
  } finally {
    await classifier.release();
  }
}

async function auditSummary(
  classifier: TrainedClassifier,
  test: RaceData,
  options: RaceOptions,
): Promise<AuditSummary> {
  const { attributes, featureNames, counterfactuals } = options.audit ?? {};
  const result = await audit(
    classifier,
    { inputs: test.inputs, labels: test.labels, attributes, featureNames, name: 'the test rows' },
    { counterfactuals, signal: options.signal },
  );
  const shortcuts = result.counterfactuals.map(({ attribute, transform, flipRate, interval }) => {
    const finding = result.findings.find(
      (f) => f.detector === 'shortcut-attribute' && f.attribute === attribute,
    );
    return {
      attribute,
      transform,
      flipRate,
      interval,
      ...(finding ? { severity: finding.severity } : {}),
    };
  });
  return {
    ece: result.calibration.ece,
    ...(result.segments.worstGroup ? { worstGroup: result.segments.worstGroup } : {}),
    featureReliance: result.featureReliance.map(({ feature, reliance }) => ({ feature, reliance })),
    shortcuts,
    ...(result.robustness ? { robustness: robustnessSummary(result) } : {}),
    findings: result.findings.length,
  };
}

function robustnessSummary(result: AuditResult): NonNullable<AuditSummary['robustness']> {
  const { perturbation, flipRate, interval } = result.robustness!;
  const finding = result.findings.find((f) => f.detector === 'robustness');
  return { perturbation, flipRate, interval, ...(finding ? { severity: finding.severity } : {}) };
}

/** The share of rows whose most probable class (the first among equals) is the label. */
async function accuracyOn(classifier: TrainedClassifier, data: RaceData): Promise<Accuracy> {
  const { labels, rows } = featureMatrix({ ...data, classes: classifier.classes });
  const probabilities = (await classifier.predictProba(data.inputs)).data as ArrayLike<number>;
  const classes = classifier.classes;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (probabilities[r * classes + c] > probabilities[r * classes + best]) best = c;
    }
    if (best === labels[r]) correct++;
  }
  return { value: correct / rows, interval: wilsonInterval(correct, rows) };
}

function seedSpread(values: readonly number[]): { seedMean?: number; seedStd?: number } {
  if (values.length === 0) return {};
  return { seedMean: mean(values), seedStd: standardDeviation(values) };
}
