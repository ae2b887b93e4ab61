/**
 * How well one feature alone predicts the label: a one-feature rule fitted on the audit data —
 * the majority label per value for a categorical feature (≤ 20 distinct values), otherwise the
 * best single threshold (majority label on each side) among 32 quantile cut points.
 */
import { categoriesOf } from './data.ts';

export interface Stump {
  predict(value: number): number;
  accuracy: number;
  describe: string;
}

export function fitStump(values: Float64Array, labels: Int32Array, classes: number): Stump {
  const categories = categoriesOf(values);
  if (categories) {
    const majority = new Map(
      categories.map((category) => [
        category,
        majorityLabel(labels, classes, (i) => values[i] === category),
      ]),
    );
    const fallback = majorityLabel(labels, classes, () => true);
    const predict = (value: number) => majority.get(value) ?? fallback;
    return {
      predict,
      accuracy: accuracyOf(values, labels, predict),
      describe: categories.map((c) => `${c} → ${majority.get(c)}`).join(', '),
    };
  }
  const sorted = Float64Array.from(values).sort();
  let best: Stump | undefined;
  for (let q = 1; q < 32; q++) {
    const cut = sorted[Math.floor((q / 32) * sorted.length)];
    const below = majorityLabel(labels, classes, (i) => values[i] < cut);
    const above = majorityLabel(labels, classes, (i) => values[i] >= cut);
    const predict = (value: number) => (value < cut ? below : above);
    const accuracy = accuracyOf(values, labels, predict);
    if (!best || accuracy > best.accuracy)
      best = { predict, accuracy, describe: `< ${cut.toPrecision(4)} → ${below}, else ${above}` };
  }
  return best!;
}

export function accuracyOf(
  values: Float64Array,
  labels: Int32Array,
  predict: (value: number) => number,
): number {
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (predict(values[i]) === labels[i]) right++;
  return right / labels.length;
}

function majorityLabel(labels: Int32Array, classes: number, keep: (i: number) => boolean): number {
  const counts = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) if (keep(i)) counts[labels[i]]++;
  let best = 0;
  for (let c = 1; c < classes; c++) if (counts[c] > counts[best]) best = c;
  return best;
}
