/**
 * The race's scorecard: the race's settings, one score per contender (means over the seeds at the
 * largest data fraction, with their spread), and the verdict on the named shortcut — which
 * contenders avoid it, computed from the flip rates and accuracies, never assumed. A pure
 * function of race()'s results: no clock, no files, no terminal.
 *
 *   const results = await race(entrants, split, { seeds, budgetSeconds, fractions, audit });
 *   const card = scorecard(results, {
 *     task: 'colored-mnist', seeds, fractions, budgetSeconds, classes: 2,
 *     split: { seed: 1, train: 8000, test: 2000, shifted: 2000 },
 *     shortcutAttribute: 'color',
 *   });
 *   io.print(formatRaceTable(card));                       // report/race-table.ts
 *   await writeRaceReport(dir, { scorecard: card });       // report/race-html.ts
 *
 * Spread (`low`, `high`) everywhere in it: with two or more seeds, the smallest and the largest
 * value over the seeds (the seeds' range); with one seed, that run's Wilson 95% interval over the
 * test (or shifted) rows. `spread` says which. `seedStd` is the sample standard deviation (n − 1)
 * of in-distribution accuracy over the seeds, 0 for one seed.
 */
import { mean, standardDeviation } from '../sweep/spread.ts';
import type { ClassifierSize, Contender } from './contender.ts';
import { paretoFront } from './pareto.ts';
import type { ContenderResult, SeedRun } from './race.ts';

/** How the train, test and shifted rows were drawn: row counts, the seed, anything else. */
export interface SplitRecord {
  train: number;
  test: number;
  shifted?: number;
  seed?: number;
  [detail: string]: unknown;
}

export interface RaceSettings {
  task: string;
  seeds: readonly number[];
  fractions: readonly number[];
  /** Per contender and seed. */
  budgetSeconds: number;
  split: SplitRecord;
  /** The attribute whose flip rate is each contender's `shortcut` (default: the first audited). */
  shortcutAttribute?: string;
  /** The task's classes: chance accuracy 1/classes for the verdict. */
  classes?: number;
  /** The verdict's thresholds (default DEFAULT_VERDICT_RULE). */
  verdictRule?: Partial<VerdictRule>;
}

/** What the spread of a score is (see the file's comment). */
export type SpreadKind = 'seed range' | 'wilson 95%';

export interface AccuracyScore {
  /** Mean over seeds. */
  in: number;
  shifted: number | null;
  low: number;
  high: number;
  shiftedLow: number | null;
  shiftedHigh: number | null;
  spread: SpreadKind;
}

export interface ShortcutScore {
  attribute: string;
  transform: string;
  /** Mean over seeds of the share of test predictions the counterfactual flips. */
  flipRate: number;
  low: number;
  high: number;
  spread: SpreadKind;
  /** The audit made a finding of it in this many of the seeds. */
  findings: number;
}

/** Robustness: how many predictions small Gaussian noise on the test rows changes. */
export interface RobustnessScore {
  /** The noise, in words, as the audit applied it (the first run's). */
  perturbation: string;
  /** Mean over seeds of the share of test predictions the noise flips. */
  flipRate: number;
  low: number;
  high: number;
  spread: SpreadKind;
  /** The audit made a finding of it in this many of the seeds. */
  findings: number;
}

/** The size of the smallest faithful description of the learned function (comprehensibility). */
export interface DescriptionScore {
  kind: string;
  /** Means over seeds. */
  count: number;
  faithfulness: number;
  /** What it was cut down from (hidden units, stored examples); null if any run kept it whole. */
  outOf: number | null;
}

export interface FractionScore {
  fraction: number;
  seedsMeasured: number;
  accuracy: AccuracyScore;
}

