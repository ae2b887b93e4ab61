/**
 * Shift: accuracy on the audit data vs on a shifted (deployment) set, overall, per class and per
 * value of each categorical attribute both sets have (table columns). Effect: the accuracy drop in
 * points; test: two-proportion z test.
 */
import { differenceInterval, twoProportionP } from '../stats.ts';
import { categoriesOf, type AuditData } from './data.ts';
import type { Check } from './findings.ts';
import type { Predictions } from './predictions.ts';

export interface ShiftGroup {
  group: string;
  accuracy: number;
  size: number;
  shiftedAccuracy: number;
  shiftedSize: number;
}

export function shiftChecks(
  data: AuditData,
  base: Predictions,
  shifted: AuditData,
  shiftedPredictions: Predictions,
): { checks: Check[]; groups: ShiftGroup[] } {
  const groups: {
    group: string;
    inData: (i: number) => boolean;
    inShifted: (i: number) => boolean;
  }[] = [{ group: 'all examples', inData: () => true, inShifted: () => true }];
  for (const label of [...new Set(data.labels)].sort((a, b) => a - b))
    groups.push({
      group: `label = ${label}`,
      inData: (i) => data.labels[i] === label,
      inShifted: (i) => shifted.labels[i] === label,
    });
  for (const attribute of data.attributes) {
    const other = shifted.attributes.find((a) => a.name === attribute.name);
    const values = other && categoriesOf(attribute.values);
    for (const value of values ?? [])
      groups.push({
        group: `${attribute.name} = ${value}`,
        inData: (i) => attribute.values[i] === value,
        inShifted: (i) => other!.values[i] === value,
      });
  }
  const results: ShiftGroup[] = [];
  const checks: Check[] = [];
  for (const { group, inData, inShifted } of groups) {
    const [size, right] = tally(data, base, inData);
    const [shiftedSize, shiftedRight] = tally(shifted, shiftedPredictions, inShifted);
    if (!size || !shiftedSize) continue;
    const entry = {
      group,
      accuracy: right / size,
      size,
      shiftedAccuracy: shiftedRight / shiftedSize,
      shiftedSize,
    };
    results.push(entry);
    const effect = 100 * (entry.accuracy - entry.shiftedAccuracy);
    checks.push({
      detector: 'shift',
      title: `Accuracy on ${group}: ${(100 * entry.accuracy).toFixed(1)}% in the audit data, ${(100 * entry.shiftedAccuracy).toFixed(1)}% on the shifted data (${shiftedSize} examples)`,
      segment: group,
      metric: {
        name: 'accuracy drop under shift (points)',
        value: effect,
        interval: differenceInterval(right, size, shiftedRight, shiftedSize).map(
          (v) => 100 * v,
        ) as [number, number],
      },
      effect: Math.max(0, effect),
      pValue: effect > 0 ? twoProportionP(right, size, shiftedRight, shiftedSize) : 1,
      evidence: entry as unknown as Record<string, unknown>,
    });
  }
  return { checks, groups: results };
}

function tally(
  data: AuditData,
  predictions: Predictions,
  keep: (i: number) => boolean,
): [number, number] {
  let size = 0,
    right = 0;
  for (let i = 0; i < data.labels.length; i++)
    if (keep(i)) {
      size++;
      if (predictions.predicted[i] === data.labels[i]) right++;
    }
  return [size, right];
}
