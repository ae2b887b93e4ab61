/**
 * `teardown audit`: every detector over the audit data (and the shifted data, when given), one
 * multiple-testing correction over all their tests (findings.ts), and for each high-severity
 * shortcut the units that carry it (inspect/carriers.ts) with what ablating them does on both
 * distributions.
 */
import { patch } from '../graph/interventions.ts';
import type { Hook } from '../graph/hooks.ts';
import { carriersPerHook, type Carriers } from '../inspect/carriers.ts';
import {
  attributeDirection,
  classesWithoutDirection,
  flipRateWithoutDirection,
} from '../inspect/direction.ts';
import type { Model } from '../runtime/model.ts';
import type { Feeds } from '../tensor.ts';
import { trackProgress, type ProgressOptions, type ProgressTracker } from '../progress.ts';
import { wilsonInterval } from '../stats.ts';
import { calibrationCheck, type CalibrationResult } from './calibration.ts';
import type { AuditConfig } from './config.ts';
import { checkLabels, type AuditData } from './data.ts';
import { featureChecks, perFeature, type FeatureReliance } from './features.ts';
import { assess, type Check, type Finding } from './findings.ts';
import {
  correctCount,
  isNetwork,
  predict,
  type Predictions,
  type Predictor,
} from './predictions.ts';
import {
  robustnessCheck,
  robustnessMeasurement,
  type RobustnessMeasurement,
} from './robustness.ts';
import { segmentChecks, type SegmentSummary } from './segments.ts';
import { shiftChecks, type ShiftGroup } from './shift.ts';
import {
  counterfactualMeasurement,
  shortcutCheck,
  type Counterfactual,
  type CounterfactualMeasurement,
} from './shortcut.ts';
import { transformExamples } from './transforms.ts';
import { inputNames, readFeeds, takeFeeds, type Examples } from './examples.ts';

export interface AuditOptions extends ProgressOptions {
  config: AuditConfig;
  counterfactuals: Counterfactual[];
  shifted?: AuditData;
  /** Hooks searched for the units that carry a shortcut (default: the model's activation modules). */
  hooks?: string[];
  batchSize: number;
}

export interface Accuracy {
  value: number;
  interval: [number, number];
  examples: number;
}

/** Where a high-severity shortcut lives (its carrier units, inspect/carriers.ts) and what removing them does. */
export interface ShortcutUnits extends Omit<Carriers, 'mean'> {
  shortcut: string;
  /** Accuracy with nothing, the carriers and as many random units mean-ablated. */
  accuracy: { data: AblationAccuracy; shifted?: AblationAccuracy };
  /** The same hook's attribute direction (inspect/direction.ts), where the hook is dense, and what projecting it out does. */
  direction?: DirectionEvidence;
}

export interface DirectionEvidence {
  energyShare: number;
  flipRate: { none: number; projected: number };
  accuracy: {
    data: { none: number; projected: number };
    shifted?: { none: number; projected: number };
  };
}

export interface AblationAccuracy {
  none: number;
  carriers: number;
  random: number;
}

export interface AuditResult {
  /** `inputs`: every model input fed, the transformed one first (the others pass through unchanged). */
  data: {
    path: string;
    examples: number;
    kind: string;
    classes: number;
    attributes: string[];
    inputs?: string[];
  };
  shifted?: { path: string; examples: number };
  accuracy: { data: Accuracy; shifted?: Accuracy };
  findings: Finding[];
  tests: number;
  silent: number;
  /**
   * Every counterfactual tested, in the order tested, with its flip rate whether or not it
   * became a finding (findings hold only those past the thresholds).
   */
  counterfactuals: CounterfactualMeasurement[];
  /**
   * The flip rate under small noise, whether or not it became a finding; absent when robustness
   * was not checked (an input that is neither a float image nor a table: see `notes`).
   */
  robustness?: RobustnessMeasurement;
  calibration: CalibrationResult;
  featureReliance: FeatureReliance[];
  segments: SegmentSummary;
  shift?: ShiftGroup[];
  shortcutUnits: ShortcutUnits[];
  /** What the audit could not check, and why. */
  notes: string[];
  config: AuditConfig;
}

/** The skip note of the detectors that read a network's insides, for a classifier that is not one. */
export const NOT_A_NETWORK =
  'Shortcut units (carrier units and the attribute direction of each high-severity shortcut): skipped: not a network.';

