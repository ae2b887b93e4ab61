/**
 * A sweep's plan: the configurations the sampler draws and the trials (configuration × seed) they
 * make. Every sampler draws points u in the unit cube [0, 1)^d, one coordinate per parameter, and
 * each parameter maps its coordinate to a value (uniform in log space for `log`); the analysis maps
 * values back to the same coordinates, so importance and knife edges are measured in the space
 * that was searched. The plan is a pure function of the spec: a resumed sweep draws it again.
 */
import { seededRandom } from '../random.ts';
import { sobolPoints } from './sobol.ts';
import { gridLevels, type Parameter, type ParameterValue, type SweepSpec } from './spec.ts';

export type Params = Record<string, ParameterValue>;

export interface Configuration {
  index: number;
  params: Params;
}

export interface PlannedTrial {
  configuration: number;
  seed: number;
}

export function planConfigurations(spec: SweepSpec): Configuration[] {
  const points = unitPoints(spec);
  return points.map((point, index) => ({
    index,
    params: Object.fromEntries(spec.parameters.map((p, j) => [p.name, decode(p, point[j])])),
  }));
}

/** Every trial, configuration-major: (0, s₀), (0, s₀ + 1), … (1, s₀), …, s₀ = firstSeed. */
export function planTrials(spec: SweepSpec): PlannedTrial[] {
  return Array.from({ length: spec.configurations * spec.seeds }, (_, i) => ({
    configuration: Math.floor(i / spec.seeds),
    seed: (spec.firstSeed ?? 0) + (i % spec.seeds),
  }));
}

function unitPoints(spec: SweepSpec): number[][] {
  const d = spec.parameters.length;
  if (spec.sampler === 'sobol') return sobolPoints(spec.configurations, d);
  if (spec.sampler === 'random') {
    const random = seededRandom(spec.samplerSeed);
    return Array.from({ length: spec.configurations }, () => Array.from({ length: d }, random));
  }
  return gridPoints(spec.parameters.map((p) => gridLevels(p, spec.levels)));
}

/**
 * The grid's points, the first parameter varying slowest. A numeric parameter's k-th of L levels
 * sits at u = k / (L − 1), its bounds included; a `values` parameter's k-th of n values at the
 * centre of its cell, (k + ½) / n, where decode() reads it back.
 */
function gridPoints(levels: number[]): number[][] {
  let points: number[][] = [[]];
  for (const count of levels) {
    points = points.flatMap((point) => Array.from({ length: count }, (_, k) => [...point, k]));
  }
  return points.map((point) => point.map((k, j) => (levels[j] === 1 ? 0.5 : k / (levels[j] - 1))));
}

/** The value at unit coordinate u ∈ [0, 1]. */
export function decode(parameter: Parameter, u: number): ParameterValue {
  if (parameter.kind === 'values') {
    const n = parameter.values.length;
    return parameter.values[Math.min(n - 1, Math.floor(u * n))];
  }
  const { low, high } = parameter;
  // The bounds exactly (a grid's ends), not exp(log(low)).
  if (u <= 0 && parameter.kind !== 'int') return low;
  if (u >= 1 && parameter.kind !== 'int') return high;
  if (parameter.kind === 'log')
    return Math.exp(Math.log(low) + u * (Math.log(high) - Math.log(low)));
  if (parameter.kind === 'range') return low + u * (high - low);
  // int: the n = high − low + 1 integers share [0, 1) equally; u = 1 (a grid's upper end) is high.
  return Math.min(high, low + Math.floor(u * (high - low + 1)));
}

/** The unit coordinate of a value: the inverse of decode() (an integer or a category at its cell's centre). */
export function encode(parameter: Parameter, value: ParameterValue): number {
  if (parameter.kind === 'values') {
    return (parameter.values.indexOf(value) + 0.5) / parameter.values.length;
  }
  const x = Number(value);
  const { low, high } = parameter;
  if (parameter.kind === 'log')
    return (Math.log(x) - Math.log(low)) / (Math.log(high) - Math.log(low));
  if (parameter.kind === 'range') return (x - low) / (high - low);
  return (x - low + 0.5) / (high - low + 1);
}
