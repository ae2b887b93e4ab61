/**
 * The race's scorecard for the terminal: what was raced, one row per contender (backprop or
 * not, accuracy in distribution and shifted with their spread, the shortcut's flip rate, worst
 * group, ECE, training time, prediction time, size), failed contenders with their reason,
 * accuracy at each data fraction, and the verdict on the shortcut, worked out by the scorecard.
 *
 *   io.print(formatRaceTable(scorecard(results, settings)));
 */
import type {
  AccuracyScore,
  ContenderScore,
  Scorecard,
  ShortcutVerdict,
} from '../race/scorecard.ts';
import { formatTable } from './table.ts';

/** The whole terminal summary; `width` as formatTable takes it (default: the terminal's). */
export function formatRaceTable(card: Scorecard, width?: number): string {
  const parts = [settingsLine(card), contenderTable(card, width), spreadNote(card)];
  const failed = card.contenders.filter((c) => c.failed !== undefined);
  if (failed.length) parts.push(failed.map((c) => `${c.name} failed: ${c.failed}`).join('\n'));
  if (card.fractions.length > 1) parts.push(efficiencyTable(card, width));
  parts.push(verdictText(card));
  return parts.filter(Boolean).join('\n\n');
}

/** What was raced: the task, then settingsText. */
function settingsLine(card: Scorecard): string {
  return `Race on ${card.task}: ${settingsText(card)}`;
}

/** The seeds, fractions, budget and rows, as a sentence. */
export function settingsText(card: Scorecard): string {
  const { split } = card;
  const rows = [`train ${count(split.train)}`, `test ${count(split.test)}`];
  if (split.shifted !== undefined) rows.push(`shifted ${count(split.shifted)}`);
  const seed = split.seed !== undefined ? ` (split seed ${split.seed})` : '';
  return (
    `seeds ${card.seeds.join(', ')}; data fractions ` +
    `${card.fractions.map((f) => pct(f, 0)).join(', ')}; budget ${card.budgetSeconds} s per ` +
    `contender and seed; rows: ${rows.join(', ')}${seed}.`
  );
}

function contenderTable(card: Scorecard, width?: number): string {
  const rows = card.contenders.map((c) => {
    const cells = scoreCells(card, c);
    return c.accuracy ? cells : [...cells, 'failed'];
  });
  return formatTable(scoreHeader(card), rows, width);
}

/**
 * Which columns beyond the terminal's: `robustness` adds the flip rate under noise after the
 * shortcut's (the report has it; the terminal table is already wrapped to fit 100 columns).
 */
export interface ScoreColumns {
  robustness?: boolean;
}

/** The scorecard's columns, for the terminal and the report alike. */
export function scoreHeader(card: Scorecard, columns: ScoreColumns = {}): string[] {
  const attribute = card.shortcutAttribute;
  return [
    'contender',
    'backprop',
    'in distribution',
    'shifted',
    attribute ? `${attribute} flips` : 'flips',
    ...(robustnessShown(card, columns) ? ['noise flips'] : []),
    'worst group',
    'ECE',
    'train s',
    'µs per example',
    'size',
    ...(card.contenders.some((c) => c.description) ? ['description'] : []),
  ];
}

/** A contender's cells under scoreHeader; only its name and backprop when nothing was measured. */
export function scoreCells(
  card: Scorecard,
  c: ContenderScore,
  columns: ScoreColumns = {},
): string[] {
  const cells = [c.name, c.usesBackprop ? 'yes' : 'no'];
  if (!c.accuracy) return cells;
  return [
    ...cells,
    withSpread(c.accuracy.in, c.accuracy.low, c.accuracy.high),
    shiftedCell(c.accuracy),
    c.shortcut ? withSpread(c.shortcut.flipRate, c.shortcut.low, c.shortcut.high) : '—',
    ...(robustnessShown(card, columns) ? [robustnessCell(c)] : []),
    c.worstGroup ? `${c.worstGroup.group}: ${pct(c.worstGroup.accuracy)}` : '—',
    c.ece !== null ? c.ece.toFixed(3) : '—',
    fixed(c.trainSeconds),
    fixed(c.predictMicrosPerExample),
    c.size ? `${count(c.size.count)} ${SIZE_KINDS[c.size.kind]}` : '—',
    ...(card.contenders.some((other) => other.description) ? [descriptionCell(c)] : []),
  ];
}

/** The robustness column only where asked for and some contender measured it. */
function robustnessShown(card: Scorecard, columns: ScoreColumns): boolean {
  return columns.robustness === true && card.contenders.some((c) => c.robustness);
}

function robustnessCell(c: ContenderScore): string {
  const r = c.robustness;
  return r ? withSpread(r.flipRate, r.low, r.high) : '—';
}

function shiftedCell(accuracy: AccuracyScore): string {
  if (accuracy.shifted === null) return '—';
  return withSpread(accuracy.shifted, accuracy.shiftedLow!, accuracy.shiftedHigh!);
}