export interface ContenderScore {
  name: string;
  family: Contender['family'];
  usesBackprop: boolean;
  /** Runs at the largest fraction the scores are means over. */
  seedsMeasured: number;
  accuracy: AccuracyScore | null;
  trainSeconds: number | null;
  predictMicrosPerExample: number | null;
  /** Kind of the first run; count the mean over seeds. */
  size: ClassifierSize | null;
  /** Null without an audit of `shortcutAttribute`. */
  shortcut: ShortcutScore | null;
  /** Mean over seeds of each seed's worst-group accuracy; `group` the one worst in most seeds. */
  worstGroup: { group: string; accuracy: number; size: number } | null;
  ece: number | null;
  /** Null unless every run's audit measured it. */
  robustness: RobustnessScore | null;
  seedStd: number | null;
  description: DescriptionScore | null;
  /** Accuracy at each fraction of the training rows, smallest first. */
  dataEfficiency: FractionScore[];
  /** Why the contender stopped, when it failed. */
  failed?: string;
}

/**
 * A contender avoids the shortcut when the upper end of its flip rate's spread is below
 * `maxFlipRate` and its shifted accuracy has not collapsed: at most `maxShiftedDrop` below its
 * in-distribution accuracy and at least `minAboveChance` above 1/classes (where the classes are
 * known). All are shares (0.05 = 5 points). Without shifted rows only the flip rate is checked.
 */
export interface VerdictRule {
  maxFlipRate: number;
  maxShiftedDrop: number;
  minAboveChance: number;
}

export const DEFAULT_VERDICT_RULE: VerdictRule = {
  maxFlipRate: 0.05,
  maxShiftedDrop: 0.1,
  minAboveChance: 0.1,
};

export interface ContenderVerdict {
  name: string;
  usesBackprop: boolean;
  /** Null when it could not be judged (failed, or the attribute was not audited). */
  avoids: boolean | null;
  /** Why, in a few words with the figure that decided it. */
  reason: string;
}

export interface ShortcutVerdict {
  attribute: string;
  rule: VerdictRule & { chance: number | null; shiftedChecked: boolean };
  /** The names of the contenders that avoid it, in race order. */
  avoiding: string[];
  contenders: ContenderVerdict[];
}

export interface Scorecard {
  task: string;
  seeds: number[];
  fractions: number[];
  budgetSeconds: number;
  split: SplitRecord;
  shortcutAttribute: string | null;
  classes: number | null;
  contenders: ContenderScore[];
  /**
   * The contenders on each Pareto front (pareto.ts), in race order: in-distribution accuracy
   * against training seconds (higher, fewer), and in-distribution against shifted accuracy.
   */
  pareto: { accuracyVsTime: string[]; inVsShifted: string[] };
  /** Null when no contender's audit measured the shortcut attribute. */
  verdict: ShortcutVerdict | null;
}

export function scorecard(results: readonly ContenderResult[], settings: RaceSettings): Scorecard {
  const largest = Math.max(...settings.fractions);
  const attribute = settings.shortcutAttribute ?? firstAudited(results);
  const contenders = results.map((result) => contenderScore(result, largest, attribute));
  const rule = { ...DEFAULT_VERDICT_RULE, ...settings.verdictRule };
  const measured = contenders.some((c) => c.shortcut !== null);
  return {
    task: settings.task,
    seeds: [...settings.seeds],
    fractions: [...settings.fractions],
    budgetSeconds: settings.budgetSeconds,
    split: settings.split,
    shortcutAttribute: attribute ?? null,
    classes: settings.classes ?? null,
    contenders,
    pareto: fronts(contenders),
    verdict:
      attribute !== undefined && measured
        ? shortcutVerdict(contenders, attribute, rule, settings.classes)
        : null,
  };
}

function fronts(contenders: readonly ContenderScore[]): Scorecard['pareto'] {
  const timed = contenders.filter((c) => c.accuracy && c.trainSeconds !== null);
  const shifted = contenders.filter((c) => c.accuracy?.shifted != null);
  const names = (front: ContenderScore[]) => front.map((c) => c.name);
  return {
    accuracyVsTime: names(paretoFront(timed, [(c) => c.accuracy!.in, (c) => -c.trainSeconds!])),
    inVsShifted: names(paretoFront(shifted, [(c) => c.accuracy!.in, (c) => c.accuracy!.shifted!])),
  };
}

