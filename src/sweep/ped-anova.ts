/**
 * PED-ANOVA (Watanabe, Bansal & Hutter 2023, "PED-ANOVA: efficiently quantifying hyperparameter
 * importance in arbitrary subspaces"): a parameter matters for reaching the top γ′ of the results
 * when its values among the top configurations are distributed unlike its values among all of
 * them. With p_all and p_top the densities of its unit coordinate over all and over the top
 * configurations, the importance is the Pearson divergence
 *   ∫ (p_top(x)/p_all(x) − 1)² p_all(x) dx,
 * shares normalised to sum to 1 (the paper's γ′²/γ² factor is the same for every parameter). A
 * numeric parameter's densities are Gaussian kernel estimates on [0, 1] (Scott's bandwidth,
 * renormalised inside the interval), a categorical one's are its frequencies. The intervals come
 * from a bootstrap over configurations (basic intervals, spread.ts).
 */
import type { Parameter } from './spec.ts';
import { basicInterval, bootstrapDraws } from './spread.ts';
import type { Importance } from './fanova.ts';

/** Points of the grid the numeric densities are integrated on. */
const GRID = 200;
/** Default top fraction γ′ of configurations, and the fewest configurations it holds. */
export const TOP_FRACTION = 0.1;
const MIN_TOP = 2;

export interface PedAnovaInput {
  parameters: Parameter[];
  /** Each configuration's unit coordinates and its score (higher is better). */
  points: number[][];
  scores: number[];
}

/** Unnormalised Pearson divergences, one per parameter. */
export function pedAnovaDivergences(input: PedAnovaInput, topFraction = TOP_FRACTION): number[] {
  const n = input.scores.length;
  // Equal scores have no top set: nothing matters.
  if (Math.max(...input.scores) === Math.min(...input.scores)) return input.parameters.map(() => 0);
  const order = input.scores.map((score, i) => ({ score, i })).sort((a, b) => b.score - a.score);
  const topCount = Math.min(n, Math.max(MIN_TOP, Math.ceil(topFraction * n)));
  const top = order.slice(0, topCount).map(({ i }) => i);
  return input.parameters.map((parameter, j) => {
    const all = input.points.map((point) => point[j]);
    const best = top.map((i) => input.points[i][j]);
    return parameter.kind === 'values'
      ? categoricalDivergence(all, best, parameter.values.length)
      : numericDivergence(all, best);
  });
}

function shares(divergences: number[]): number[] {
  const total = divergences.reduce((sum, d) => sum + d, 0);
  return divergences.map((d) => (total > 0 ? d / total : 0));
}

export function pedAnova(input: PedAnovaInput, seed = 0, topFraction = TOP_FRACTION): Importance[] {
  const point = shares(pedAnovaDivergences(input, topFraction));
  const rows = input.scores.map((_, i) => i);
  return input.parameters.map((_, j) => {
    const draws = bootstrapDraws(
      rows,
      (sample) => {
        const resampled = {
          parameters: input.parameters,
          points: sample.map((i) => input.points[i]),
          scores: sample.map((i) => input.scores[i]),
        };
        return shares(pedAnovaDivergences(resampled, topFraction))[j];
      },
      seed + j,
      200,
    );
    const [low, high] = basicInterval(point[j], draws, 0, 1);
    return { share: point[j], low, high };
  });
}

function numericDivergence(all: number[], top: number[]): number {
  const bandwidth = scottBandwidth(all);
  const pAll = kernelDensity(all, bandwidth);
  const pTop = kernelDensity(top, bandwidth);
  let divergence = 0;
  for (let g = 0; g < GRID; g++) divergence += ((pTop[g] / pAll[g] - 1) ** 2 * pAll[g]) / GRID;
  return divergence;
}

/** Scott's rule h = σ n^(−1/5), kept within [0.02, 0.5] of the unit interval. */
function scottBandwidth(values: number[]): number {
  const m = values.reduce((sum, x) => sum + x, 0) / values.length;
  const sigma = Math.sqrt(
    values.reduce((sum, x) => sum + (x - m) ** 2, 0) / Math.max(1, values.length - 1),
  );
  return Math.min(0.5, Math.max(0.02, sigma * values.length ** -0.2));
}

/** Kernel density at the grid's cell centres, each kernel renormalised to mass 1 inside [0, 1]. */
function kernelDensity(values: number[], bandwidth: number): Float64Array {
  const density = new Float64Array(GRID);
  for (const value of values) {
    const kernel = Float64Array.from({ length: GRID }, (_, g) =>
      Math.exp(-0.5 * (((g + 0.5) / GRID - value) / bandwidth) ** 2),
    );
    const mass = kernel.reduce((sum, k) => sum + k, 0) / GRID;
    for (let g = 0; g < GRID; g++) density[g] += kernel[g] / mass / values.length;
  }
  return density;
}

/** Frequencies of the categories (cells of the unit coordinate), with one pseudo-count spread over them. */
function categoricalDivergence(all: number[], top: number[], categories: number): number {
  const frequencies = (values: number[]) => {
    const counts = new Array<number>(categories).fill(1 / categories);
    for (const value of values)
      counts[Math.min(categories - 1, Math.floor(value * categories))] += 1;
    return counts.map((count) => count / (values.length + 1));
  };
  const pAll = frequencies(all);
  const pTop = frequencies(top);
  return pAll.reduce((sum, p, k) => sum + (pTop[k] / p - 1) ** 2 * p, 0);
}
