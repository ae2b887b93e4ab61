/**
 * The sweep's HTML report (teardown sweep --report DIR): one self-contained page, charts as inline
 * SVG (charts.ts, Vega-Lite rendered in Node): parameter importance with intervals, each
 * configuration's seeds as a strip, the success rate over two parameters, and every configuration
 * in parallel coordinates. Every string from the spec (parameter names and values) is escaped.
 */
import { join } from 'node:path';
import { makeFolders, writeFileAtomic } from '../files.ts';
import { percent } from '../stats.ts';
import type { SweepAnalysis } from '../sweep/analysis.ts';
import type { TrialRecord } from '../sweep/store.ts';
import { barChart, renderChart } from './charts.ts';
import { escapeHtml } from './html.ts';

export interface SweepReportInput {
  analysis: SweepAnalysis;
  trials: TrialRecord[];
  /** Parameter names in spec order, and the ones searched in log space. */
  parameters: string[];
  logParameters: string[];
  createdAt?: string;
}

/** Writes DIR/index.html (atomically) and returns its path. */
export async function writeSweepReport(dir: string, input: SweepReportInput): Promise<string> {
  const html = await renderSweepReport(input);
  makeFolders(dir);
  const path = join(dir, 'index.html');
  writeFileAtomic(path, html);
  return path;
}

export async function renderSweepReport(input: SweepReportInput): Promise<string> {
  const { analysis } = input;
  const s = analysis.success;
  const v = analysis.variance;
  const charts = await Promise.all([
    importanceChart(analysis),
    renderChart(seedStrips(input)),
    input.parameters.length >= 2 ? renderChart(successMap(input)) : '',
    renderChart(parallelCoordinates(input)),
    hasCurves(analysis) ? renderChart(curveBands(analysis)) : '',
  ]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>teardown sweep — ${escapeHtml(analysis.metric)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#fafafa}main{max-width:980px;margin:0 auto;padding:24px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:16px 20px;margin:16px 0}.charts{display:flex;flex-wrap:wrap;gap:16px}</style></head>
<body><main>
<h1>Sweep of ${escapeHtml(analysis.metric)} (${escapeHtml(analysis.direction)})</h1>
<section><p>Success (${escapeHtml(analysis.metric)} ${analysis.direction === 'maximize' ? '≥' : '≤'} ${escapeHtml(analysis.threshold)}):
<b>${percent(s.rate)}</b> of ${s.trials} trials (95% ${percent(s.low)}–${percent(s.high)}).
${v ? `Variance: hyperparameters ${percent(v.params, 0)}, seeds ${percent(v.seed, 0)}, seed × configuration ${percent(v.interaction, 0)}.` : ''}</p>
<p>${analysis.knifeEdges.map(workingRange).join('; ')}.</p></section>
<section class="charts">${charts.filter(Boolean).join('\n')}</section>
<p style="color:#666;font-size:13px">${escapeHtml(input.createdAt ?? new Date().toISOString())}</p>
</main></body></html>
`;
}

async function importanceChart(analysis: SweepAnalysis): Promise<string> {
  if (analysis.importance.length === 0) return '';
  const rows = analysis.importance.map((row) => ({
    label: row.param,
    value: row.share,
    series: row.method,
  }));
  return renderChart(
    barChart(rows, 'Parameter importance (share)', 'share of the effect on the mean metric'),
  );
}

/** One row per configuration (best mean first), a tick per seed: how much the seed moves it. */
function seedStrips({ analysis, trials }: SweepReportInput): Record<string, unknown> {
  const order = analysis.configurations
    .filter((c) => c.mean !== undefined)
    .sort((a, b) => (analysis.direction === 'maximize' ? b.mean! - a.mean! : a.mean! - b.mean!))
    .slice(0, 30)
    .map((c) => `#${c.configuration}`);
  const values = trials
    .filter((t) => t.status === 'done' && order.includes(`#${t.configuration}`))
    .map((t) => ({ configuration: `#${t.configuration}`, metric: t.metric, seed: t.seed }));
  return {
    width: 360,
    title: 'Seeds of each configuration (best 30)',
    data: { values },
    mark: { type: 'tick', thickness: 2 },
    encoding: {
      y: { field: 'configuration', type: 'nominal', sort: order, title: null },
      x: { field: 'metric', type: 'quantitative', title: analysis.metric, scale: { zero: false } },
      color: { value: '#4c78a8' },
    },
  };
}

/** Each configuration at its values of the two most important parameters, coloured by success rate. */
function successMap({
  analysis,
  parameters,
  logParameters,
}: SweepReportInput): Record<string, unknown> {
  const ranked = [...parameters].sort((a, b) => share(analysis, b) - share(analysis, a));
  const [x, y] = ranked;
  const values = analysis.configurations
    .filter((c) => c.trials > 0)
    .map((c) => ({
      x: c.params[x],
      y: c.params[y],
      rate: c.successes / c.trials,
      trials: c.trials,
    }));
  const axis = (name: string) =>
    typeof values[0]?.[name === x ? 'x' : 'y'] === 'number'
      ? {
          type: 'quantitative',
          scale: { type: logParameters.includes(name) ? 'log' : 'linear', zero: false },
        }
      : { type: 'nominal' };
  return {
    width: 320,
    height: 260,
    title: 'Success rate over the two most important parameters',
    data: { values },
    mark: { type: 'circle', size: 140, opacity: 0.9 },
    encoding: {
      x: { field: 'x', title: x, ...axis(x) },
      y: { field: 'y', title: y, ...axis(y) },
      color: {
        field: 'rate',
        type: 'quantitative',
        title: 'success',
        scale: { domain: [0, 1], scheme: 'redyellowgreen' },
      },
    },
  };
}

function workingRange(edge: SweepAnalysis['knifeEdges'][number]): string {
  if (edge.low === null) return `${escapeHtml(edge.param)} works nowhere searched`;
  const range = `from ${escapeHtml(short(edge.low))} to ${escapeHtml(short(edge.high))}`;
  return `${escapeHtml(edge.param)} works ${range} (${percent(edge.width, 0)} of the range)`;
}

/** A number to four significant digits; anything else as it is. */
function short(value: unknown): string {
  return typeof value === 'number' ? String(Number(value.toPrecision(4))) : String(value);
}

function hasCurves(analysis: SweepAnalysis): boolean {
  return analysis.configurations.some((c) => c.curve && c.curve.length > 0);
}

/** Training trials: the metric over steps of the best 5 configurations, min–max over seeds and the median. */
function curveBands(analysis: SweepAnalysis): Record<string, unknown> {
  const best = analysis.configurations
    .filter((c) => c.mean !== undefined && c.curve)
    .sort((a, b) => (analysis.direction === 'maximize' ? b.mean! - a.mean! : a.mean! - b.mean!))
    .slice(0, 5);
  const values = best.flatMap((c) =>
    c.curve!.map((point) => ({ ...point, configuration: `#${c.configuration}` })),
  );
  const x = { field: 'step', type: 'quantitative', title: 'step' };
  const color = { field: 'configuration', type: 'nominal', title: null };
  return {
    width: 360,
    height: 240,
    title: `${analysis.metric} over training, over seeds (best 5)`,
    data: { values },
    layer: [
      {
        mark: { type: 'area', opacity: 0.25 },
        encoding: {
          x,
          y: { field: 'min', type: 'quantitative', title: analysis.metric, scale: { zero: false } },
          y2: { field: 'max' },
          color,
        },
      },
      {
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'median', type: 'quantitative' }, color },
      },
    ],
  };
}

