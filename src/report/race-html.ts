/**
 * The race's HTML report (teardown race --report DIR): one self-contained page (inline CSS,
 * charts as inline SVG rendered in Node by charts.ts; no script, no fetch) with the verdict on
 * the shortcut, the scorecard as a table, and the Pareto charts — in-distribution accuracy
 * against training time, and in-distribution against shifted accuracy — with each front drawn
 * and ringed, backprop contenders as squares and the others as circles, one colour each; the flip
 * rate of the named attribute per contender, and accuracy per data fraction when there are
 * several. The scorecard table adds the flip rate under noise (robustness) to the terminal's.
 * Every string from the race (contender names, reasons, groups, the task) is escaped.
 *
 *   const card = scorecard(results, settings);            // race/scorecard.ts
 *   const path = await writeRaceReport(dir, { scorecard: card });   // DIR/index.html
 */
import { join } from 'node:path';
import { makeFolders, writeFileAtomic } from '../files.ts';
import type { ContenderScore, Scorecard } from '../race/scorecard.ts';
import { renderChart } from './charts.ts';
import { escapeHtml } from './html.ts';
import {
  scoreCells,
  scoreHeader,
  settingsText,
  spreadNote,
  verdictQuestion,
  verdictRule,
} from './race-table.ts';

export interface RaceReportInput {
  scorecard: Scorecard;
  createdAt?: string;
}

/** Writes DIR/index.html (atomically) and returns its path. */
export async function writeRaceReport(dir: string, input: RaceReportInput): Promise<string> {
  const html = await renderRaceReport(input);
  makeFolders(dir);
  const path = join(dir, 'index.html');
  writeFileAtomic(path, html);
  return path;
}

/** Nothing loads from anywhere: the charts are inline SVG, the style inline. */
const CONTENT_SECURITY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";
const STYLE = [
  'body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#fafafa}',
  'main{max-width:1100px;margin:0 auto;padding:24px}',
  'section{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:16px 20px;',
  'margin:16px 0}.charts{display:flex;flex-wrap:wrap;gap:16px}',
  'table{border-collapse:collapse;font-size:14px}',
  'th,td{padding:4px 7px;border-bottom:1px solid #eee;text-align:right}td{white-space:nowrap}',
  '.scroll{overflow-x:auto}th:first-child,td:first-child{text-align:left}',
  'td.failed{color:#b00;white-space:normal;text-align:left}.note{color:#666;font-size:13px}',
].join('');