/** `model`: an ONNX network, or any classifier as { classes, predictProba } (the detectors that read a network's insides are skipped). */
export async function auditModel(
  model: Predictor,
  data: AuditData,
  options: AuditOptions,
): Promise<AuditResult> {
  const { config, shifted, batchSize } = options;
  const progress = trackProgress('audit', 6 + options.counterfactuals.length, options);
  const base = await predict(model, data.inputs, { batchSize });
  checkLabels(data, base.classes);
  const shiftedPredictions = shifted && (await predict(model, shifted.inputs, { batchSize }));
  if (shifted) checkLabels(shifted, base.classes, '--shifted');
  progress.tick(1, 'predictions');
  const ran = await runDetectors(
    model,
    data,
    base,
    shifted && { data: shifted, predictions: shiftedPredictions! },
    options,
    progress,
  );

  const assessed = assess(ran.checks, config);
  const findings = trimSegments(assessed.findings, config.segments.maxFindings);
  const notes = [...ran.notes];
  const hidden = assessed.findings.length - findings.length;
  if (hidden)
    notes.push(
      `${hidden} more significant weak segments overlap the ${config.segments.maxFindings} listed and are left out (segments.maxFindings).`,
    );
  const shortcutUnits = isNetwork(model)
    ? await carriersOfHighShortcuts(model, data, findings, options)
    : [];
  if (!isNetwork(model)) notes.push(NOT_A_NETWORK);
  progress.tick(2, 'shortcut units');
  progress.finish();
  return {
    data: {
      path: data.path,
      examples: data.labels.length,
      kind: data.layout.kind,
      classes: base.classes,
      attributes: data.attributes.map((a) => a.name),
      inputs: inputNames(data.inputs),
    },
    shifted: shifted && { path: shifted.path, examples: shifted.labels.length },
    accuracy: {
      data: accuracyOf(base, data),
      shifted: shifted && accuracyOf(shiftedPredictions!, shifted),
    },
    findings,
    tests: ran.checks.length,
    silent: assessed.silent,
    counterfactuals: ran.counterfactuals,
    ...(ran.robustness ? { robustness: ran.robustness } : {}),
    calibration: ran.calibration,
    featureReliance: ran.featureReliance,
    segments: ran.segments,
    shift: ran.shift,
    shortcutUnits,
    notes,
    config,
  };
}

/** Every detector's checks, with what they measure beyond the checks and notes on what could not run. */
async function runDetectors(
  model: Predictor,
  data: AuditData,
  base: Predictions,
  shifted: { data: AuditData; predictions: Predictions } | undefined,
  options: AuditOptions,
  progress: ProgressTracker,
) {
  const { config, batchSize } = options;
  const checks: Check[] = [];
  const counterfactuals: CounterfactualMeasurement[] = [];
  for (const counterfactual of options.counterfactuals) {
    const check = await shortcutCheck(model, data, base, counterfactual, config, batchSize);
    checks.push(check);
    counterfactuals.push(counterfactualMeasurement(check));
    progress.tick(1, `counterfactual ${counterfactual.attribute}`);
  }
  const features = await featureChecks(model, data, base, shifted?.data, config, batchSize);
  checks.push(...features.checks);
  progress.tick(1, 'feature reliance');
  const segments = segmentChecks(data, base, config);
  const calibration = calibrationCheck(base, data.labels, config);
  checks.push(...segments.checks, calibration.check);
  progress.tick(1, 'segments, calibration');
  const robustness = await robustnessCheck(model, data, base, config, batchSize);
  if (robustness) checks.push(robustness);
  progress.tick(1, 'robustness');
  const shift = shifted && shiftChecks(data, base, shifted.data, shifted.predictions);
  if (shift) checks.push(...shift.checks);
  const notes: string[] = [];
  if (data.layout.kind === 'table' && !perFeature(data, config))
    notes.push(
      `The data has ${data.layout.featureNames.length} features per example, more than features.maxFeatures (${config.features.maxFeatures}): per-feature reliance and feature slices were skipped (flattened images? give them as [N, C, H, W]; or raise the limit with --config).`,
    );
  if (!robustness)
    notes.push(
      'Robustness was not checked: its perturbations apply to float images and tables, not to this input.',
    );
  return {
    checks,
    counterfactuals,
    robustness: robustness && robustnessMeasurement(robustness),
    notes,
    calibration: calibration.result,
    featureReliance: features.ranking,
    segments: segments.summary,
    shift: shift?.groups,
  };
}

