/**
 * Weak segments: slices of the data where the model is worse than on the rest. Candidates are
 *   groups:     each class, each value of a categorical attribute, and attribute value × class;
 *   tables:     a one-feature tree — each value of a categorical feature, else `bins` quantile
 *               bins — and, below the worst one-feature slices, a second split on another feature.
 * Each slice of at least `minSize` examples is tested against its complement (two-proportion z
 * test); every candidate counts as a test in the audit's multiple-testing correction, so a large
 * search does not cry wolf. Effect: complement accuracy − slice accuracy, in points.
 */
import type { AuditConfig } from './config.ts';
import { categoriesOf, type AuditData } from './data.ts';
import type { Check } from './findings.ts';
import { exampleLosses, type Predictions } from './predictions.ts';
import { perFeature } from './features.ts';
import { columnOf } from './examples.ts';
import { twoProportionP, wilsonInterval } from '../stats.ts';

interface Slice {
  description: string;
  rows: Uint8Array;
  /** The feature (column) a table slice splits on. */
  feature?: number;
}

export interface SegmentSummary {
  /** Accuracy of the worst attribute × class group (the worst-group accuracy of the robustness literature). */
  worstGroup?: { group: string; accuracy: number; size: number };
  candidates: number;
}

export function segmentChecks(
  data: AuditData,
  predictions: Predictions,
  config: AuditConfig,
): { checks: Check[]; summary: SegmentSummary } {
  const n = data.labels.length;
  const correct = Uint8Array.from(data.labels, (label, i) =>
    predictions.predicted[i] === label ? 1 : 0,
  );
  const losses = exampleLosses(predictions, data.labels);
  const totalCorrect = correct.reduce((a, b) => a + b, 0);
  const { minSize } = config.segments;
  const score = (slice: Slice) => {
    let size = 0,
      right = 0,
      loss = 0;
    for (let i = 0; i < n; i++)
      if (slice.rows[i]) {
        size++;
        right += correct[i];
        loss += losses[i];
      }
    return { size, right, loss: size ? loss / size : 0, accuracy: size ? right / size : 0 };
  };
  const groupSlices = groupCandidates(data);
  const oneFeature = perFeature(data, config) ? featureCandidates(data, config.segments.bins) : [];
  const worst = oneFeature
    .map((slice) => ({ slice, ...score(slice) }))
    .filter((s) => s.size >= minSize)
    .sort((a, b) => a.accuracy - b.accuracy)
    .slice(0, 5);
  const seen = new Set<string>();
  const twoFeature = worst.flatMap(({ slice }) =>
    oneFeature
      .filter((other) => other.feature !== slice.feature)
      .flatMap((other) => {
        const key = [slice.description, other.description].sort().join('\n'); // a ∧ b is b ∧ a
        if (seen.has(key)) return [];
        seen.add(key);
        return [
          {
            description: `${slice.description} and ${other.description}`,
            rows: slice.rows.map((r, i) => r & other.rows[i]),
            feature: slice.feature,
          },
        ];
      }),
  );
  const candidates = [...groupSlices, ...oneFeature, ...twoFeature];
  const checks: Check[] = [];
  for (const slice of candidates) {
    const s = score(slice);
    const restSize = n - s.size,
      restRight = totalCorrect - s.right;
    if (s.size < minSize || restSize === 0) continue;
    const restAccuracy = restRight / restSize;
    const effect = 100 * (restAccuracy - s.accuracy);
    checks.push({
      detector: 'weak-segment',
      title: `Examples with ${slice.description} (${s.size}, ${((100 * s.size) / n).toFixed(1)}% of the data): accuracy ${(100 * s.accuracy).toFixed(1)}% vs ${(100 * restAccuracy).toFixed(1)}% on the rest`,
      segment: slice.description,
      metric: {
        name: 'segment accuracy',
        value: s.accuracy,
        interval: wilsonInterval(s.right, s.size),
      },
      effect: Math.max(0, effect),
      pValue: effect > 0 ? twoProportionP(s.right, s.size, restRight, restSize) : 1,
      evidence: {
        size: s.size,
        accuracy: s.accuracy,
        restAccuracy,
        meanLoss: s.loss,
        overallAccuracy: totalCorrect / n,
      },
    });
  }
  return { checks, summary: { worstGroup: worstGroup(data, correct), candidates: checks.length } };
}

function groupCandidates(data: AuditData): Slice[] {
  const classes = [...new Set(data.labels)].sort((a, b) => a - b);
  const byClass = classes.map((label) => ({
    description: `label = ${label}`,
    rows: Uint8Array.from(data.labels, (l) => (l === label ? 1 : 0)),
  }));
  const byAttribute = data.attributes.flatMap((attribute) => {
    const values = categoriesOf(attribute.values);
    if (!values) return [];
    return values.flatMap((value) => {
      const rows = Uint8Array.from(attribute.values, (v) => (v === value ? 1 : 0));
      return [
        { description: `${attribute.name} = ${value}`, rows },
        ...byClass.map((c) => ({
          description: `${attribute.name} = ${value} and ${c.description}`,
          rows: rows.map((r, i) => r & c.rows[i]),
        })),
      ];
    });
  });
  return [...byClass, ...byAttribute];
}

function featureCandidates(data: AuditData, bins: number): Slice[] {
  if (data.layout.kind !== 'table') return [];
  return data.layout.featureNames.flatMap((name, column) => {
    const values = columnOf(data.inputs, column);
    const categories = categoriesOf(values, 10);
    if (categories)
      return categories.map((value) => ({
        description: `${name} = ${value}`,
        rows: Uint8Array.from(values, (v) => (v === value ? 1 : 0)),
        feature: column,
      }));
    const sorted = Float64Array.from(values).sort();
    const cuts = [
      ...new Set(
        Array.from(
          { length: bins - 1 },
          (_, k) => sorted[Math.floor(((k + 1) / bins) * sorted.length)],
        ),
      ),
    ];
    const edges = [-Infinity, ...cuts, Infinity];
    return edges.slice(0, -1).map((low, k) => {
      const high = edges[k + 1];
      const description =
        low === -Infinity
          ? `${name} < ${high.toPrecision(3)}`
          : high === Infinity
            ? `${name} ≥ ${low.toPrecision(3)}`
            : `${low.toPrecision(3)} ≤ ${name} < ${high.toPrecision(3)}`;
      return {
        description,
        rows: Uint8Array.from(values, (v) => (v >= low && v < high ? 1 : 0)),
        feature: column,
      };
    });
  });
}

function worstGroup(data: AuditData, correct: Uint8Array): SegmentSummary['worstGroup'] {
  let worst: SegmentSummary['worstGroup'];
  for (const attribute of data.attributes) {
    const values = categoriesOf(attribute.values);
    if (!values) continue;
    const classes = [...new Set(data.labels)];
    for (const value of values)
      for (const label of classes) {
        let size = 0,
          right = 0;
        for (let i = 0; i < correct.length; i++)
          if (attribute.values[i] === value && data.labels[i] === label) {
            size++;
            right += correct[i];
          }
        if (size && (!worst || right / size < worst.accuracy))
          worst = {
            group: `${attribute.name} = ${value} and label = ${label}`,
            accuracy: right / size,
            size,
          };
      }
  }
  return worst;
}
