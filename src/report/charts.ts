/**
 * Charts for the HTML report: Vega-Lite specs compiled and rendered to SVG here, in Node (no
 * browser, no network, no canvas), so the report embeds finished pictures. Data go in as inline
 * values; Vega escapes the text it writes into the SVG.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ReliabilityBin } from '../audit/calibration.ts';

const CONFIG = {
  font: 'system-ui, sans-serif',
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12 },
};

export async function renderChart(spec: Record<string, unknown>): Promise<string> {
  // vega and vega-lite take about 0.3 s to load: imported when a report is written, not at startup.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const full = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    ...spec,
  } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(full).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Accuracy per confidence bin against the diagonal a calibrated model would follow. */
export function reliabilityDiagram(bins: ReliabilityBin[]): Record<string, unknown> {
  const values = bins
    .filter((bin) => bin.count > 0)
    .map((bin) => ({
      middle: (bin.lower + bin.upper) / 2,
      lower: bin.lower,
      upper: bin.upper,
      accuracy: bin.accuracy,
      confidence: bin.confidence,
      count: bin.count,
    }));
  return {
    width: 320,
    height: 260,
    title: 'Reliability diagram',
    layer: [
      {
        data: { values },
        mark: { type: 'rect', color: '#4c78a8', opacity: 0.85, stroke: 'white' },
        encoding: {
          x: {
            field: 'lower',
            type: 'quantitative',
            title: 'confidence',
            scale: { domain: [0, 1] },
          },
          x2: { field: 'upper' },
          y: {
            field: 'accuracy',
            type: 'quantitative',
            title: 'accuracy',
            scale: { domain: [0, 1] },
          },
          y2: { datum: 0 },
        },
      },
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', color: '#e45756', strokeDash: [4, 3] },
        encoding: {
          x: { field: 'x', type: 'quantitative' },
          y: { field: 'y', type: 'quantitative' },
        },
      },
    ],
  };
}

/** Horizontal bars of values in [0, 1] (accuracies, rates), grouped by `series` when given. */
export function barChart(
  rows: { label: string; value: number; series?: string }[],
  title: string,
  axisTitle: string,
): Record<string, unknown> {
  const grouped = rows.some((row) => row.series !== undefined);
  return {
    width: 360,
    title,
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelLimit: 260 } },
      x: {
        field: 'value',
        type: 'quantitative',
        title: axisTitle,
        scale: { domain: [0, 1] },
        axis: { format: '.0%' },
      },
      ...(grouped
        ? {
            yOffset: { field: 'series', sort: null },
            color: { field: 'series', type: 'nominal', title: null, sort: null },
          }
        : { color: { value: '#4c78a8' } }),
    },
  };
}

/** Bars of signed values in points (e.g. accuracy lost when a feature is shuffled). */
export function pointsChart(
  rows: { label: string; value: number }[],
  title: string,
  axisTitle: string,
): Record<string, unknown> {
  return {
    width: 360,
    title,
    data: { values: rows },
    mark: { type: 'bar', color: '#f58518' },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelLimit: 200 } },
      x: { field: 'value', type: 'quantitative', title: axisTitle },
    },
  };
}

/** The greedy ablation curve: counterfactual flip rate against the number of carriers ablated, with the random-units level. */
export function ablationCurve(
  none: number,
  curve: number[],
  random: number,
): Record<string, unknown> {
  const values = [none, ...curve].map((rate, k) => ({ units: k, rate }));
  return {
    width: 320,
    height: 220,
    title: 'Counterfactual flips as carriers are ablated',
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true, color: '#4c78a8' },
        encoding: {
          x: { field: 'units', type: 'quantitative', title: 'carrier units mean-ablated' },
          y: {
            field: 'rate',
            type: 'quantitative',
            title: 'flip rate',
            axis: { format: '.0%' },
            scale: { domain: [0, 1] },
          },
        },
      },
      {
        data: { values: [{ rate: random }] },
        mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3] },
        encoding: { y: { field: 'rate', type: 'quantitative' } },
      },
    ],
  };
}