/** The carrier units of each high-severity shortcut, recorded in the finding's evidence too. */
async function carriersOfHighShortcuts(
  model: Model,
  data: AuditData,
  findings: Finding[],
  options: AuditOptions,
): Promise<ShortcutUnits[]> {
  const result: ShortcutUnits[] = [];
  for (const finding of findings.filter(isHighShortcut)) {
    const counterfactual =
      finding.detector === 'shortcut-attribute'
        ? options.counterfactuals.find((c) => c.attribute === finding.attribute)!
        : {
            attribute: finding.feature!,
            transform: 'shuffle' as const,
            column: (data.layout as { featureNames: string[] }).featureNames.indexOf(
              finding.feature!,
            ),
          };
    const units = await shortcutCarriers(
      model,
      data,
      options.shifted,
      counterfactual,
      options,
      finding.attribute ?? finding.feature!,
    );
    if (!units) continue;
    result.push(units);
    finding.evidence.units = { hook: units.hook, units: units.units, accuracy: units.accuracy };
  }
  return result;
}

function isHighShortcut(finding: Finding): boolean {
  return (
    finding.severity === 'high' &&
    (finding.detector === 'shortcut-attribute' || finding.detector === 'shortcut-feature')
  );
}

/** The share of counterfactual flips the carriers remove; under ½ the shortcut is spread over many units. */
export function flipsRemoved(units: ShortcutUnits): number {
  return removedShare(units.flipRate.none, units.flipRate.carriers);
}

/** What the carriers and the direction of a high shortcut say about where it lives. */
export interface ShortcutVerdict {
  /** The share of the counterfactual flips the carriers remove (flipsRemoved). */
  flipsRemoved: number;
  /** The carriers remove under half of the flips: no small set of units holds the shortcut. */
  spread: boolean;
  /** Projecting the hook's attribute direction out removes at least half of the flips. */
  inDirection: boolean;
}

/**
 * The verdict the terminal and the report state: a shortcut is spread over many units when its
 * carriers remove under ½ of the counterfactual flips, and lives in a direction when projecting
 * that direction out removes at least ½. Neither edit is a fix: both say where it lives.
 */
export function shortcutVerdict(units: ShortcutUnits): ShortcutVerdict {
  const removed = flipsRemoved(units);
  const direction = units.direction?.flipRate;
  return {
    flipsRemoved: removed,
    spread: removed < 0.5,
    inDirection:
      direction !== undefined && removedShare(direction.none, direction.projected) >= 0.5,
  };
}

/** (before − after) / before, the share of flips an edit removes (0 when there were none). */
function removedShare(before: number, after: number): number {
  return (before - after) / Math.max(1e-9, before);
}

function accuracyOf(predictions: Predictions, data: AuditData): Accuracy {
  const right = correctCount(predictions.predicted, data.labels);
  return {
    value: right / data.labels.length,
    interval: wilsonInterval(right, data.labels.length),
    examples: data.labels.length,
  };
}

/** Overlapping weak segments say the same thing: keep the strongest few. */
function trimSegments(findings: Finding[], keep: number): Finding[] {
  let segments = 0;
  return findings.filter((finding) => finding.detector !== 'weak-segment' || segments++ < keep);
}

/** Hooks of fewer units hold no small part to single out: the audit searches wider ones only. */
const MIN_CARRIER_HOOK_WIDTH = 4;

/**
 * The units of the hook where mean-ablating a greedy 10% (config.units.fraction) removes the
 * most counterfactual flips, on an evenly spaced sample of the audit data; then the accuracy on
 * both distributions with those units, or as many random ones, mean-ablated.
 */
