/**
 * The demo's second study, a shortcut caught: ERM on colored-mnist as the IRM paper builds it
 * (Arjovsky et al. 2019: label = digit < 5 with 25% noise; colour agrees with the label 90% / 80%
 * in the two training environments and 10% at test), so colour predicts the label better than the
 * digit (75%) in training and is reversed at test time; then the audit on the training data with
 * the colour-flipped test set as the shifted set. Each step is its own call so that a caller can
 * report between them; the fixes are audit/fixes.ts's tryFixes on the same spec.
 */
import { createHash } from 'node:crypto';
import { auditModel, type AuditResult } from '../audit/audit.ts';
import type { AuditConfig } from '../audit/config.ts';
import type { AuditData } from '../audit/data.ts';
import { inMemory } from '../audit/examples.ts';
import { firstExamples } from '../audit/first-examples.ts';
import { parseCounterfactual } from '../audit/shortcut.ts';
import type { Task } from '../data/tasks.ts';
import { encodeModel } from '../onnx/proto.ts';
import type { ProgressOptions } from '../progress.ts';
import { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { completeSpec } from '../train/read-spec.ts';
import { DEFAULT_OPTIMIZER, type TrainSpec } from '../train/spec.ts';
import { train, type TrainResult } from '../train/trainer.ts';

/** The IRM paper's ERM on Colored MNIST (50,000 digits): train and test accuracy. */
export const PUBLISHED_ERM = { train: 0.874, test: 0.171 };

/** The counterfactual the audit tests: the two colour channels swapped. */
export const COLOR_COUNTERFACTUAL = 'color:channel-swap';

/**
 * ERM with AdamW (weight decay 0.001) on an MLP of two hidden layers of 128 units, 5 epochs of
 * batches of 128; `steps` instead for a quick check. Evaluations only at the end.
 */
export function shortcutStudySpec(options: { steps?: number } = {}): TrainSpec {
  return completeSpec({
    task: 'colored-mnist',
    taskOptions: {},
    model: 'mlp:hidden=128-128',
    optimizer: { ...DEFAULT_OPTIMIZER, weightDecay: 0.001 },
    lr: 1e-3,
    schedule: { warmupSteps: 0, cosine: false },
    epochs: 5,
    batch: 128,
    seed: 0,
    evalEvery: 10_000,
    ...(options.steps ? { epochs: undefined, steps: options.steps } : {}),
  });
}

export interface ShortcutModel {
  result: TrainResult;
  /** The trained model, loaded for the audit. */
  model: Model;
  /** sha256 of the trained model's bytes. */
  sha256: string;
}

export async function trainShortcutModel(
  spec: TrainSpec,
  options: ProgressOptions & { runtime: RuntimeOptions },
): Promise<ShortcutModel> {
  const result = await train(spec, options);
  const sha256 = createHash('sha256').update(encodeModel(result.model)).digest('hex');
  return {
    result,
    model: Model.fromProto(result.model, 'the colored-mnist ERM model', options.runtime),
    sha256,
  };
}

export interface ShortcutAuditOptions extends ProgressOptions {
  config: AuditConfig;
  /** Audit the first N examples of each split only (a quick check). */
  examples?: number;
  batchSize?: number;
}

export interface ShortcutAudit {
  result: AuditResult;
  data: AuditData;
  shifted: AuditData;
}

/** The audit of the trained model on its training split; the colour-flipped test split is shifted. */
export async function auditShortcutModel(
  model: Model,
  task: Task,
  options: ShortcutAuditOptions,
): Promise<ShortcutAudit> {
  const cut = (set: AuditData) =>
    options.examples === undefined ? set : firstExamples(set, options.examples);
  const data = cut(coloredMnistAuditData(task.train, 'colored-mnist train'));
  const shifted = cut(coloredMnistAuditData(task.test, 'colored-mnist test'));
  const counterfactuals = [parseCounterfactual(COLOR_COUNTERFACTUAL, data.layout)];
  const result = await auditModel(model, data, {
    config: options.config,
    counterfactuals,
    shifted,
    batchSize: options.batchSize ?? 1024,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  return { result, data, shifted };
}

/** A colored-mnist split as audit data: images [N, 2, 14, 14] with their colour attribute. */
export function coloredMnistAuditData(split: Task['train'], path: string): AuditData {
  return {
    path,
    inputs: inMemory(split.inputs),
    labels: Int32Array.from(split.labels.data as BigInt64Array, Number),
    layout: { kind: 'image', channels: 2, height: 14, width: 14 },
    attributes: [{ name: 'color', values: Float64Array.from(split.attributes!.color) }],
  };
}