function share(analysis: SweepAnalysis, param: string): number {
  return (
    analysis.importance.find((row) => row.param === param && row.method === 'fanova')?.share ?? 0
  );
}

/** Every configuration as a line across its parameters (each scaled to its searched range) and its mean metric. */
function parallelCoordinates({
  analysis,
  parameters,
  logParameters,
}: SweepReportInput): Record<string, unknown> {
  const measured = analysis.configurations.filter((c) => c.mean !== undefined);
  const axes = [...parameters, analysis.metric];
  const raw = (c: (typeof measured)[number], name: string): number => {
    if (name === analysis.metric && !parameters.includes(name)) return c.mean!;
    const value = c.params[name];
    if (typeof value !== 'number') return distinct(measured, name).indexOf(String(value));
    return logParameters.includes(name) ? Math.log10(value) : value;
  };
  const ranges = new Map(
    axes.map((name) => {
      const all = measured.map((c) => raw(c, name));
      return [name, [Math.min(...all), Math.max(...all)]] as const;
    }),
  );
  const values = measured.flatMap((c) =>
    axes.map((name) => {
      const [low, high] = ranges.get(name)!;
      return {
        configuration: c.configuration,
        axis: name,
        position: high > low ? (raw(c, name) - low) / (high - low) : 0.5,
        mean: c.mean,
      };
    }),
  );
  return {
    width: 120 * axes.length,
    height: 240,
    title: 'Configurations across parameters (scaled to their range) and the mean metric',
    data: { values },
    mark: { type: 'line', opacity: 0.6 },
    encoding: {
      x: { field: 'axis', type: 'nominal', sort: axes, title: null },
      y: { field: 'position', type: 'quantitative', title: 'position in range', axis: null },
      detail: { field: 'configuration' },
      color: {
        field: 'mean',
        type: 'quantitative',
        title: analysis.metric,
        scale: { scheme: 'viridis' },
      },
    },
  };
}

function distinct(configurations: SweepAnalysis['configurations'], name: string): string[] {
  return [...new Set(configurations.map((c) => String(c.params[name])))];
}
