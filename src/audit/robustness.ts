/**
 * Robustness: the prediction flip rate under small random perturbations — Gaussian pixel noise
 * (σ = config.robustness.imageNoise, clipped to [0, 1]) for images, noise of
 * config.robustness.tableNoise × each feature's standard deviation for tables. Effect: the flip
 * rate in points; test: one-sided binomial test against the tolerated flip rate.
 */
import type { Predictor } from './predictions.ts';
import { binomialUpperTail, wilsonInterval } from '../stats.ts';
import type { AuditConfig } from './config.ts';
import type { AuditData } from './data.ts';
import type { Check } from './findings.ts';
import { predict, type Predictions } from './predictions.ts';
import { perturbTable, transformExamples } from './transforms.ts';

/**
 * The robustness check's measurement, kept whether or not it became a finding: a flip rate of
 * 0 under noise is as much an answer as 20%.
 */
export interface RobustnessMeasurement {
  /** The noise, in words (its σ, and per pixel or per feature). */
  perturbation: string;
  /** The share of examples whose predicted class the noise changed: flips / examples. */
  flipRate: number;
  /** Wilson 95% interval of the flip rate. */
  interval: [number, number];
  flips: number;
  examples: number;
}

/** The measurement a `robustness` check (robustnessCheck) carries in its metric and evidence. */
export function robustnessMeasurement(check: Check): RobustnessMeasurement {
  const evidence = check.evidence as { perturbation: string; flips: number; examples: number };
  return {
    perturbation: evidence.perturbation,
    flipRate: check.metric.value,
    interval: check.metric.interval,
    flips: evidence.flips,
    examples: evidence.examples,
  };
}

export async function robustnessCheck(
  model: Predictor,
  data: AuditData,
  base: Predictions,
  config: AuditConfig,
  batchSize: number,
): Promise<Check | undefined> {
  const { layout } = data;
  if (layout.kind === 'other') return undefined;
  const perturbed =
    layout.kind === 'image'
      ? transformExamples('noise', data.inputs, {
          sigma: config.robustness.imageNoise,
          seed: config.seed + 1,
        })
      : perturbTable(data.inputs, config.robustness.tableNoise, config.seed + 1);
  const after = await predict(model, perturbed, { batchSize });
  let flips = 0;
  for (let i = 0; i < base.examples; i++) if (after.predicted[i] !== base.predicted[i]) flips++;
  const n = base.examples;
  const perturbation =
    layout.kind === 'image'
      ? `Gaussian pixel noise σ = ${config.robustness.imageNoise}`
      : `Gaussian noise of ${config.robustness.tableNoise} × each feature's standard deviation`;
  return {
    detector: 'robustness',
    title: `${((100 * flips) / n).toFixed(1)}% of predictions change under ${perturbation} (tolerated: ${(100 * config.flipTolerance).toFixed(1)}%)`,
    metric: {
      name: 'flip rate under perturbation',
      value: flips / n,
      interval: wilsonInterval(flips, n),
    },
    effect: (100 * flips) / n,
    pValue: binomialUpperTail(flips, n, config.flipTolerance),
    evidence: { perturbation, flips, examples: n, flipTolerance: config.flipTolerance },
  };
}
