/**
 * Shortcut discovery without a named attribute, for tables: rank the features by the model's
 * reliance on them — the accuracy lost when the column is shuffled across rows (permutation
 * importance, McNemar's test on the paired outcomes) — and flag
 *   with a shifted set:    a relied-on feature whose relation to the label changed: the accuracy
 *                          of its one-feature rule (stump.ts), fitted on the audit data, drops on
 *                          the shifted data (two-proportion test);
 *   without one:           a relied-on feature that alone predicts the label almost as well as the
 *                          model (within config.features.aloneGap points).
 * Effect: the reliance in points. A flag needs both parts significant, so its p-value is the
 * larger of the two (an intersection–union test).
 */
import type { Predictor } from './predictions.ts';
import { mcnemarP, pairedDifferenceInterval, twoProportionP } from '../stats.ts';
import type { AuditConfig } from './config.ts';
import type { AuditData } from './data.ts';
import type { Check } from './findings.ts';
import { correctCount, predict, type Predictions } from './predictions.ts';
import { accuracyOf, fitStump } from './stump.ts';
import { transformExamples } from './transforms.ts';
import { columnOf } from './examples.ts';

export interface FeatureReliance {
  feature: string;
  /** Accuracy lost when the column is shuffled, in points. */
  reliance: number;
  /** 95% interval of the reliance, in points. */
  relianceInterval: [number, number];
  relianceP: number;
  /** Accuracy of the feature's one-feature rule on the audit data (and on the shifted data). */
  aloneAccuracy: number;
  shiftedAloneAccuracy?: number;
}

export async function featureChecks(
  model: Predictor,
  data: AuditData,
  base: Predictions,
  shifted: AuditData | undefined,
  config: AuditConfig,
  batchSize: number,
): Promise<{ ranking: FeatureReliance[]; checks: Check[] }> {
  if (!perFeature(data, config) || data.layout.kind !== 'table') return { ranking: [], checks: [] };
  const names = data.layout.featureNames;
  const n = data.labels.length;
  const modelAccuracy = correctCount(base.predicted, data.labels) / n;
  const ranking: FeatureReliance[] = [];
  const checks: Check[] = [];
  for (const [column, feature] of names.entries()) {
    const shuffled = await predict(
      model,
      transformExamples('shuffle', data.inputs, { column, seed: config.seed + column }),
      { batchSize },
    );
    let rightToWrong = 0,
      wrongToRight = 0;
    for (let i = 0; i < n; i++) {
      const was = base.predicted[i] === data.labels[i],
        now = shuffled.predicted[i] === data.labels[i];
      if (was && !now) rightToWrong++;
      if (!was && now) wrongToRight++;
    }
    const values = columnOf(data.inputs, column);
    const stump = fitStump(values, data.labels, base.classes);
    const entry: FeatureReliance = {
      feature,
      reliance: (100 * (rightToWrong - wrongToRight)) / n,
      relianceInterval: pairedDifferenceInterval(rightToWrong, wrongToRight, n).map(
        (v) => 100 * v,
      ) as [number, number],
      relianceP: mcnemarP(rightToWrong, wrongToRight),
      aloneAccuracy: stump.accuracy,
    };
    if (shifted)
      entry.shiftedAloneAccuracy = accuracyOf(
        columnOf(shifted.inputs, column),
        shifted.labels,
        stump.predict,
      );
    ranking.push(entry);
    if (entry.reliance <= 0) continue;
    const evidence = {
      reliance: entry.reliance,
      relianceP: entry.relianceP,
      aloneAccuracy: stump.accuracy,
      aloneRule: stump.describe,
      modelAccuracy,
      shiftedAloneAccuracy: entry.shiftedAloneAccuracy,
    };
    const base_ = {
      detector: 'shortcut-feature' as const,
      feature,
      metric: {
        name: 'accuracy lost when shuffled (points)',
        value: entry.reliance,
        interval: entry.relianceInterval,
      },
      effect: entry.reliance,
    };
    if (shifted) {
      const change = 100 * (stump.accuracy - entry.shiftedAloneAccuracy!);
      if (change < config.medium) continue;
      const changeP = twoProportionP(
        Math.round(stump.accuracy * n),
        n,
        Math.round(entry.shiftedAloneAccuracy! * shifted.labels.length),
        shifted.labels.length,
      );
      checks.push({
        ...base_,
        pValue: Math.max(entry.relianceP, changeP),
        evidence: { ...evidence, relationChange: change, relationChangeP: changeP },
        title: `The model relies on '${feature}' (shuffling it costs ${entry.reliance.toFixed(1)} pts) and its relation to the label changed: alone it predicts ${(100 * stump.accuracy).toFixed(1)}% in the audit data but ${(100 * entry.shiftedAloneAccuracy!).toFixed(1)}% in the shifted data`,
      });
    } else if (100 * (modelAccuracy - stump.accuracy) <= config.features.aloneGap) {
      checks.push({
        ...base_,
        pValue: entry.relianceP,
        evidence,
        title: `'${feature}' alone predicts the label with ${(100 * stump.accuracy).toFixed(1)}% accuracy, almost as well as the model (${(100 * modelAccuracy).toFixed(1)}%), and the model relies on it (shuffling it costs ${entry.reliance.toFixed(1)} pts): a likely shortcut`,
      });
    }
  }
  ranking.sort((a, b) => b.reliance - a.reliance);
  return { ranking, checks };
}

/** Whether the per-feature detectors run: tables of at most config.features.maxFeatures columns. */
export function perFeature(data: AuditData, config: AuditConfig): boolean {
  return (
    data.layout.kind === 'table' && data.layout.featureNames.length <= config.features.maxFeatures
  );
}
