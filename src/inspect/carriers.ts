/**
 * The units that carry an attribute: of a hook's units, the few whose mean ablation most reduces
 * how often the model's prediction changes when the attribute is changed (a counterfactual pair
 * of inputs, e.g. an image and its colour-swapped copy). Greedy forward selection: each round adds
 * the unit that, ablated together with those already chosen, gives the lowest counterfactual flip
 * rate; every candidate of a round is evaluated in one stacked onnxruntime run (sweep.ts).
 *
 * Correlation with the attribute is the wrong criterion here: when a model reads an attribute,
 * nearly every unit correlates with it, but only some of them pass it on to the output.
 */
import { InputError } from '../errors.ts';
import { patch } from '../graph/interventions.ts';
import { unitAxisOf } from '../graph/units.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { predictedClasses, RowSum } from '../tensor-math.ts';
import { concatRows, sliceFeeds, type Feeds, type Tensor } from '../tensor.ts';
import { randomUnits } from './ablation-study.ts';
import { sweepOutputs } from './sweep.ts';
import { trackProgress, type ProgressOptions } from '../progress.ts';

export interface Carriers {
  hook: string;
  /** Units of the hook, in the order the greedy search chose them. */
  units: number[];
  width: number;
  /** Counterfactual flip rate with nothing ablated, with the carriers mean-ablated, and with as many random units mean-ablated. */
  flipRate: { none: number; carriers: number; random: number };
  /** Flip rate after each greedy round: curve[k] with the first k + 1 carriers ablated. */
  curve: number[];
  randomUnits: number[];
  /** The hook's mean over the original examples, [1, ...dims]: what mean ablation puts in. */
  mean: Tensor;
}

/**
 * `original` and `counterfactual`: the examples as feeds of every input (the inputs the
 * counterfactual does not transform identical in both), or as a tensor for a one-input model.
 */
export async function findCarriers(
  model: Model,
  hookName: string,
  original: Tensor | Feeds,
  counterfactual: Tensor | Feeds,
  budget: number,
  seed = 0,
  options: ProgressOptions = {},
): Promise<Carriers> {
  const [originalFeeds, counterfactualFeeds] = [
    asFeeds(model, original),
    asFeeds(model, counterfactual),
  ];
  const cached = (await runWithCache(model, originalFeeds, [hookName])).cache.get(hookName)!;
  const sum = new RowSum();
  sum.add(cached);
  const mean = sum.mean(cached.dtype === 'float64' ? 'float64' : 'float32');
  const width = cached.dims[unitAxisOf(model.hooks.resolve(hookName), cached.dims.length)];
  // Every input travels with its row: row i and row n + i are the same example before and after the transform.
  const pair = Object.fromEntries(
    Object.keys(originalFeeds).map((name) => [
      name,
      concatRows([originalFeeds[name], counterfactualFeeds[name]]),
    ]),
  );
  const n = cached.dims[0];
  const flipRates = async (unitSets: number[][]) => {
    const rates: number[] = [];
    await sweepOutputs(
      model,
      pair,
      unitSets.map((units) => (units.length ? [patch(hookName, mean, { units })] : [])),
      (variant, output) => {
        rates[variant] = flipRate(output, n);
      },
    );
    return rates;
  };
  const chosen: number[] = [];
  const curve: number[] = [];
  const [none] = await flipRates([[]]);
  // One tick per unit chosen: each is a sweep over every remaining unit.
  const progress = trackProgress('carriers', Math.min(budget, width), options);
  while (chosen.length < Math.min(budget, width)) {
    const candidates = [...Array(width).keys()].filter((unit) => !chosen.includes(unit));
    const rates = await flipRates(candidates.map((unit) => [...chosen, unit]));
    const best = rates.indexOf(Math.min(...rates));
    chosen.push(candidates[best]);
    curve.push(rates[best]);
    progress.tick(1, hookName);
  }
  const random = randomUnits(width, chosen.length, seed);
  const [randomRate] = await flipRates([random]);
  return {
    hook: hookName,
    units: chosen,
    width,
    flipRate: { none, carriers: curve[curve.length - 1] ?? none, random: randomRate },
    curve,
    randomUnits: random,
    mean,
  };
}

/** The share of a hook's units searched for carriers when the caller names none: 10%. */
export const DEFAULT_CARRIER_FRACTION = 0.1;

export interface CarrierSearch extends ProgressOptions {
  /**
   * Carriers per hook: ⌊fraction · width⌋ units, at least one (so 0 asks for exactly one, the
   * quick check of --smoke). In [0, 1].
   */
  fraction: number;
  /** Seed of the random units the carriers are compared with. */
  seed?: number;
  /** Hooks with fewer units than this are skipped (default 1: those without a unit axis). */
  minWidth?: number;
}

/** How many carriers a hook of `width` units gets: ⌊fraction · width⌋, at least one. */
export function carrierBudget(fraction: number, width: number): number {
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new InputError(
      `The share of a hook's units searched for carriers must lie in [0, 1], got ${fraction} ` +
        '(inspect --carrier-fraction, audit config units.fraction).',
    );
  }
  return Math.max(1, Math.floor(fraction * width));
}

/**
 * The carriers of one counterfactual in each hook (findCarriers with each hook's budget), in the
 * order of `hooks`; hooks narrower than `minWidth` are left out. `original` and `counterfactual`
 * as for findCarriers.
 */
export async function carriersPerHook(
  model: Model,
  hooks: readonly string[],
  original: Tensor | Feeds,
  counterfactual: Tensor | Feeds,
  search: CarrierSearch,
): Promise<Carriers[]> {
  carrierBudget(search.fraction, 0);
  const found: Carriers[] = [];
  for (const hook of hooks) {
    const width = await hookWidth(model, hook, original);
    if (width < (search.minWidth ?? 1)) continue;
    const budget = carrierBudget(search.fraction, width);
    found.push(
      await findCarriers(model, hook, original, counterfactual, budget, search.seed ?? 0, search),
    );
  }
  return found;
}

/** Fraction of the first n rows whose predicted class differs from that of row n + i. */
function flipRate(scores: Tensor, n: number): number {
  const classes = predictedClasses(scores);
  let flips = 0;
  for (let i = 0; i < n; i++) if (classes[i] !== classes[n + i]) flips++;
  return flips / n;
}

/** The number of units of a hook (docs/design.md), read from one example's value; 0 for a value without a unit axis. */
export async function hookWidth(
  model: Model,
  hookName: string,
  sample: Tensor | Feeds,
): Promise<number> {
  const value = (
    await runWithCache(model, sliceFeeds(asFeeds(model, sample), 0, 1), [hookName])
  ).cache.get(hookName)!;
  return value.dims.length >= 2
    ? value.dims[unitAxisOf(model.hooks.resolve(hookName), value.dims.length)]
    : 0;
}

/** A tensor stands for the only input of a one-input model. */
export function asFeeds(model: Model, examples: Tensor | Feeds): Feeds {
  const isTensor = (value: Tensor | Feeds): value is Tensor =>
    ArrayBuffer.isView((value as Tensor).data) && Array.isArray((value as Tensor).dims);
  return isTensor(examples) ? { [model.inputs[0].name]: examples } : examples;
}