export async function renderRaceReport(input: RaceReportInput): Promise<string> {
  const card = input.scorecard;
  const anyMeasured = measured(card).length > 0;
  const charts = await Promise.all([
    anyMeasured ? renderChart(accuracyVsTime(card)) : '',
    hasShifted(card) ? renderChart(inVsShifted(card)) : '',
    card.shortcutAttribute && hasFlips(card) ? renderChart(flipRates(card)) : '',
    anyMeasured && card.fractions.length > 1 ? renderChart(dataEfficiency(card)) : '',
  ]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY}">
<title>teardown race — ${escapeHtml(card.task)}</title>
<style>${STYLE}</style></head>
<body><main>
<h1>Race on ${escapeHtml(card.task)}</h1>
<section><p>${escapeHtml(capitalised(settingsText(card)))}</p></section>
${verdictSection(card)}
<section><h2>Scorecard</h2><div class="scroll">${scoreTable(card)}</div>
<p class="note">${escapeHtml(spreadNote(card))}${robustnessNote(card)}</p></section>
<section class="charts">${charts.filter(Boolean).join('\n')}</section>
<p class="note">${escapeHtml(input.createdAt ?? new Date().toISOString())}</p>
</main></body></html>
`;
}

function verdictSection(card: Scorecard): string {
  const verdict = card.verdict;
  if (!verdict) return '';
  const items = verdict.contenders.map((v) => {
    const said = v.avoids === null ? 'not judged' : v.avoids ? 'avoids it' : 'does not';
    const kind = v.usesBackprop ? 'backprop' : 'no backprop';
    return `<li><b>${escapeHtml(v.name)}</b> (${kind}): ${said} — ${escapeHtml(v.reason)}</li>`;
  });
  return `<section><h2>${escapeHtml(verdictQuestion(verdict))}</h2>
<p>Rule: ${escapeHtml(verdictRule(verdict.rule))}.</p><ul>${items.join('')}</ul></section>`;
}

/** The report's table has the robustness column the terminal's leaves out. */
const COLUMNS = { robustness: true };

/** What "noise flips" measured: the perturbation, as the audit applied it. */
function robustnessNote(card: Scorecard): string {
  const perturbations = [
    ...new Set(card.contenders.flatMap((c) => (c.robustness ? [c.robustness.perturbation] : []))),
  ];
  if (perturbations.length === 0) return '';
  const said = `Noise flips: the share of test predictions changed by ${perturbations.join('; ')}.`;
  return ` ${escapeHtml(said)}`;
}

function scoreTable(card: Scorecard): string {
  const header = scoreHeader(card, COLUMNS);
  const rows = card.contenders.map((c) => {
    const cells = scoreCells(card, c, COLUMNS).map(escapeHtml);
    const failed = (why: string, span: number) =>
      `<td class="failed" colspan="${span}">failed: ${escapeHtml(why)}</td>`;
    const row = `<tr><td>${cells.join('</td><td>')}</td>`;
    if (!c.accuracy)
      return `${row}${failed(c.failed ?? 'no run finished', header.length - cells.length)}</tr>`;
    // A contender that failed after some runs keeps their figures, with its reason below them.
    return c.failed !== undefined
      ? `${row}</tr><tr><td></td>${failed(c.failed, header.length - 1)}</tr>`
      : `${row}</tr>`;
  });
  return `<table><thead><tr><th>${header.map(escapeHtml).join('</th><th>')}</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

const BACKPROP = 'backprop';
const NO_BACKPROP = 'no backprop';
/** Backprop contenders as squares, the others as circles, in the Pareto charts. */
const KIND_SHAPE = {
  field: 'kind',
  type: 'nominal',
  title: null,
  scale: { domain: [BACKPROP, NO_BACKPROP], range: ['square', 'circle'] },
};

/** One colour per contender, the same in every chart, named in the legend. */
function nameColor(card: Scorecard): Record<string, unknown> {
  const names = card.contenders.filter((c) => c.dataEfficiency.length).map((c) => c.name);
  return {
    field: 'name',
    type: 'nominal',
    title: 'contender',
    scale: { domain: names, scheme: 'tableau10' },
    legend: { labelLimit: 220 },
  };
}

interface ChartPoint {
  name: string;
  kind: string;
  x: number;
  y: number;
  low: number;
  high: number;
  front: boolean;
}

/** In-distribution accuracy against training seconds (log scale): up and to the left is better. */
function accuracyVsTime(card: Scorecard): Record<string, unknown> {
  const front = new Set(card.pareto.accuracyVsTime);
  const points = measured(card)
    .filter((c) => c.trainSeconds !== null)
    .map((c) =>
      point(
        c,
        Math.max(c.trainSeconds!, 1e-3),
        c.accuracy!.in,
        [c.accuracy!.low, c.accuracy!.high],
        front,
      ),
    );
  const axes = {
    title: 'Accuracy against training time (Pareto front ringed)',
    x: { title: 'training seconds per seed (log)', scale: { type: 'log' } },
    y: 'in-distribution accuracy',
  };
  return paretoChart(points, axes, nameColor(card));
}

/** Shifted against in-distribution accuracy, with the line where nothing is lost to the shift. */
function inVsShifted(card: Scorecard): Record<string, unknown> {
  const front = new Set(card.pareto.inVsShifted);
  const points = measured(card)
    .filter((c) => c.accuracy!.shifted !== null)
    .map((c) => {
      const a = c.accuracy!;
      return point(c, a.in, a.shifted!, [a.shiftedLow!, a.shiftedHigh!], front);
    });
  const diagonal = {
    data: {
      values: [
        { x: 0, y: 0 },
        { x: 1, y: 1 },
      ],
    },
    mark: { type: 'line', color: '#999', strokeDash: [4, 3] },
    encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
  };
  return paretoChart(
    points,
    {
      title: 'Shifted against in-distribution accuracy (Pareto front ringed)',
      x: { title: 'in-distribution accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
      y: 'shifted accuracy',
      yDomain: [0, 1],
    },
    nameColor(card),
    [diagonal],
  );
}

function point(
  c: ContenderScore,
  x: number,
  y: number,
  [low, high]: [number, number],
  front: Set<string>,
): ChartPoint {
  return {
    name: c.name,
    kind: c.usesBackprop ? BACKPROP : NO_BACKPROP,
    x,
    y,
    low,
    high,
    front: front.has(c.name),
  };
}

/**
 * Points with their spread as a vertical bar, the front joined by a dashed line (in x order) and
 * ringed; each contender in its own colour, named in the legend, its shape saying backprop or not.
 */
function paretoChart(
  points: ChartPoint[],
  axes: { title: string; x: Record<string, unknown>; y: string; yDomain?: [number, number] },
  color: Record<string, unknown>,
  extra: Record<string, unknown>[] = [],
): Record<string, unknown> {
  const x = { field: 'x', type: 'quantitative', ...axes.x };
  const y = {
    field: 'y',
    type: 'quantitative',
    title: axes.y,
    axis: { format: '.0%' },
    scale: axes.yDomain ? { domain: axes.yDomain } : { zero: false },
  };
  const front = points.filter((p) => p.front).sort((a, b) => a.x - b.x);
  return {
    width: 380,
    height: 300,
    title: axes.title,
    data: { values: points },
    layer: [
      ...extra,
      {
        mark: { type: 'rule', opacity: 0.6 },
        encoding: { x, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' }, color },
      },
      {
        data: { values: front.map((p, order) => ({ ...p, order })) },
        mark: { type: 'line', color: '#333', strokeDash: [2, 2] },
        encoding: { x, y, order: { field: 'order', type: 'quantitative' } },
      },
      {
        data: { values: front },
        mark: { type: 'point', size: 380, color: '#333', strokeWidth: 1.5, filled: false },
        encoding: { x, y },
      },
      {
        mark: { type: 'point', size: 110, filled: true, opacity: 1 },
        encoding: { x, y, color, shape: KIND_SHAPE },
      },
    ],
  };
}

/** Each contender's flip rate of the attribute with its spread, and the verdict's threshold. */
function flipRates(card: Scorecard): Record<string, unknown> {
  const values = measured(card)
    .filter((c) => c.shortcut)
    .map((c) => ({
      name: c.name,
      label: c.usesBackprop ? `${c.name} (backprop)` : c.name,
      rate: c.shortcut!.flipRate,
      low: c.shortcut!.low,
      high: c.shortcut!.high,
    }));
  const y = { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelLimit: 260 } };
  const x = {
    field: 'rate',
    type: 'quantitative',
    title: `share of predictions flipped`,
    scale: { domain: [0, 1] },
    axis: { format: '.0%' },
  };
  const threshold = card.verdict?.rule.maxFlipRate;
  return {
    width: 360,
    title: `Counterfactual flip rate of '${card.shortcutAttribute}'`,
    data: { values },
    layer: [
      { mark: 'bar', encoding: { y, x, color: { ...nameColor(card), legend: null } } },
      {
        mark: { type: 'rule', color: '#333' },
        encoding: { y, x: { field: 'low', type: 'quantitative' }, x2: { field: 'high' } },
      },
      ...(threshold !== undefined
        ? [
            {
              data: { values: [{ rate: threshold }] },
              mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3] },
              encoding: { x: { field: 'rate', type: 'quantitative' } },
            },
          ]
        : []),
    ],
  };
}