/** The first attribute any run's audit measured a flip rate for. */
function firstAudited(results: readonly ContenderResult[]): string | undefined {
  for (const result of results)
    for (const run of result.runs) {
      const first = run.audit?.shortcuts[0];
      if (first) return first.attribute;
    }
  return undefined;
}

function contenderScore(
  result: ContenderResult,
  largest: number,
  attribute: string | undefined,
): ContenderScore {
  const runs = result.runs.filter((run) => run.fraction === largest);
  const audited = runs.flatMap((run) => (run.audit ? [run.audit] : []));
  const fractions = [...new Set(result.runs.map((run) => run.fraction))].sort((a, b) => a - b);
  return {
    name: result.name,
    family: result.family,
    usesBackprop: result.usesBackprop,
    seedsMeasured: runs.length,
    accuracy: accuracyScore(runs),
    trainSeconds: meanOrNull(runs.map((run) => run.trainSeconds)),
    predictMicrosPerExample: meanOrNull(runs.map((run) => run.predictMicrosPerExample)),
    size: runs.length
      ? { kind: runs[0].size.kind, count: mean(runs.map((r) => r.size.count)) }
      : null,
    shortcut: attribute === undefined ? null : shortcutScore(runs, attribute),
    worstGroup: worstGroupScore(audited.map((a) => a.worstGroup)),
    ece: audited.length === runs.length ? meanOrNull(audited.map((a) => a.ece)) : null,
    robustness: robustnessScore(runs),
    seedStd: runs.length ? standardDeviation(runs.map((run) => run.accuracy.in.value)) : null,
    description: descriptionScore(runs),
    dataEfficiency: fractions.map((fraction) => {
      const at = result.runs.filter((run) => run.fraction === fraction);
      return { fraction, seedsMeasured: at.length, accuracy: accuracyScore(at)! };
    }),
    ...(result.failed !== undefined ? { failed: result.failed } : {}),
  };
}

function accuracyScore(runs: readonly SeedRun[]): AccuracyScore | null {
  if (runs.length === 0) return null;
  const inside = spread(runs.map((run) => run.accuracy.in));
  const shifted = runs.every((run) => run.accuracy.shifted)
    ? spread(runs.map((run) => run.accuracy.shifted!))
    : null;
  return {
    in: inside.mean,
    shifted: shifted?.mean ?? null,
    low: inside.low,
    high: inside.high,
    shiftedLow: shifted?.low ?? null,
    shiftedHigh: shifted?.high ?? null,
    spread: inside.kind,
  };
}

/** Mean, and the seeds' range (two or more) or the one run's interval: the file's comment. */
function spread(measures: readonly { value: number; interval: [number, number] }[]) {
  const values = measures.map((m) => m.value);
  if (measures.length === 1) {
    const [low, high] = measures[0].interval;
    return { mean: values[0], low, high, kind: 'wilson 95%' as SpreadKind };
  }
  const kind: SpreadKind = 'seed range';
  return { mean: mean(values), low: Math.min(...values), high: Math.max(...values), kind };
}

/** Null unless every run's audit measured the attribute (a mean over some seeds would mislead). */
function shortcutScore(runs: readonly SeedRun[], attribute: string): ShortcutScore | null {
  const found = runs.map((run) => run.audit?.shortcuts.find((s) => s.attribute === attribute));
  if (found.length === 0 || found.some((s) => s === undefined)) return null;
  const measures = found.map((s) => ({ value: s!.flipRate, interval: s!.interval }));
  const { mean: flipRate, low, high, kind } = spread(measures);
  return {
    attribute,
    transform: found[0]!.transform,
    flipRate,
    low,
    high,
    spread: kind,
    findings: found.filter((s) => s!.severity !== undefined).length,
  };
}

