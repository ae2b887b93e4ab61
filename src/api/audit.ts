/**
 * The audit as a library call, on any classifier: a Model (every detector), or a learner given as
 * `{ classes, predictProba(inputs) }` — the detectors that read a network's insides (the units and
 * the direction that carry a shortcut) are then skipped, and the result's notes say so.
 *
 *   const result = await audit(model, { inputs: images, labels, attributes: { color } }, { counterfactuals: ['color:channel-swap'] });
 *   const forest = { classes: 2, predictProba: (x: TensorLike) => myForest.predict(x) };
 *   await audit(forest, { inputs: table, labels, featureNames });
 */
import { auditModel, type AuditResult } from '../audit/audit.ts';
import { DEFAULT_CONFIG, type AuditConfig } from '../audit/config.ts';
import type { Attribute, AuditData } from '../audit/data.ts';
import { inMemory } from '../audit/examples.ts';
import { auditCounterfactuals } from '../audit/counterfactuals.ts';
import { layoutOf } from '../audit/transforms.ts';
import { InputError } from '../errors.ts';
import type { ProgressOptions } from '../progress.ts';
import { Model } from './model.ts';
import { Tensor, type TensorLike } from './tensor.ts';

export type { AuditResult, AuditConfig };

/** A learner that is not an ONNX network: class probabilities, [examples, classes] row-major, for a batch of examples. */
export interface Classifier {
  classes: number;
  predictProba(
    inputs: Tensor,
  ): ArrayLike<number> | TensorLike | Promise<ArrayLike<number> | TensorLike>;
}

export interface AuditDataInput {
  /** The examples, first axis = examples: [N, features] (a table), [N, C, H, W] (images), or the model's input. */
  inputs: TensorLike;
  /** One integer class per example. */
  labels: TensorLike | ArrayLike<number>;
  /** Per-example attributes (group, colour, site), one value per example; a table's column of the same name is that column. */
  attributes?: Record<string, TensorLike | ArrayLike<number>>;
  /** A table's column names (default 'feature 0', 'feature 1', ...). */
  featureNames?: string[];
  /** Named in messages and the result (default '(in memory)'). */
  name?: string;
}

export interface AuditCallOptions extends Omit<ProgressOptions, 'progress'> {
  /** 'NAME:TRANSFORM' per attribute to test reliance on (e.g. 'color:channel-swap', 'group:flip'). */
  counterfactuals?: string[];
  /** Data from the deployment distribution, for the shift detectors. */
  shifted?: AuditDataInput;
  config?: AuditConfig;
  /** Hooks searched for the units that carry a shortcut (networks only). */
  hooks?: string[];
  batchSize?: number;
}

export async function audit(
  classifier: Model | Classifier,
  data: AuditDataInput,
  options: AuditCallOptions = {},
): Promise<AuditResult> {
  const audited = auditData(data);
  // As `teardown audit`: a table column given as an attribute gets its own counterfactual unless named.
  const { counterfactuals, notes } = auditCounterfactuals(options.counterfactuals ?? [], audited);
  const predictor =
    classifier instanceof Model
      ? classifier.runtime
      : {
          classes: classifier.classes,
          predictProba: (batch: TensorLike) => classifier.predictProba(Tensor.from(batch)),
        };
  const result = await auditModel(predictor, audited, {
    config: options.config ?? DEFAULT_CONFIG,
    counterfactuals,
    shifted: options.shifted && auditData(options.shifted),
    hooks: options.hooks,
    batchSize: options.batchSize ?? 512,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  return { ...result, notes: [...notes, ...result.notes] };
}

function auditData(data: AuditDataInput): AuditData {
  const inputs = Tensor.from(data.inputs);
  const rows = inputs.dims[0];
  const path = data.name ?? '(in memory)';
  const layout = layoutOf(inputs.dims.slice(1), inputs.dtype, data.featureNames);
  const labels = Int32Array.from(numbersOf(data.labels), (label, i) => {
    if (!Number.isInteger(label) || label < 0)
      throw new InputError(
        `The labels of '${path}' must be non-negative integer classes; entry ${i} is ${label}.`,
      );
    return label;
  });
  if (labels.length !== rows)
    throw new InputError(
      `'${path}' has ${rows} examples but ${labels.length} labels: give one label per example.`,
    );
  const attributes: Attribute[] = Object.entries(data.attributes ?? {}).map(([name, values]) => {
    const numbers = Float64Array.from(numbersOf(values));
    if (numbers.length !== rows)
      throw new InputError(
        `Attribute '${name}' has ${numbers.length} values but '${path}' has ${rows} examples: give one value per example.`,
      );
    const column = layout.kind === 'table' ? layout.featureNames.indexOf(name) : -1;
    return { name, values: numbers, ...(column >= 0 ? { column } : {}) };
  });
  return { path, inputs: inMemory(inputs), labels, layout, attributes };
}

function numbersOf(values: TensorLike | ArrayLike<number>): number[] {
  const data = 'dims' in values ? (values.data as ArrayLike<number | bigint>) : values;
  return Array.from(data, Number);
}
