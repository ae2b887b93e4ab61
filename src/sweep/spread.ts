/**
 * How often a recipe works and how much a configuration's result moves with the seed: the success
 * rate with its Wilson interval, and per configuration the mean, the standard deviation over seeds,
 * the range and a bootstrap interval of the mean.
 */
import { seededRandom } from '../random.ts';
import { wilsonInterval } from '../stats.ts';

export function mean(values: readonly number[]): number {
  return values.reduce((sum, x) => sum + x, 0) / values.length;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function standardDeviation(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, x) => sum + (x - m) ** 2, 0) / (values.length - 1));
}

/** The q-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

/**
 * Percentile bootstrap interval (95%) of a statistic: the statistic of `resamples` samples drawn
 * with replacement, its 2.5th and 97.5th percentiles. Seeded, so the same data give the same interval.
 */
export function bootstrapInterval<T>(
  values: readonly T[],
  statistic: (sample: T[]) => number,
  seed: number,
  resamples = 1000,
): [number, number] {
  const draws = bootstrapDraws(values, statistic, seed, resamples);
  return draws.length === 0
    ? [Number.NaN, Number.NaN]
    : [quantile(draws, 0.025), quantile(draws, 0.975)];
}

/**
 * Basic (pivotal) bootstrap interval (95%): [2θ̂ − q₉₇.₅, 2θ̂ − q₂.₅] of the resampled statistics,
 * kept within [low, high]. Where resampling itself biases the statistic (importances recomputed
 * on samples with repeated rows), the percentile interval carries that bias and may miss the
 * estimate; the basic interval reflects it about the estimate instead.
 */
export function basicInterval(
  estimate: number,
  draws: number[],
  low = -Infinity,
  high = Infinity,
): [number, number] {
  if (draws.length === 0) return [Number.NaN, Number.NaN];
  const clamp = (x: number) => Math.min(high, Math.max(low, x));
  return [
    clamp(2 * estimate - quantile(draws, 0.975)),
    clamp(2 * estimate - quantile(draws, 0.025)),
  ];
}

/** The finite values of a statistic over `resamples` samples drawn with replacement (seeded). */
export function bootstrapDraws<T>(
  values: readonly T[],
  statistic: (sample: T[]) => number,
  seed: number,
  resamples: number,
): number[] {
  const random = seededRandom(seed);
  const draws: number[] = [];
  for (let b = 0; b < resamples; b++) {
    const sample = Array.from(
      { length: values.length },
      () => values[Math.floor(random() * values.length)],
    );
    const value = statistic(sample);
    if (Number.isFinite(value)) draws.push(value);
  }
  return draws;
}

export interface SuccessRate {
  successes: number;
  trials: number;
  rate: number;
  /** Wilson score interval at 95%. */
  low: number;
  high: number;
}

export function successRate(successes: number, trials: number): SuccessRate {
  const [low, high] = wilsonInterval(successes, trials);
  return { successes, trials, rate: trials === 0 ? 0 : successes / trials, low, high };
}

export interface SeedSpread {
  mean: number;
  std: number;
  min: number;
  max: number;
  range: number;
  /** Bootstrap 95% interval of the mean over seeds. */
  meanLow: number;
  meanHigh: number;
}

export function seedSpread(metrics: readonly number[], seed: number): SeedSpread | null {
  if (metrics.length === 0) return null;
  const [meanLow, meanHigh] = bootstrapInterval(metrics, mean, seed);
  const min = Math.min(...metrics);
  const max = Math.max(...metrics);
  return {
    mean: mean(metrics),
    std: standardDeviation(metrics),
    min,
    max,
    range: max - min,
    meanLow,
    meanHigh,
  };
}