/** Null unless every run's audit measured robustness (as shortcutScore). */
function robustnessScore(runs: readonly SeedRun[]): RobustnessScore | null {
  const found = runs.map((run) => run.audit?.robustness);
  if (found.length === 0 || found.some((r) => r === undefined)) return null;
  const measures = found.map((r) => ({ value: r!.flipRate, interval: r!.interval }));
  const { mean: flipRate, low, high, kind } = spread(measures);
  return {
    perturbation: found[0]!.perturbation,
    flipRate,
    low,
    high,
    spread: kind,
    findings: found.filter((r) => r!.severity !== undefined).length,
  };
}

type WorstGroup = { group: string; accuracy: number; size: number } | undefined;

function worstGroupScore(groups: readonly WorstGroup[]): ContenderScore['worstGroup'] {
  const present = groups.filter((g): g is NonNullable<WorstGroup> => g !== undefined);
  if (present.length === 0 || present.length < groups.length) return null;
  const counts = new Map<string, number>();
  for (const g of present) counts.set(g.group, (counts.get(g.group) ?? 0) + 1);
  // The group worst in the most seeds; among equals, the one named first.
  const named = present.reduce((best, g) =>
    counts.get(g.group)! > counts.get(best.group)! ? g : best,
  );
  return {
    group: named.group,
    accuracy: mean(present.map((g) => g.accuracy)),
    size: named.size,
  };
}

function descriptionScore(runs: readonly SeedRun[]): DescriptionScore | null {
  const described = runs.map((run) => run.description);
  if (described.length === 0 || described.some((d) => d === undefined)) return null;
  return {
    kind: described[0]!.kind,
    count: mean(described.map((d) => d!.count)),
    faithfulness: mean(described.map((d) => d!.faithfulness)),
    outOf: described.every((d) => d!.outOf !== undefined)
      ? mean(described.map((d) => d!.outOf!))
      : null,
  };
}

function shortcutVerdict(
  contenders: readonly ContenderScore[],
  attribute: string,
  rule: VerdictRule,
  classes: number | undefined,
): ShortcutVerdict {
  const chance = classes ? 1 / classes : null;
  const shiftedChecked = contenders.some((c) => c.accuracy?.shifted != null);
  const verdicts = contenders.map((c) => judge(c, rule, chance, shiftedChecked));
  return {
    attribute,
    rule: { ...rule, chance, shiftedChecked },
    avoiding: verdicts.filter((v) => v.avoids).map((v) => v.name),
    contenders: verdicts,
  };
}

function judge(
  c: ContenderScore,
  rule: VerdictRule,
  chance: number | null,
  shiftedChecked: boolean,
): ContenderVerdict {
  const of = (avoids: boolean | null, reason: string): ContenderVerdict => ({
    name: c.name,
    usesBackprop: c.usesBackprop,
    avoids,
    reason,
  });
  if (!c.accuracy) return of(null, c.failed !== undefined ? 'failed' : 'not measured');
  if (!c.shortcut) return of(null, 'flip rate not measured');
  const flips = c.shortcut;
  if (!(flips.high < rule.maxFlipRate))
    return of(false, `flips ${pct(flips.flipRate)}, up to ${pct(flips.high)}`);
  if (shiftedChecked) {
    const { in: inside, shifted } = c.accuracy;
    if (shifted === null) return of(null, 'shifted accuracy not measured');
    if (inside - shifted > rule.maxShiftedDrop)
      return of(false, `shifted accuracy ${pct(shifted)}, ${pct(inside - shifted, 'pts')} below`);
    if (chance !== null && shifted < chance + rule.minAboveChance)
      return of(false, `shifted accuracy ${pct(shifted)}, near chance (${pct(chance)})`);
  }
  return of(
    true,
    `flips ${pct(flips.flipRate)}` +
      (shiftedChecked ? `, shifted ${pct(c.accuracy.shifted!)}` : ''),
  );
}

function pct(share: number, unit: '%' | 'pts' = '%'): string {
  const text = (100 * share).toFixed(1);
  return unit === '%' ? `${text}%` : `${text} points`;
}

function meanOrNull(values: readonly number[]): number | null {
  return values.length ? mean(values) : null;
}
