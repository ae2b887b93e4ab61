/**
 * Knife edges: for each parameter, where along its searched range the recipe works. The range (in
 * the unit coordinates it was searched in: log space for `log`) is cut into bins — one per value
 * for a categorical or a grid parameter, else ⌈√configurations⌉ equal bins (3 to 10) — and each bin's
 * success rate is taken over every trial whose configuration falls in it (the other parameters
 * averaged over as the sampler drew them). The working interval is the longest run of adjacent
 * bins whose rate is ≥ 50%; its width is the fraction of the searched range it spans.
 */
import { decode } from './plan.ts';
import type { Parameter, ParameterValue } from './spec.ts';

export interface KnifeEdgeBin {
  /** The bin in unit coordinates, and its values at both ends (a category's value for both). */
  from: number;
  to: number;
  low: ParameterValue;
  high: ParameterValue;
  trials: number;
  successes: number;
  rate: number;
}

export interface KnifeEdge {
  param: string;
  /** The working interval's ends in parameter values (null when no bin reaches 50%). */
  low: ParameterValue | null;
  high: ParameterValue | null;
  /** Fraction of the searched range that works (0 when none). */
  width: number;
  /** Separate runs of working bins (more than one: the working region is not one interval). */
  runs: number;
  bins: KnifeEdgeBin[];
}

export interface KnifeEdgeTrial {
  /** The trial's unit coordinate of each parameter. */
  point: number[];
  success: boolean;
}

export function knifeEdges(
  parameters: Parameter[],
  trials: KnifeEdgeTrial[],
  binsFor: (j: number) => number,
): KnifeEdge[] {
  return parameters.map((parameter, j) =>
    knifeEdge(
      parameter,
      trials.map((t) => ({ u: t.point[j], success: t.success })),
      binsFor(j),
    ),
  );
}

/** The bin count of parameter j: its grid levels or categories, else from the configuration count. */
export function defaultBinCount(
  parameter: Parameter,
  configurations: number,
  gridLevels?: number,
): number {
  if (parameter.kind === 'values') return parameter.values.length;
  if (gridLevels !== undefined) return gridLevels;
  if (parameter.kind === 'int')
    return Math.min(
      parameter.high - parameter.low + 1,
      Math.max(3, Math.min(10, Math.ceil(Math.sqrt(configurations)))),
    );
  return Math.max(3, Math.min(10, Math.ceil(Math.sqrt(configurations))));
}

function knifeEdge(
  parameter: Parameter,
  trials: { u: number; success: boolean }[],
  count: number,
): KnifeEdge {
  const bins: KnifeEdgeBin[] = Array.from({ length: count }, (_, b) => {
    const from = b / count;
    const to = (b + 1) / count;
    const centre = (from + to) / 2;
    const categorical = parameter.kind === 'values';
    return {
      from,
      to,
      low: categorical ? decode(parameter, centre) : decode(parameter, from),
      high: categorical ? decode(parameter, centre) : decode(parameter, to),
      trials: 0,
      successes: 0,
      rate: 0,
    };
  });
  for (const { u, success } of trials) {
    const bin = bins[Math.min(count - 1, Math.floor(u * count))];
    bin.trials += 1;
    if (success) bin.successes += 1;
  }
  for (const bin of bins) bin.rate = bin.trials === 0 ? 0 : bin.successes / bin.trials;
  const runs = workingRuns(bins);
  const longest = runs.sort((a, b) => b[1] - b[0] - (a[1] - a[0]))[0];
  if (!longest) return { param: parameter.name, low: null, high: null, width: 0, runs: 0, bins };
  const [first, last] = longest;
  return {
    param: parameter.name,
    low: bins[first].low,
    high: bins[last].high,
    width: (last - first + 1) / count,
    runs: runs.length,
    bins,
  };
}

/** [first, last] bin indices of each run of adjacent bins with trials and a rate ≥ ½. */
function workingRuns(bins: KnifeEdgeBin[]): [number, number][] {
  const runs: [number, number][] = [];
  bins.forEach((bin, b) => {
    if (!(bin.trials > 0 && bin.rate >= 0.5)) return;
    const previous = runs.at(-1);
    if (previous && previous[1] === b - 1) previous[1] = b;
    else runs.push([b, b]);
  });
  return runs;
}
