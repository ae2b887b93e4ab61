/**
 * The direction that carries an attribute (inspect/direction.ts: the principal direction of the
 * hook's change between counterfactual pairs), as the audit finds it, ready to project out:
 *
 *   const found = await attributeDirection(model, 'fc1', images, recoloured);
 *   await model.run(images, { interventions: [projectOut('fc1', found.direction)] });
 *
 * The audit's own projection is mean ablation along u: projectOut, then addVector of mean·u.
 */
import { attributeDirection as findDirection } from '../inspect/direction.ts';
import { toFeeds, type Inputs } from './inputs.ts';
import type { Model } from './model.ts';
import { Tensor } from './tensor.ts';

export interface AttributeDirection {
  hook: string;
  /** u: a unit vector over the hook's units. */
  direction: Tensor;
  /** The mean of a·u over the original examples. */
  mean: number;
  /** The share of the pairs' squared change that lies along u. */
  energyShare: number;
}

/** undefined for a hook that is not dense ([batch, units]) or whose downstream part cannot run alone. */
export async function attributeDirection(
  model: Model,
  hook: string,
  original: Inputs,
  counterfactual: Inputs,
): Promise<AttributeDirection | undefined> {
  const found = await findDirection(
    model.runtime,
    hook,
    toFeeds(model.runtime, original),
    toFeeds(model.runtime, counterfactual),
  );
  return (
    found && {
      hook: found.hook,
      direction: new Tensor('float64', [found.direction.length], found.direction),
      mean: found.mean,
      energyShare: found.energyShare,
    }
  );
}
