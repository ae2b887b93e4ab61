/**
 * The units that carry each attribute, hook by hook (`teardown inspect --counterfactual`, the
 * library's inspect with `counterfactuals`): a counterfactual NAME:TRANSFORM changes one input of
 * the examples and nothing else (transforms.ts); in every hook the carriers are the units whose
 * mean ablation most reduces the prediction flips it causes (inspect/carriers.ts, the same search
 * the audit runs for a high shortcut), next to the hook's attribute direction
 * (inspect/direction.ts) and the flip rate left once that is projected out.
 */
import { carriersPerHook, type Carriers, type CarrierSearch } from '../inspect/carriers.ts';
import { attributeDirection, flipRateWithoutDirection } from '../inspect/direction.ts';
import { transformedInput } from '../inspect/inputs.ts';
import type { Model } from '../runtime/model.ts';
import type { Feeds } from '../tensor.ts';
import { parseCounterfactual } from './shortcut.ts';
import { applyTransform, layoutOf, type TransformName } from './transforms.ts';

export interface AttributeCarriers extends Omit<Carriers, 'mean'> {
  attribute: string;
  transform: TransformName;
  /**
   * The hook's attribute direction, where the hook is dense: the share of the counterfactual's
   * movement of the hook it holds, and the flip rate with it projected out.
   */
  direction?: { energyShare: number; flipRate: number };
}

export interface AttributeCarrierOptions extends CarrierSearch {
  /** The input the counterfactuals change (default: the model's first); others keep their row. */
  transformInput?: string;
  /** A table's column names, for counterfactuals on a named column. */
  featureNames?: string[];
}

/**
 * For each counterfactual ('color:channel-swap', 'group:flip') and each hook, in that order: the
 * carriers of the attribute among the examples. The seed draws the transform's noise (if any) and
 * the random units the carriers are compared with.
 */
export async function attributeCarriers(
  model: Model,
  examples: Feeds,
  hooks: readonly string[],
  counterfactuals: readonly string[],
  options: AttributeCarrierOptions,
): Promise<AttributeCarriers[]> {
  const input = transformedInput(model, options.transformInput);
  const sample = examples[input];
  const layout = layoutOf(sample.dims.slice(1), sample.dtype, options.featureNames);
  const results: AttributeCarriers[] = [];
  for (const text of counterfactuals) {
    const { attribute, transform, column } = parseCounterfactual(text, layout);
    // Only the transformed input changes; every other input of an example stays in its row.
    const changed = applyTransform(transform, sample, { column, seed: options.seed });
    const transformed = { ...examples, [input]: changed };
    for (const { mean: _mean, ...carriers } of await carriersPerHook(
      model,
      hooks,
      examples,
      transformed,
      options,
    )) {
      const direction = await directionFlips(model, carriers.hook, examples, transformed);
      results.push({ attribute, transform, ...carriers, direction });
    }
  }
  return results;
}

async function directionFlips(model: Model, hook: string, original: Feeds, transformed: Feeds) {
  const found = await attributeDirection(model, hook, original, transformed);
  if (!found) return undefined;
  return {
    energyShare: found.energyShare,
    flipRate: await flipRateWithoutDirection(model, found, original, transformed),
  };
}