function descriptionCell(c: ContenderScore): string {
  const d = c.description;
  if (!d) return '—';
  const of = d.outOf !== null ? ` of ${count(d.outOf)}` : '';
  return `${count(d.count)}${of} ${d.kind} at ${pct(d.faithfulness, 0)}`;
}

/** What the ranges in brackets are. */
export function spreadNote(card: Scorecard): string {
  const kinds = new Set(card.contenders.flatMap((c) => (c.accuracy ? [c.accuracy.spread] : [])));
  const said = [...kinds].map((kind) =>
    kind === 'seed range'
      ? 'lowest–highest over the seeds'
      : 'the Wilson 95% interval over the rows (one seed)',
  );
  return said.length
    ? `Means over seeds at ${pct(Math.max(...card.fractions), 0)} of the data; ` +
        `in brackets: ${said.join('; or ')}.`
    : '';
}

function efficiencyTable(card: Scorecard, width?: number): string {
  const fractions = [...card.fractions].sort((a, b) => a - b);
  const header = ['data efficiency', ...fractions.map((f) => `${pct(f, 0)} of the data`)];
  const rows = card.contenders.map((c) => [
    c.name,
    ...fractions.map((fraction) => {
      const at = c.dataEfficiency.find((f) => f.fraction === fraction);
      return at ? withSpread(at.accuracy.in, at.accuracy.low, at.accuracy.high) : '—';
    }),
  ]);
  return formatTable(header, rows, width);
}

/**
 * The demo's question answered from the scorecard's verdict: the rule, who avoids the shortcut
 * (and whether they use backprop), who does not and why, who could not be judged; '' without a
 * verdict.
 */
function verdictText(card: Scorecard): string {
  const verdict = card.verdict;
  if (!verdict) return '';
  const named = (avoids: boolean | null) =>
    verdict.contenders
      .filter((v) => v.avoids === avoids)
      .map((v) => `${v.name} (${v.usesBackprop ? 'backprop' : 'no backprop'}; ${v.reason})`);
  const [avoid, take, unjudged] = [named(true), named(false), named(null)];
  const lines = [
    verdictQuestion(verdict),
    `  Rule: ${verdictRule(verdict.rule)}.`,
    `  Avoid it: ${avoid.length ? avoid.join('; ') : 'none'}.`,
  ];
  if (take.length) lines.push(`  Do not: ${take.join('; ')}.`);
  if (unjudged.length) lines.push(`  Not judged: ${unjudged.join('; ')}.`);
  return lines.join('\n');
}

/** The demo's question with its answer: Yes when any contender avoids the shortcut. */
export function verdictQuestion(verdict: ShortcutVerdict): string {
  const answer = verdict.avoiding.length ? 'Yes' : 'No';
  return `Does any contender avoid the '${verdict.attribute}' shortcut? ${answer}.`;
}

/** The verdict's rule in words, with its thresholds. */
export function verdictRule(rule: ShortcutVerdict['rule']): string {
  const flips = `flip rate's upper end below ${pct(rule.maxFlipRate, 0)}`;
  if (!rule.shiftedChecked) return `${flips} (no shifted rows: the flip rate only)`;
  const chance =
    rule.chance !== null
      ? ` and at least ${points(rule.minAboveChance)} above chance (${pct(rule.chance, 0)})`
      : '';
  const drop = `shifted accuracy at most ${points(rule.maxShiftedDrop)} below in-distribution`;
  return `${flips}; ${drop}${chance}`;
}

/**
 * "85.0% (80–90)": a share and its spread, in percent, the bounds in whole points (one decimal
 * under 10%) rounded outwards — low down, high up — so that the printed range holds the printed
 * mean (low ≤ mean ≤ high) and the range itself: two seeds at 75.50% and 75.51% read
 * "75.5% (75–76)", never "(76–76)".
 */
export function withSpread(value: number, low: number, high: number): string {
  const scale = Math.max(low, high) < 0.1 ? 10 : 1;
  const digits = scale === 10 ? 1 : 0;
  // 1e-9 absorbs binary noise: 100 × 0.75 is 75.00000000000001, which must stay 75.
  const down = (share: number) => (Math.floor(100 * share * scale + 1e-9) / scale).toFixed(digits);
  const up = (share: number) => (Math.ceil(100 * share * scale - 1e-9) / scale).toFixed(digits);
  return `${pct(value)} (${down(low)}–${up(high)})`;
}

export function pct(share: number, digits = 1): string {
  return `${(100 * share).toFixed(digits)}%`;
}

function points(share: number): string {
  return `${Number((100 * share).toFixed(1))} points`;
}

function fixed(value: number | null): string {
  if (value === null) return '—';
  return value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(1) : value.toFixed(2);
}

const SIZE_KINDS = { parameters: 'params', prototypes: 'prototypes', nodes: 'nodes' };

function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