/** In-distribution accuracy at each fraction of the training rows, one line per contender. */
function dataEfficiency(card: Scorecard): Record<string, unknown> {
  const values = card.contenders.flatMap((c) =>
    c.dataEfficiency.map((f) => ({
      name: c.name,
      kind: c.usesBackprop ? BACKPROP : NO_BACKPROP,
      fraction: f.fraction,
      accuracy: f.accuracy.in,
    })),
  );
  return {
    width: 380,
    height: 260,
    title: 'Data efficiency: accuracy against the share of training rows',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'fraction',
        type: 'quantitative',
        title: 'share of the training rows',
        axis: { format: '.0%' },
      },
      y: {
        field: 'accuracy',
        type: 'quantitative',
        title: 'in-distribution accuracy',
        axis: { format: '.0%' },
        scale: { zero: false },
      },
      detail: { field: 'name' },
      color: nameColor(card),
      strokeDash: {
        field: 'kind',
        type: 'nominal',
        title: null,
        scale: {
          domain: [BACKPROP, NO_BACKPROP],
          range: [
            [1, 0],
            [5, 3],
          ],
        },
      },
    },
  };
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function measured(card: Scorecard): ContenderScore[] {
  return card.contenders.filter((c) => c.accuracy !== null);
}

function hasShifted(card: Scorecard): boolean {
  return measured(card).some((c) => c.accuracy!.shifted !== null);
}

function hasFlips(card: Scorecard): boolean {
  return card.contenders.some((c) => c.shortcut);
}
