/**
 * Calibration of the top-label confidence (Guo et al. 2017): examples binned by confidence into
 * B equal-width bins on [0, 1]; ECE = Σ_b (n_b / N)·|accuracy_b − confidence_b|.
 *
 * Significance by consistency resampling (Bröcker & Smith 2007): if the model were calibrated,
 * each prediction would be right with probability equal to its confidence; redrawing "right" that
 * way R times gives the ECE a calibrated model shows on this sample by chance alone, and
 * p = (1 + #{ECE* ≥ ECE}) / (R + 1). Its 95% interval is a percentile bootstrap over the examples.
 */
import { seededRandom } from '../random.ts';
import type { AuditConfig } from './config.ts';
import type { Check } from './findings.ts';
import type { Predictions } from './predictions.ts';

export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  accuracy: number;
  confidence: number;
}

export interface CalibrationResult {
  ece: number;
  bins: ReliabilityBin[];
  /** Fraction of examples predicted wrongly with confidence ≥ the overconfidence level. */
  overconfidenceRate: number;
  accuracy: number;
  meanConfidence: number;
}

export function calibrationOf(
  confidence: ArrayLike<number>,
  correct: ArrayLike<boolean>,
  bins: number,
  overconfidence = 0.9,
): CalibrationResult {
  const n = confidence.length;
  const counts = new Float64Array(bins),
    rights = new Float64Array(bins),
    sums = new Float64Array(bins);
  let right = 0,
    sumConfidence = 0,
    overconfident = 0;
  for (let i = 0; i < n; i++) {
    const bin = binOf(confidence[i], bins);
    counts[bin]++;
    sums[bin] += confidence[i];
    if (correct[i]) {
      rights[bin]++;
      right++;
    } else if (confidence[i] >= overconfidence) overconfident++;
    sumConfidence += confidence[i];
  }
  let ece = 0;
  const result: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const count = counts[b];
    const accuracy = count ? rights[b] / count : 0;
    const meanConfidence = count ? sums[b] / count : 0;
    ece += (count / n) * Math.abs(accuracy - meanConfidence);
    result.push({
      lower: b / bins,
      upper: (b + 1) / bins,
      count,
      accuracy,
      confidence: meanConfidence,
    });
  }
  return {
    ece,
    bins: result,
    overconfidenceRate: overconfident / n,
    accuracy: right / n,
    meanConfidence: sumConfidence / n,
  };
}

/** Bins [0, 1/B), [1/B, 2/B), …, [(B−1)/B, 1]: a confidence of exactly 1 falls in the last. */
function binOf(confidence: number, bins: number): number {
  return Math.min(bins - 1, Math.floor(confidence * bins));
}

export function calibrationCheck(
  predictions: Predictions,
  labels: Int32Array,
  config: AuditConfig,
): { check: Check; result: CalibrationResult } {
  const { bins, resamples, overconfidence } = config.calibration;
  const correct = Array.from(labels, (label, i) => predictions.predicted[i] === label);
  const result = calibrationOf(predictions.confidence, correct, bins, overconfidence);
  const random = seededRandom(config.seed + 17);
  let asLarge = 0;
  const drawn = new Array<boolean>(labels.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < drawn.length; i++) drawn[i] = random() < predictions.confidence[i];
    if (calibrationOf(predictions.confidence, drawn, bins).ece >= result.ece) asLarge++;
  }
  const pValue = (1 + asLarge) / (resamples + 1);
  const interval = bootstrapInterval(
    predictions.confidence,
    correct,
    bins,
    resamples,
    config.seed + 29,
  );
  const direction = result.meanConfidence > result.accuracy ? 'overconfident' : 'underconfident';
  return {
    result,
    check: {
      detector: 'calibration',
      title: `Expected calibration error ${(100 * result.ece).toFixed(1)} pts (${direction}: mean confidence ${(100 * result.meanConfidence).toFixed(1)}% vs accuracy ${(100 * result.accuracy).toFixed(1)}%); ${(100 * result.overconfidenceRate).toFixed(1)}% of predictions are wrong with confidence ≥ ${overconfidence}`,
      metric: { name: 'expected calibration error', value: result.ece, interval },
      effect: 100 * result.ece,
      pValue,
      evidence: {
        bins: result.bins,
        overconfidenceRate: result.overconfidenceRate,
        overconfidenceLevel: overconfidence,
        accuracy: result.accuracy,
        meanConfidence: result.meanConfidence,
        resamples,
        test: 'consistency resampling (Bröcker & Smith 2007)',
      },
    },
  };
}

/** 95% percentile bootstrap interval of the ECE: examples resampled with replacement, seeded. */
function bootstrapInterval(
  confidence: Float64Array,
  correct: boolean[],
  bins: number,
  resamples: number,
  seed: number,
): [number, number] {
  const random = seededRandom(seed);
  const n = confidence.length;
  const sampledConfidence = new Float64Array(n);
  const sampledCorrect = new Array<boolean>(n);
  const eces: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) {
      const k = Math.floor(random() * n);
      sampledConfidence[i] = confidence[k];
      sampledCorrect[i] = correct[k];
    }
    eces.push(calibrationOf(sampledConfidence, sampledCorrect, bins).ece);
  }
  eces.sort((a, b) => a - b);
  return [eces[Math.floor(0.025 * (resamples - 1))], eces[Math.ceil(0.975 * (resamples - 1))]];
}