async function shortcutCarriers(
  model: Model,
  data: AuditData,
  shifted: AuditData | undefined,
  counterfactual: Counterfactual,
  options: AuditOptions,
  shortcut: string,
): Promise<ShortcutUnits | undefined> {
  const { config, batchSize } = options;
  const hooks = carrierHooks(model, options.hooks);
  const n = data.labels.length;
  const count = Math.min(n, config.units.examples);
  const rows = Array.from({ length: count }, (_, k) => Math.floor((k * n) / count));
  // Every input of an example is taken from the same row: only the transformed input differs between the two.
  const first = model.inputs[0].name;
  const sample = takeFeeds(data.inputs, rows, first);
  const transformed = takeFeeds(
    transformExamples(counterfactual.transform, data.inputs, {
      seed: config.seed,
      column: counterfactual.column,
    }),
    rows,
    first,
  );
  const search = {
    fraction: config.units.fraction,
    seed: config.seed,
    minWidth: MIN_CARRIER_HOOK_WIDTH,
    onProgress: options.onProgress,
    signal: options.signal,
  };
  const found = await carriersPerHook(
    model,
    hooks.map((hook) => hook.name),
    sample,
    transformed,
    search,
  );
  if (!found.length) return undefined;
  // The hook where the carriers leave the fewest flips (the first of equals).
  const chosen = found.reduce((best, next) =>
    next.flipRate.carriers < best.flipRate.carriers ? next : best,
  );
  const accuracyWith = async (set: AuditData, units?: number[]) => {
    const predictions = await predict(model, set.inputs, {
      batchSize,
      interventions: units ? [patch(chosen.hook, chosen.mean, { units })] : [],
    });
    return correctCount(predictions.predicted, set.labels) / set.labels.length;
  };
  const ablations = async (set: AuditData): Promise<AblationAccuracy> => ({
    none: await accuracyWith(set),
    carriers: await accuracyWith(set, chosen.units),
    random: await accuracyWith(set, chosen.randomUnits),
  });
  const onData = await ablations(data);
  const onShifted = shifted && (await ablations(shifted));
  const clean = { flipRate: chosen.flipRate.none, data: onData.none, shifted: onShifted?.none };
  return {
    shortcut,
    ...withoutMean(chosen),
    accuracy: { data: onData, shifted: onShifted },
    direction: await directionEvidence(
      model,
      chosen.hook,
      sample,
      transformed,
      { data, shifted },
      clean,
    ),
  };
}

function withoutMean({ mean: _mean, ...carriers }: Carriers): Omit<Carriers, 'mean'> {
  return carriers;
}

/** Projects the hook's attribute direction out and measures the counterfactual flips and the accuracy on both distributions. */
async function directionEvidence(
  model: Model,
  hook: string,
  sample: Feeds,
  transformed: Feeds,
  sets: { data: AuditData; shifted?: AuditData },
  clean: { flipRate: number; data: number; shifted?: number },
): Promise<DirectionEvidence | undefined> {
  const direction = await attributeDirection(model, hook, sample, transformed);
  if (!direction) return undefined;
  const accuracy = async (set: AuditData) => {
    let right = 0;
    await forEachFeeds(model, set.inputs, 1024, async (batch, offset) => {
      (await classesWithoutDirection(model, direction, batch)).forEach((c, i) => {
        if (c === set.labels[offset + i]) right++;
      });
    });
    return right / set.labels.length;
  };
  const shifted = sets.shifted && { none: clean.shifted!, projected: await accuracy(sets.shifted) };
  return {
    energyShare: direction.energyShare,
    flipRate: {
      none: clean.flipRate,
      projected: await flipRateWithoutDirection(model, direction, sample, transformed),
    },
    accuracy: { data: { none: clean.data, projected: await accuracy(sets.data) }, shifted },
  };
}

/** Calls `each(feeds, offset)` over the examples (and their pass-through inputs) in batches. */
async function forEachFeeds(
  model: Model,
  examples: Examples,
  batchSize: number,
  each: (feeds: Feeds, offset: number) => Promise<void>,
): Promise<void> {
  for (let start = 0; start < examples.rows; start += batchSize)
    await each(
      readFeeds(examples, start, Math.min(examples.rows, start + batchSize), model.inputs[0].name),
      start,
    );
}

const ACTIVATIONS = new Set([
  'Relu',
  'LeakyRelu',
  'Gelu',
  'Tanh',
  'Sigmoid',
  'Elu',
  'Selu',
  'Softplus',
  'HardSigmoid',
  'Mish',
]);

function carrierHooks(model: Model, patterns?: string[]): Hook[] {
  if (patterns?.length) return model.hooks.match(patterns);
  const outputs = new Set(model.outputNames);
  const modules = model.hooks.hooks.filter(
    (hook) =>
      hook.kind === 'module' &&
      !outputs.has(hook.value) &&
      (hook.dtype === undefined || hook.dtype === 'float32'),
  );
  const activations = modules.filter((hook) => ACTIVATIONS.has(hook.op));
  return activations.length ? activations : modules;
}
