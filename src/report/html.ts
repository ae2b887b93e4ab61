/**
 * The audit's HTML report: one self-contained file (inline CSS, charts as inline SVG rendered by
 * charts.ts, sample images as data: URIs; no script, no fetch) that a reviewer opens offline. An
 * executive summary comes first — what is wrong, how sure, what to do — then each finding with
 * its evidence. Every string that comes from the model or the data is escaped.
 */
import { join } from 'node:path';
import {
  shortcutVerdict,
  type AuditResult,
  type ShortcutUnits,
  type ShortcutVerdict,
} from '../audit/audit.ts';
import type { AuditData } from '../audit/data.ts';
import type { Finding } from '../audit/findings.ts';
import type { FixesResult } from '../audit/fixes.ts';
import type { ShortcutEvidence } from '../audit/shortcut.ts';
import { makeFolders, writeFileAtomic } from '../files.ts';
import { percent } from '../stats.ts';
import { ablationCurve, barChart, pointsChart, reliabilityDiagram, renderChart } from './charts.ts';
import { transformExamples, type TransformOptions } from '../audit/transforms.ts';
import { takeExamples } from '../audit/examples.ts';
import type { Tensor } from '../tensor.ts';
import { imageDataUri } from './png.ts';

export interface ReportInput {
  model: { path: string; sha256: string };
  result: AuditResult;
  data: AuditData;
  shifted?: AuditData;
  fixes?: FixesResult;
  createdAt?: string;
}

