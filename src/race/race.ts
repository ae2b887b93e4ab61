/**
 * The race itself, as a library call: every contender trains on the same training rows with the
 * same budget, once per seed, and is measured on the same test rows (and shifted rows, when
 * given) by the same code. A contender that fails is reported with its reason and the race goes
 * on; an abort stops the whole race. The audit's detectors and the scorecard come later
 * (issue 16); this gives their inputs: the trained classifiers' accuracy, time and size.
 *
 *   const entrants = contendersNamed('knn,logistic,dfa');
 *   const results = await race(entrants, { train, test }, { seeds: [1, 2, 3], budgetSeconds: 30 });
 */
import { trackProgress, type ProgressOptions } from '../progress.ts';
import { wilsonInterval } from '../stats.ts';
import {
  featureMatrix,
  type ClassifierSize,
  type Contender,
  type RaceData,
  type TrainedClassifier,
} from './contender.ts';

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
}

export interface Accuracy {
  value: number;
  /** Wilson 95% interval over the rows. */
  interval: [number, number];
}

export interface SeedRun {
  seed: number;
  accuracy: { in: Accuracy; shifted?: Accuracy };
  trainSeconds: number;
  predictMicrosPerExample: number;
  size: ClassifierSize;
}

export interface ContenderResult {
  name: string;
  family: Contender['family'];
  usesBackprop: boolean;
  runs: SeedRun[];
  /** Accuracy in distribution over seeds: mean and sample standard deviation (0 for one seed). */
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
  const progress = trackProgress('race', contenders.length * options.seeds.length, options);
  const results: ContenderResult[] = [];
  for (const contender of contenders) {
    const { name, family, usesBackprop } = contender;
    const result: ContenderResult = { name, family, usesBackprop, runs: [] };
    results.push(result);
    for (const seed of options.seeds) {
      try {
        result.runs.push(await runSeed(contender, split, seed, options));
      } catch (error) {
        if (options.signal?.aborted) throw error;
        result.failed = error instanceof Error ? error.message : String(error);
        break;
      } finally {
        progress.tick(1, `${name}, seed ${seed}`);
      }
    }
    Object.assign(result, seedSpread(result.runs.map((run) => run.accuracy.in.value)));
  }
  return results;
}

async function runSeed(
  contender: Contender,
  split: RaceSplit,
  seed: number,
  options: RaceOptions,
): Promise<SeedRun> {
  const started = performance.now();
  const classifier = await contender.train(split.train, {
    seed,
    budgetSeconds: options.budgetSeconds,
    threads: options.threads,
    signal: options.signal,
  });
  const trainSeconds = (performance.now() - started) / 1000;
  try {
    const predictStarted = performance.now();
    const inDistribution = await accuracyOn(classifier, split.test);
    const rows = split.test.inputs.dims[0];
    const predictMicrosPerExample = ((performance.now() - predictStarted) * 1000) / rows;
    const shifted = split.shifted && (await accuracyOn(classifier, split.shifted));
    return {
      seed,
      accuracy: { in: inDistribution, ...(shifted ? { shifted } : {}) },
      trainSeconds,
      predictMicrosPerExample,
      size: classifier.size,
    };
  } finally {
    await classifier.release();
  }
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
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance =
    values.length > 1
      ? values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (values.length - 1)
      : 0;
  return { seedMean: mean, seedStd: Math.sqrt(variance) };
}
