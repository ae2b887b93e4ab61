/**
 * The demo's first study: which units of a hook fire most on a classifier's held-out examples,
 * and what zero-ablating them costs, next to as many random units (inspect/ablation-study.ts) —
 * with the predictions that flip and the classes hit hardest.
 */
import {
  classify,
  mostActiveUnits,
  randomUnits,
  zeroAblation,
  type Classification,
} from '../inspect/ablation-study.ts';
import { InputError } from '../errors.ts';
import type { Model } from '../runtime/model.ts';
import type { Feeds, Tensor } from '../tensor.ts';

export interface UnitAblationOptions {
  hook: string;
  /** How many of the most active units to ablate (and how many random ones). */
  units: number;
  /** Seed of the random units. */
  seed: number;
  batchSize: number;
}

export interface UnitAblation {
  name: string;
  units: number[];
  accuracy: number;
  interval: [number, number];
  /** The share of examples whose predicted class the ablation changes. */
  flipRate: number;
  /** The three classes whose accuracy drops most (drop: the share of the class's examples). */
  hardestHit: { digit: number; drop: number }[];
}

export interface UnitAblationStudy {
  hook: string;
  examples: number;
  clean: Classification;
  /** Each unit's mean activation over the examples. */
  unitMeans: Float64Array;
  mostActiveUnits: number[];
  randomUnits: number[];
  /** Units never active (mean 0) on these examples. */
  deadUnits: number;
  /** The most active units zero-ablated, then as many random ones. */
  ablations: UnitAblation[];
}

export async function unitAblationStudy(
  model: Model,
  feeds: Feeds,
  labels: Tensor,
  options: UnitAblationOptions,
): Promise<UnitAblationStudy> {
  const { hook, units: count, seed, batchSize } = options;
  const clean = await classify(model, feeds, labels, { hooks: [hook], batchSize });
  const means = clean.unitMeans.get(hook)!;
  if (count > means.length)
    throw new InputError(
      `Cannot ablate the ${count} most active units of '${hook}' and as many random ones: it ` +
        `has ${means.length} units. Ask for at most ${means.length} (demo --units).`,
    );
  const active = mostActiveUnits(means, count);
  const random = randomUnits(means.length, count, seed);
  const studies = [
    { name: `zero-ablate the ${count} most active`, units: active },
    { name: `zero-ablate ${count} random (seed ${seed})`, units: random },
  ];
  const ablations: UnitAblation[] = [];
  for (const study of studies) {
    const ablated = await classify(model, feeds, labels, {
      interventions: zeroAblation(hook, study.units),
      batchSize,
    });
    const effect = ablationEffect(
      clean.predictions,
      ablated.predictions,
      labels.data as ArrayLike<number | bigint>,
    );
    ablations.push({ ...study, accuracy: ablated.accuracy, interval: ablated.interval, ...effect });
  }
  return {
    hook,
    examples: labels.dims[0],
    clean,
    unitMeans: means,
    mostActiveUnits: active,
    randomUnits: random,
    deadUnits: means.filter((mean) => mean === 0).length,
    ablations,
  };
}

/**
 * What an ablation changed: the share of predictions that flipped, and per class the drop in
 * accuracy (clean correct − ablated correct) / the class's examples, the three largest first (the
 * lower class first among equal drops).
 */
export function ablationEffect(
  clean: Int32Array,
  ablated: Int32Array,
  labels: ArrayLike<number | bigint>,
): Pick<UnitAblation, 'flipRate' | 'hardestHit'> {
  const classes = Array.from(labels, Number).reduce((most, label) => Math.max(most, label + 1), 0);
  const perClass = Array.from({ length: classes }, () => ({
    total: 0,
    cleanCorrect: 0,
    ablatedCorrect: 0,
  }));
  let flips = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = Number(labels[i]);
    if (ablated[i] !== clean[i]) flips++;
    perClass[label].total++;
    if (clean[i] === label) perClass[label].cleanCorrect++;
    if (ablated[i] === label) perClass[label].ablatedCorrect++;
  }
  const drops = perClass
    .map((c, digit) => ({
      digit,
      total: c.total,
      drop: (c.cleanCorrect - c.ablatedCorrect) / c.total,
    }))
    .filter((c) => c.total > 0)
    .map(({ digit, drop }) => ({ digit, drop }))
    .sort((a, b) => b.drop - a.drop);
  return { flipRate: flips / labels.length, hardestHit: drops.slice(0, 3) };
}