export function escapeHtml(text: unknown): string {
  return String(text).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** Writes DIR/index.html (atomically) and returns its path. */
export async function writeReport(dir: string, input: ReportInput): Promise<string> {
  const html = await renderReport(input);
  makeFolders(dir);
  const path = join(dir, 'index.html');
  writeFileAtomic(path, html);
  return path;
}

export async function renderReport(input: ReportInput): Promise<string> {
  const { result, model } = input;
  const sections = [
    summarySection(input),
    ...(await Promise.all(
      result.findings
        .filter((f) => f.detector !== 'weak-segment' && f.detector !== 'shift')
        .map((finding) => findingSection(finding, input)),
    )),
    await segmentSection(result.findings.filter((f) => f.detector === 'weak-segment')),
    await shiftSection(input),
    await calibrationSection(result),
    await featureSection(result),
    input.fixes ? await fixesSection(input.fixes) : '',
    methodSection(result),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>teardown audit — ${escapeHtml(model.path)}</title>
<style>${STYLE}</style></head>
<body><main>
<header><h1>Audit of <code>${escapeHtml(model.path)}</code></h1>
<p class="meta">sha256 ${escapeHtml(model.sha256.slice(0, 16))}… · data <code>${escapeHtml(result.data.path)}</code> (${result.data.examples} examples)${result.shifted ? ` · shifted <code>${escapeHtml(result.shifted.path)}</code> (${result.shifted.examples})` : ''} · ${escapeHtml(input.createdAt ?? new Date().toISOString())}</p></header>
${sections.filter(Boolean).join('\n')}
</main></body></html>
`;
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;color:#1d1d1f;background:#fafafa;margin:0}main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}.meta{color:#666;font-size:13px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:16px 20px;margin:16px 0}.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:4px;padding:1px 7px;margin-right:6px;color:#fff}
.high{background:#c0392b}.medium{background:#d68910}.low{background:#7f8c8d}table{border-collapse:collapse;margin:8px 0;font-size:14px}td,th{border-bottom:1px solid #eee;padding:4px 10px;text-align:left}
th{background:#f4f4f4}.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.samples{display:flex;flex-wrap:wrap;gap:12px}.samples figure{margin:0;text-align:center;font-size:12px}
.samples img{width:64px;height:64px;margin:1px;image-rendering:pixelated;border:1px solid #ccc}code{background:#f2f2f2;padding:0 3px;border-radius:3px}.todo li{margin:4px 0}`;

function summarySection({ result, fixes }: ReportInput): string {
  const top = result.findings.filter((f) => f.severity !== 'low').slice(0, 6);
  const counts = (['high', 'medium', 'low'] as const)
    .map(
      (s) =>
        `<span class="badge ${s}">${result.findings.filter((f) => f.severity === s).length} ${s}</span>`,
    )
    .join('');
  const accuracy = result.accuracy;
  const wrong = top.length
    ? `<ul>${top.map((f) => `<li><span class="badge ${f.severity}">${f.severity}</span>${escapeHtml(f.title)}</li>`).join('')}</ul>`
    : '<p>No detector found a problem of medium or high severity.</p>';
  const todo = [
    ...new Set(result.findings.filter((f) => f.severity !== 'low').map((f) => ADVICE[f.detector])),
  ];
  const bestFix = fixes?.rows.slice(1).sort((a, b) => b.outOfDistribution - a.outOfDistribution)[0];
  return `<section id="summary"><h2>Executive summary</h2>
<p>${counts} from ${result.tests} statistical tests. Accuracy on the audit data ${percent(accuracy.data.value)} (95% CI ${percent(accuracy.data.interval[0])}–${percent(accuracy.data.interval[1])})${accuracy.shifted ? `; on the shifted data <strong>${percent(accuracy.shifted.value)}</strong> (${percent(accuracy.shifted.interval[0])}–${percent(accuracy.shifted.interval[1])})` : ''}.</p>
<h3>What is wrong</h3>${wrong}
<h3>How sure</h3><p>Each finding is significant at ${result.config.alpha} after Holm's correction over all ${result.tests} tests; high means an effect of at least ${result.config.high} points, medium at least ${result.config.medium}. Intervals are 95% Wilson intervals.</p>
<h3>What to do</h3>${todo.length ? `<ul class="todo">${todo.map((t) => `<li>${t}</li>`).join('')}</ul>` : '<p>Nothing urgent.</p>'}
${bestFix ? `<p>Measured, not promised: retraining with <strong>${escapeHtml(bestFix.method)}</strong> gave ${percent(bestFix.outOfDistribution)} on the shifted data (ERM: ${percent(fixes!.rows[0].outOfDistribution)}) — see <a href="#fixes">Fixes</a>.</p>` : ''}
</section>`;
}

const ADVICE: Record<Finding['detector'], string> = {
  'shortcut-attribute':
    'The model uses a spurious attribute: remove it from the inputs where possible, or retrain with group-balanced reweighting or an invariance penalty (<code>teardown audit --try-fixes</code>), and re-audit.',
  'shortcut-feature':
    'A feature predicts the label only in this data: drop it, or collect training data where it does not, and re-audit on deployment-like data (<code>--shifted</code>).',
  'weak-segment':
    'Some segments are served badly: collect or up-weight examples from them, and report per-segment accuracy alongside the average.',
  calibration:
    'The confidences do not match the accuracy: recalibrate (e.g. temperature scaling on held-out data) before anyone acts on them.',
  robustness:
    'Small perturbations change predictions: train with noise augmentation, or refuse low-margin predictions.',
  shift:
    'Accuracy collapses on the shifted data: do not deploy where the shift applies before fixing the shortcut behind it.',
};

async function findingSection(finding: Finding, input: ReportInput): Promise<string> {
  const head = `<h2><span class="badge ${finding.severity}">${finding.severity}</span>${escapeHtml(DETECTOR_NAMES[finding.detector])}${finding.attribute ? `: ${escapeHtml(finding.attribute)}` : finding.feature ? `: ${escapeHtml(finding.feature)}` : ''}</h2>`;
  const format = (value: number) =>
    finding.metric.name.includes('(points)') ? `${value.toFixed(1)} pts` : percent(value);
  const metric = `<p>${escapeHtml(finding.title)}.</p><p class="meta">${escapeHtml(finding.metric.name)} ${format(finding.metric.value)}${finding.metric.interval ? ` (95% CI ${format(finding.metric.interval[0])} to ${format(finding.metric.interval[1])})` : ''} · effect ${finding.effect.toFixed(1)} points · p ${formatP(finding.pValue)}, Holm-adjusted ${formatP(finding.adjustedP)}</p>`;
  let body = '';
  if (finding.detector === 'shortcut-attribute') {
    const evidence = finding.evidence as unknown as ShortcutEvidence;
    const bars = [
      { label: 'accuracy, original', value: evidence.accuracy.original },
      { label: `accuracy, ${evidence.transform}`, value: evidence.accuracy.counterfactual },
      { label: 'predictions flipped', value: evidence.flipRate },
      ...(evidence.attributeAlone
        ? [{ label: `'${finding.attribute}' alone`, value: evidence.attributeAlone.accuracy }]
        : []),
    ];
    body += `<div class="charts">${await renderChart(barChart(bars, 'Counterfactual', 'fraction of examples'))}</div>`;
    body += sampleImages(evidence, input.data, { seed: input.result.config.seed });
  }
  const units = input.result.shortcutUnits.find(
    (u) => u.shortcut === (finding.attribute ?? finding.feature),
  );
  if (units) body += await unitsBlock(units);
  return `<section class="finding">${head}${metric}${body}</section>`;
}

const DETECTOR_NAMES: Record<Finding['detector'], string> = {
  'shortcut-attribute': 'Shortcut on a named attribute',
  'shortcut-feature': 'Shortcut feature',
  'weak-segment': 'Weak segment',
  calibration: 'Calibration',
  robustness: 'Robustness',
  shift: 'Shift',
};

function sampleImages(
  evidence: ShortcutEvidence,
  data: AuditData,
  transform: TransformOptions,
): string {
  if (data.layout.kind !== 'image' || !evidence.samples.length) return '';
  const { channels, height, width } = data.layout;
  const rows = evidence.samples.map((s) => s.index);
  const [original, counterfactual] = [
    takeExamples(data.inputs, rows),
    takeExamples(transformExamples(evidence.transform, data.inputs, transform), rows),
  ];
  const picture = (pixels: Tensor, k: number, alt: string) =>
    `<img alt="${escapeHtml(alt)}" src="${imageDataUri(pixels.data as Float32Array, k, channels, height, width)}">`;
  const figures = evidence.samples.map(
    (s, k) =>
      `<figure>${picture(original, k, `example ${s.index}`)}${picture(counterfactual, k, `example ${s.index} after ${evidence.transform}`)}<figcaption>#${s.index} label ${s.label}<br>predicted ${s.predicted} → ${s.counterfactualPredicted}</figcaption></figure>`,
  );
  return `<p>Examples whose prediction the counterfactual flipped: as given, then after ${escapeHtml(evidence.transform)}, with the prediction before → after.</p><div class="samples">${figures.join('')}</div>`;
}

async function unitsBlock(units: ShortcutUnits): Promise<string> {
  const rows = (['none', 'carriers', 'random'] as const).flatMap((key) => [
    { label: ABLATED[key](units), value: units.accuracy.data[key], series: 'audit data' },
    ...(units.accuracy.shifted
      ? [{ label: ABLATED[key](units), value: units.accuracy.shifted[key], series: 'shifted data' }]
      : []),
  ]);
  return `<h3>The units that carry it</h3><p><code>${escapeHtml(units.hook)}</code> units ${units.units.map((u) => `#${u}`).join(', ')} (${units.units.length} of ${units.width}). Mean-ablating them cuts the counterfactual flip rate from ${percent(units.flipRate.none)} to ${percent(units.flipRate.carriers)}; as many random units: ${percent(units.flipRate.random)}.</p>
${spreadNote(units)}<div class="charts">${await renderChart(ablationCurve(units.flipRate.none, units.curve, units.flipRate.random))}${await renderChart(barChart(rows, 'Accuracy with units mean-ablated', 'accuracy'))}</div>
<p class="meta">Dashed line: the flip rate with ${units.units.length} random units ablated.</p>`;
}

/** The shortcut's verdict (audit.ts, shortcutVerdict): spread over many units, held by a direction. */
function spreadNote(units: ShortcutUnits): string {
  const verdict = shortcutVerdict(units);
  const spread = verdict.spread
    ? `<p><strong>The shortcut is spread over many units:</strong> ablating the ${units.units.length} that carry most of it removes only ${percent(verdict.flipsRemoved)} of the counterfactual flips, so no small part of the network can be cut out to fix it; retraining is the remedy (see the fixes).</p>`
    : '';
  const d = units.direction;
  const direction = d
    ? `<p><strong>${directionHeading(verdict)}</strong> one direction of <code>${escapeHtml(units.hook)}</code> holds ${percent(d.energyShare)} of how the counterfactual moves the layer; projecting it out (mean ablation along it) cuts the flips from ${percent(d.flipRate.none)} to ${percent(d.flipRate.projected)}, with accuracy ${percent(d.accuracy.data.none)} → ${percent(d.accuracy.data.projected)} on the audit data${d.accuracy.shifted ? ` and ${percent(d.accuracy.shifted.none)} → ${percent(d.accuracy.shifted.projected)} on the shifted data` : ''}. A diagnosis, not a repair: the layers after it were trained to read that direction.</p>`
    : '';
  return spread + direction;
}

/** The direction's paragraph leads with the verdict: it holds the shortcut (≥ ½ of the flips) or not. */
function directionHeading({ spread, inDirection }: ShortcutVerdict): string {
  if (inDirection)
    return spread
      ? 'It lives in a direction rather than in units:'
      : 'One direction carries it too:';
  return spread ? 'No single direction carries it either:' : 'No single direction carries it:';
}

const ABLATED = {
  none: () => 'nothing ablated',
  carriers: (u: ShortcutUnits) => `${u.units.length} carrier units`,
  random: (u: ShortcutUnits) => `${u.units.length} random units`,
};

async function segmentSection(findings: Finding[]): Promise<string> {
  if (!findings.length) return '';
  const rows = findings.map(
    (f) =>
      `<tr><td><span class="badge ${f.severity}">${f.severity}</span></td><td>${escapeHtml(f.segment)}</td><td>${f.evidence.size}</td><td>${percent(f.evidence.accuracy as number)}</td><td>${percent(f.evidence.restAccuracy as number)}</td><td>${formatP(f.adjustedP).replace('= ', '')}</td></tr>`,
  );
  const bars = findings.flatMap((f) => [
    { label: f.segment!, value: f.evidence.accuracy as number, series: 'segment' },
    { label: f.segment!, value: f.evidence.restAccuracy as number, series: 'rest' },
  ]);
  return `<section id="segments"><h2>Weak segments</h2><table><tr><th>severity</th><th>segment</th><th>examples</th><th>accuracy</th><th>rest</th><th>adj. p</th></tr>${rows.join('')}</table>
<div class="charts">${await renderChart(barChart(bars, 'Segment vs rest', 'accuracy'))}</div></section>`;
}

async function shiftSection({ result }: ReportInput): Promise<string> {
  if (!result.shift?.length) return '';
  const flagged = new Map(
    result.findings.filter((f) => f.detector === 'shift').map((f) => [f.segment, f]),
  );
  const rows = result.shift.map((g) => {
    const f = flagged.get(g.group);
    return `<tr><td>${f ? `<span class="badge ${f.severity}">${f.severity}</span>` : '—'}</td><td>${escapeHtml(g.group)}</td><td>${percent(g.accuracy)} (${g.size})</td><td>${percent(g.shiftedAccuracy)} (${g.shiftedSize})</td></tr>`;
  });
  const bars = result.shift.flatMap((g) => [
    { label: g.group, value: g.accuracy, series: 'audit data' },
    { label: g.group, value: g.shiftedAccuracy, series: 'shifted data' },
  ]);
  return `<section id="shift"><h2>Shift</h2><table><tr><th>severity</th><th>group</th><th>audit data</th><th>shifted data</th></tr>${rows.join('')}</table>
<div class="charts">${await renderChart(barChart(bars, 'Accuracy per group', 'accuracy'))}</div></section>`;
}

async function calibrationSection(result: AuditResult): Promise<string> {
  const c = result.calibration;
  const finding = result.findings.find((f) => f.detector === 'calibration');
  return `<section id="calibration"><h2>${finding ? `<span class="badge ${finding.severity}">${finding.severity}</span>` : ''}Calibration</h2>
<p>Expected calibration error ${(100 * c.ece).toFixed(1)} points over ${c.bins.length} equal-width bins; mean confidence ${percent(c.meanConfidence)} vs accuracy ${percent(c.accuracy)}; ${percent(c.overconfidenceRate)} of predictions are wrong with confidence ≥ ${result.config.calibration.overconfidence}.${finding ? '' : ' Not significant: no finding.'}</p>
<div class="charts">${await renderChart(reliabilityDiagram(c.bins))}</div></section>`;
}

async function featureSection(result: AuditResult): Promise<string> {
  if (!result.featureReliance.length) return '';
  const top = result.featureReliance.slice(0, 15);
  return `<section id="features"><h2>Reliance on each feature</h2><p>Accuracy lost when the column is shuffled (points), most relied-on first.</p>
<div class="charts">${await renderChart(
    pointsChart(
      top.map((f) => ({ label: f.feature, value: f.reliance })),
      'Permutation reliance',
      'accuracy lost (points)',
    ),
  )}</div></section>`;
}

async function fixesSection(fixes: FixesResult): Promise<string> {
  const rows = fixes.rows.map(
    (r) =>
      `<tr><td>${escapeHtml(r.method)}</td><td>${percent(r.inDistribution)}</td><td>${percent(r.outOfDistribution)}</td><td>${escapeHtml(r.settings)}</td><td>${r.seconds.toFixed(1)} s</td></tr>`,
  );
  const bars = fixes.rows.flatMap((r) => [
    { label: r.method, value: r.inDistribution, series: 'in distribution' },
    { label: r.method, value: r.outOfDistribution, series: 'out of distribution' },
  ]);
  return `<section id="fixes"><h2>Fixes, measured</h2><p>${escapeHtml(fixes.description)}</p>
<table><tr><th>training</th><th>in distribution</th><th>out of distribution</th><th>settings</th><th>time</th></tr>${rows.join('')}</table>
<div class="charts">${await renderChart(barChart(bars, 'Accuracy before and after the fixes', 'accuracy'))}</div></section>`;
}

function methodSection(result: AuditResult): string {
  return `<section id="method"><h2>How this was measured</h2><p>${result.tests} tests ran; ${result.silent} were silent (not significant after correction). Thresholds: high ≥ ${result.config.high} points, medium ≥ ${result.config.medium}, significance ${result.config.alpha} (Holm). Detectors and tests: docs/audit.md. The JSON result (<code>--json</code>) holds every number shown here.</p>${result.notes.map((note) => `<p class="meta">${escapeHtml(note)}</p>`).join('')}</section>`;
}

/** "< 0.0001" or "= 0.0123", to follow "p". */
function formatP(p: number): string {
  return p < 1e-4 ? '< 0.0001' : `= ${p.toFixed(4)}`;
}
