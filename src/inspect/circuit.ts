/**
 * Circuit discovery by greedy pruning (in the spirit of ACDC, over units): start from the whole
 * model and, round after round, mean-ablate the one remaining unit whose ablation hurts the
 * metric least — as long as the pruned model keeps faithfulness (its metric ÷ the full model's)
 * at or above 1 − tolerance. What is left is the circuit; every round's metric is the ablation
 * curve. Each round evaluates every candidate in stacked sweeps (sweep.ts).
 */
import { patch, type Intervention } from '../graph/interventions.ts';
import type { Hook } from '../graph/hooks.ts';
import type { Model } from '../runtime/model.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import { perExample, type MetricSpec } from './metric.ts';
import { sweepOutputs } from './sweep.ts';

export interface CircuitUnit {
  hook: string;
  unit: number;
}

export interface Circuit {
  units: CircuitUnit[];
  /** Full-model metric and the circuit's, and their ratio. */
  fullMetric: number;
  circuitMetric: number;
  faithfulness: number;
  /** After each pruning step: units kept and the metric. */
  curve: { kept: number; metric: number }[];
}

/** `metric` must be positive for a better model (accuracy, logit difference): faithfulness is a ratio. */
export async function discoverCircuit(
  model: Model,
  feeds: Feeds,
  labels: Tensor | undefined,
  hooks: Hook[],
  means: Map<string, Tensor>,
  unitCounts: Map<string, number>,
  options: { metric: MetricSpec; tolerance: number; maxRows?: number },
): Promise<Circuit> {
  const all: CircuitUnit[] = hooks.flatMap((hook) =>
    Array.from({ length: unitCounts.get(hook.name)! }, (_, unit) => ({ hook: hook.name, unit })),
  );
  const mean = (values: Float64Array) => values.reduce((a, b) => a + b, 0) / values.length;
  const evaluate = async (variants: CircuitUnit[][]): Promise<number[]> => {
    const results: number[] = [];
    const interventions = variants.map((ablated) =>
      hooks.flatMap((hook): Intervention[] => {
        const units = ablated
          .filter((entry) => entry.hook === hook.name)
          .map((entry) => entry.unit);
        return units.length ? [patch(hook.name, means.get(hook.name)!, { units })] : [];
      }),
    );
    await sweepOutputs(
      model,
      feeds,
      interventions,
      (variant, output) => {
        results[variant] = mean(perExample(options.metric, output, labels));
      },
      { maxRows: options.maxRows },
    );
    return results;
  };
  const [fullMetric] = await evaluate([[]]);
  let ablated: CircuitUnit[] = [];
  let remaining = [...all];
  let current = fullMetric;
  const curve = [{ kept: remaining.length, metric: fullMetric }];
  while (remaining.length > 0) {
    const scores = await evaluate(remaining.map((candidate) => [...ablated, candidate]));
    const best = scores.reduce(
      (bestIndex, score, index) => (score > scores[bestIndex] ? index : bestIndex),
      0,
    );
    if (scores[best] / fullMetric < 1 - options.tolerance) break;
    ablated = [...ablated, remaining[best]];
    remaining = remaining.filter((_, index) => index !== best);
    current = scores[best];
    curve.push({ kept: remaining.length, metric: current });
  }
  return {
    units: remaining,
    fullMetric,
    circuitMetric: current,
    faithfulness: current / fullMetric,
    curve,
  };
}
