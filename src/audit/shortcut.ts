/**
 * Shortcut reliance on a named attribute: change the attribute and nothing else (a counterfactual
 * transform, transforms.ts), and count how many predictions change. A model that uses the digit,
 * not the colour, keeps its answer when the colours are swapped.
 *
 * Effect: the flip rate in points. Test: one-sided binomial test of the flips against the
 * tolerated flip rate (config.flipTolerance). Evidence: accuracy before and after (McNemar's test)
 * and how well the attribute alone predicts the label, next to the model's accuracy.
 */
import { InputError } from '../errors.ts';
import type { Predictor } from './predictions.ts';
import { binomialUpperTail, mcnemarP, wilsonInterval } from '../stats.ts';
import type { AuditConfig } from './config.ts';
import type { AuditData } from './data.ts';
import type { Check } from './findings.ts';
import { correctCount, predict, type Predictions } from './predictions.ts';
import { fitStump } from './stump.ts';
import {
  checkTransform,
  transformExamples,
  type DataLayout,
  type TransformName,
} from './transforms.ts';

export interface Counterfactual {
  attribute: string;
  transform: TransformName;
  /** Table transforms: the column they act on. */
  column?: number;
}

/** Parses `NAME:TRANSFORM` (split at the last ':', so names may hold ':') against the data's layout. */
export function parseCounterfactual(text: string, layout: DataLayout): Counterfactual {
  const at = text.lastIndexOf(':');
  if (at <= 0 || at === text.length - 1)
    throw new InputError(
      `--counterfactual expects NAME:TRANSFORM (e.g. color:channel-swap or group:flip), got '${text}'.`,
    );
  const attribute = text.slice(0, at);
  const transform = checkTransform(text.slice(at + 1), layout, attribute);
  const column = layout.kind === 'table' ? layout.featureNames.indexOf(attribute) : -1;
  return { attribute, transform, column: column >= 0 ? column : undefined };
}

export interface ShortcutEvidence {
  transform: TransformName;
  flipRate: number;
  flipInterval: [number, number];
  flips: number;
  examples: number;
  accuracy: { original: number; counterfactual: number; mcnemarP: number };
  attributeAlone?: { accuracy: number; rule: string };
  modelAccuracy: number;
  /** A few examples whose prediction the transform flipped (for the report's pictures). */
  samples: { index: number; label: number; predicted: number; counterfactualPredicted: number }[];
}

/**
 * One counterfactual's measurement, kept whether or not it became a finding: a flip rate of 0.3%
 * answers "does this classifier avoid the attribute" as much as 80% answers the opposite.
 */
export interface CounterfactualMeasurement {
  attribute: string;
  transform: TransformName;
  /** The share of examples whose predicted class the transform changed: flips / examples. */
  flipRate: number;
  /** Wilson 95% interval of the flip rate. */
  interval: [number, number];
  flips: number;
  examples: number;
}

/** The measurement a `shortcut-attribute` check (shortcutCheck) carries in its evidence. */
export function counterfactualMeasurement(check: Check): CounterfactualMeasurement {
  const evidence = check.evidence as unknown as ShortcutEvidence;
  return {
    attribute: check.attribute!,
    transform: evidence.transform,
    flipRate: evidence.flipRate,
    interval: evidence.flipInterval,
    flips: evidence.flips,
    examples: evidence.examples,
  };
}

export async function shortcutCheck(
  model: Predictor,
  data: AuditData,
  base: Predictions,
  counterfactual: Counterfactual,
  config: AuditConfig,
  batchSize: number,
): Promise<Check> {
  const transformed = transformExamples(counterfactual.transform, data.inputs, {
    seed: config.seed,
    column: counterfactual.column,
  });
  const after = await predict(model, transformed, { batchSize });
  const n = data.labels.length;
  let flips = 0,
    rightToWrong = 0,
    wrongToRight = 0;
  const samples: ShortcutEvidence['samples'] = [];
  for (let i = 0; i < n; i++) {
    const was = base.predicted[i] === data.labels[i];
    const now = after.predicted[i] === data.labels[i];
    if (base.predicted[i] !== after.predicted[i]) {
      flips++;
      if (samples.length < 8)
        samples.push({
          index: i,
          label: data.labels[i],
          predicted: base.predicted[i],
          counterfactualPredicted: after.predicted[i],
        });
    }
    if (was && !now) rightToWrong++;
    if (!was && now) wrongToRight++;
  }
  const attribute = data.attributes.find((a) => a.name === counterfactual.attribute);
  const alone = attribute && fitStump(attribute.values, data.labels, base.classes);
  const modelAccuracy = correctCount(base.predicted, data.labels) / n;
  const evidence: ShortcutEvidence = {
    transform: counterfactual.transform,
    flipRate: flips / n,
    flipInterval: wilsonInterval(flips, n),
    flips,
    examples: n,
    accuracy: {
      original: modelAccuracy,
      counterfactual: correctCount(after.predicted, data.labels) / n,
      mcnemarP: mcnemarP(rightToWrong, wrongToRight),
    },
    attributeAlone: alone && { accuracy: alone.accuracy, rule: alone.describe },
    modelAccuracy,
    samples,
  };
  const aloneText = alone
    ? `; '${counterfactual.attribute}' alone predicts the label with ${(100 * alone.accuracy).toFixed(1)}% accuracy (model: ${(100 * modelAccuracy).toFixed(1)}%)`
    : '';
  return {
    detector: 'shortcut-attribute',
    title: `Changing '${counterfactual.attribute}' (${counterfactual.transform}) flips ${(100 * evidence.flipRate).toFixed(1)}% of predictions; accuracy ${(100 * evidence.accuracy.original).toFixed(1)}% → ${(100 * evidence.accuracy.counterfactual).toFixed(1)}%${aloneText}`,
    attribute: counterfactual.attribute,
    feature: counterfactual.column !== undefined ? counterfactual.attribute : undefined,
    metric: {
      name: 'counterfactual flip rate',
      value: evidence.flipRate,
      interval: evidence.flipInterval,
    },
    effect: 100 * evidence.flipRate,
    pValue: binomialUpperTail(flips, n, config.flipTolerance),
    evidence: evidence as unknown as Record<string, unknown>,
  };
}
