/**
 * What a sweep's trials say (DIR/sweep.json): how often the recipe works, how much each
 * configuration moves with the seed, how the metric's variance splits between hyperparameters,
 * seeds and their interaction, which parameters matter (fANOVA and PED-ANOVA), and how wide the
 * working range of each parameter is.
 */
import { decomposeVariance, type VarianceDecomposition } from './anova.ts';
import { fanovaImportance } from './fanova.ts';
import { defaultBinCount, knifeEdges, type KnifeEdge } from './knife-edges.ts';
import { pedAnova } from './ped-anova.ts';
import { encode, type Configuration, type Params } from './plan.ts';
import { gridLevels, type SweepSpec } from './spec.ts';
import { quantile, seedSpread, successRate, type SeedSpread, type SuccessRate } from './spread.ts';
import type { TrialRecord } from './store.ts';

export interface ConfigurationSummary extends Partial<SeedSpread> {
  configuration: number;
  params: Params;
  trials: number;
  failed: number;
  successes: number;
  /** Learning-curve band over seeds (training trials): per evaluation step, min, median and max. */
  curve?: { step: number; min: number; median: number; max: number }[];
}

export interface ImportanceRow {
  param: string;
  method: 'fanova' | 'ped-anova';
  share: number;
  low: number;
  high: number;
}

export interface SweepAnalysis {
  metric: string;
  direction: 'maximize' | 'minimize';
  threshold: number;
  success: SuccessRate;
  best: { configuration: number; params: Params; mean: number } | null;
  configurations: ConfigurationSummary[];
  /** Null when fewer than 2 configurations have every seed finished. */
  variance: VarianceDecomposition | null;
  importance: ImportanceRow[];
  /** fANOVA: the share of the surrogate's variance no single parameter explains. */
  interactions: number | null;
  knifeEdges: KnifeEdge[];
}

export function analyzeSweep(
  spec: SweepSpec,
  configurations: Configuration[],
  trials: TrialRecord[],
): SweepAnalysis {
  const finished = trials.filter((t) => t.status === 'done' || t.status === 'failed');
  const succeeded = (t: TrialRecord) =>
    t.status === 'done' && t.metric !== null && meets(spec, t.metric);
  const summaries = configurations.map((c) =>
    summarize(
      c,
      trials.filter((t) => t.configuration === c.index),
      succeeded,
    ),
  );
  const ranked = summaries
    .filter((s) => s.mean !== undefined)
    .sort((a, b) => better(spec, a.mean!, b.mean!));
  const { importance, interactions } = importanceOf(spec, configurations, summaries);
  const points = new Map(
    configurations.map((c) => [c.index, spec.parameters.map((p) => encode(p, c.params[p.name]))]),
  );
  return {
    metric: spec.metric,
    direction: spec.direction,
    threshold: spec.success,
    success: successRate(finished.filter(succeeded).length, finished.length),
    best: ranked[0]
      ? { configuration: ranked[0].configuration, params: ranked[0].params, mean: ranked[0].mean! }
      : null,
    configurations: summaries,
    variance: decomposeVariance(completeTable(spec, trials)),
    importance,
    interactions,
    knifeEdges: knifeEdges(
      spec.parameters,
      finished.map((t) => ({ point: points.get(t.configuration)!, success: succeeded(t) })),
      (j) =>
        defaultBinCount(
          spec.parameters[j],
          spec.configurations,
          spec.sampler === 'grid' ? gridLevels(spec.parameters[j], spec.levels) : undefined,
        ),
    ),
  };
}

export function meets(spec: Pick<SweepSpec, 'direction' | 'success'>, metric: number): boolean {
  return spec.direction === 'maximize' ? metric >= spec.success : metric <= spec.success;
}

/** Sort order: better first. */
function better(spec: SweepSpec, a: number, b: number): number {
  return spec.direction === 'maximize' ? b - a : a - b;
}

function summarize(
  configuration: Configuration,
  trials: TrialRecord[],
  succeeded: (t: TrialRecord) => boolean,
): ConfigurationSummary {
  const metrics = trials
    .filter((t) => t.status === 'done' && t.metric !== null)
    .map((t) => t.metric!);
  const spread = seedSpread(metrics, configuration.index);
  return {
    configuration: configuration.index,
    params: configuration.params,
    trials: trials.filter((t) => t.status === 'done' || t.status === 'failed').length,
    failed: trials.filter((t) => t.status === 'failed').length,
    successes: trials.filter(succeeded).length,
    ...(spread ?? {}),
    ...curveBand(trials),
  };
}

function curveBand(trials: TrialRecord[]): { curve?: ConfigurationSummary['curve'] } {
  const curves = trials
    .map((t) => t.curve)
    .filter((c): c is [number, number][] => c !== null && c.length > 0);
  if (curves.length === 0) return {};
  const steps = [...new Set(curves.flatMap((c) => c.map(([step]) => step)))].sort((a, b) => a - b);
  return {
    curve: steps.flatMap((step) => {
      const values = curves
        .map((c) => c.find(([s]) => s === step)?.[1])
        .filter((v): v is number => Number.isFinite(v));
      return values.length === 0
        ? []
        : [
            {
              step,
              min: Math.min(...values),
              median: quantile(values, 0.5),
              max: Math.max(...values),
            },
          ];
    }),
  };
}

/** Configuration × seed metrics, over the configurations whose every seed finished with a metric. */
function completeTable(spec: SweepSpec, trials: TrialRecord[]): number[][] {
  const table = new Map<number, number[]>();
  for (const t of trials) {
    if (t.status !== 'done' || t.metric === null) continue;
    const row = table.get(t.configuration) ?? new Array<number>(spec.seeds).fill(Number.NaN);
    row[t.seed - (spec.firstSeed ?? 0)] = t.metric;
    table.set(t.configuration, row);
  }
  return [...table.values()].filter((row) => row.every(Number.isFinite));
}

/**
 * fANOVA and PED-ANOVA over the configurations' mean metrics (a configuration with no finished
 * seed is left out); the score is the mean, negated when the direction is minimize.
 */
function importanceOf(
  spec: SweepSpec,
  configurations: Configuration[],
  summaries: ConfigurationSummary[],
) {
  const measured = summaries.filter((s) => s.mean !== undefined);
  if (measured.length < 4) return { importance: [], interactions: null };
  const points = measured.map((s) =>
    spec.parameters.map((p) => encode(p, configurations[s.configuration].params[p.name])),
  );
  const scores = measured.map((s) => (spec.direction === 'maximize' ? s.mean! : -s.mean!));
  const functional = fanovaImportance(points, scores, spec.samplerSeed);
  const ped = pedAnova({ parameters: spec.parameters, points, scores }, spec.samplerSeed);
  const importance: ImportanceRow[] = [
    ...spec.parameters.map((p, j) => ({
      param: p.name,
      method: 'fanova' as const,
      ...functional.importance[j],
    })),
    ...spec.parameters.map((p, j) => ({ param: p.name, method: 'ped-anova' as const, ...ped[j] })),
  ];
  return { importance, interactions: functional.interactions };
}
