/**
 * Which input features drive each unit, for feature inputs ([batch, features]: tables, binary
 * inputs): the mean |change| of every unit when one feature is replaced by its dataset mean —
 * input attribution restricted to the unit, by occlusion. A unit depends on a feature when that
 * feature's effect is at least `relative` (default 10%) of the unit's largest feature effect.
 */
import { patch } from '../graph/interventions.ts';
import type { Hook } from '../graph/hooks.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache, type Dataset } from '../runtime/run.ts';
import { unitAxisOf } from '../graph/units.ts';
import { elementCount, type Tensor } from '../tensor.ts';

export interface InputDependence {
  /** effects[unit][feature]: mean |Δ unit| when the feature is mean-ablated. */
  effects: number[][];
  /** Features each unit depends on, strongest first. */
  inputs: number[][];
}

export async function inputDependence(
  model: Model,
  data: Dataset,
  input: string,
  inputMean: Tensor,
  hooks: Hook[],
  options: { batchSize: number; relative?: number },
): Promise<Map<string, InputDependence>> {
  const features = inputMean.dims[1];
  const sums = new Map<string, Float64Array[]>();
  for (let start = 0; start < data.examples; start += options.batchSize) {
    const feeds = data.read(start, Math.min(data.examples, start + options.batchSize));
    const names = hooks.map((hook) => hook.name);
    const clean = (await runWithCache(model, feeds, names)).cache;
    for (let feature = 0; feature < features; feature++) {
      const ablated = (
        await runWithCache(model, feeds, names, {
          interventions: [patch(input, inputMean, { units: [feature] })],
        })
      ).cache;
      for (const hook of hooks) {
        const perUnit = meanAbsoluteChangePerUnit(
          clean.get(hook.name)!,
          ablated.get(hook.name)!,
          unitAxisOf(hook, clean.get(hook.name)!.dims.length),
        );
        if (!sums.has(hook.name))
          sums.set(
            hook.name,
            Array.from({ length: perUnit.length }, () => new Float64Array(features)),
          );
        perUnit.forEach((change, unit) => {
          sums.get(hook.name)![unit][feature] += change;
        });
      }
    }
  }
  const relative = options.relative ?? 0.1;
  return new Map(
    [...sums].map(([hook, units]) => {
      const effects = units.map((row) => Array.from(row, (sum) => sum / data.examples));
      const inputs = effects.map((row) => {
        const largest = Math.max(...row);
        return row
          .map((effect, feature) => ({ effect, feature }))
          .filter(({ effect }) => largest > 0 && effect >= relative * largest)
          .sort((a, b) => b.effect - a.effect)
          .map(({ feature }) => feature);
      });
      return [hook, { effects, inputs }];
    }),
  );
}

/** Σ over examples of the mean |a − b| per unit (over the unit's positions). */
function meanAbsoluteChangePerUnit(a: Tensor, b: Tensor, axis: number): Float64Array {
  const units = a.dims[axis];
  const inner = elementCount(a.dims.slice(axis + 1));
  const perExample = elementCount(a.dims.slice(1));
  const out = new Float64Array(units);
  for (let i = 0; i < a.data.length; i++)
    out[Math.floor((i % perExample) / inner) % units] +=
      Math.abs(Number(a.data[i]) - Number(b.data[i])) / (perExample / units);
  return out;
}
