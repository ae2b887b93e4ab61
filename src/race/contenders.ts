/**
 * The contenders by the names `--contenders` will take, each made with the settings the race
 * shares: the network learners get the hidden widths of the backprop MLP they race against.
 *
 *   const entrants = contendersNamed('knn,logistic,dfa', { hidden: [64] });
 */
import { InputError, nearestNames } from '../errors.ts';
import { backpropCnn, backpropMlp } from './backprop.ts';
import type { Contender } from './contender.ts';
import { directFeedbackAlignment } from './dfa.ts';
import { evolutionStrategies } from './es.ts';
import { forwardForward } from './ff.ts';
import { kNearestNeighbours } from './knn.ts';
import { logisticRegression } from './logistic.ts';
import type { HiddenActivation } from './mlp.ts';
import { spsa } from './spsa.ts';
import { gradientBoostedTrees, randomForest } from './trees.ts';

export interface SharedSettings {
  /** The backprop MLP's hidden widths and activation, for every network learner. */
  hidden?: number[];
  act?: HiddenActivation;
}

const MAKERS: Record<string, (shared: SharedSettings) => Contender> = {
  knn: () => kNearestNeighbours(),
  logistic: () => logisticRegression(),
  es: (shared) => evolutionStrategies(shared),
  spsa: (shared) => spsa(shared),
  dfa: (shared) => directFeedbackAlignment(shared),
  ff: (shared) => forwardForward(shared),
  gbt: () => gradientBoostedTrees(),
  forest: () => randomForest(),
  mlp: (shared) => backpropMlp(shared),
  cnn: (shared) => backpropCnn({ act: shared.act }),
};

export const CONTENDER_NAMES: readonly string[] = Object.keys(MAKERS);

/** A comma-separated list of contender names, each once, made with the shared settings. */
export function contendersNamed(list: string, shared: SharedSettings = {}): Contender[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.length === 0) {
    throw new InputError(
      `The contenders list '${list}' names none: give some of ${CONTENDER_NAMES.join(', ')}.`,
    );
  }
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) {
    throw new InputError(`Contender '${repeated}' is named twice in '${list}': name each once.`);
  }
  return names.map((name) => {
    const make = MAKERS[name];
    if (!make) {
      const nearest = nearestNames(name, CONTENDER_NAMES, 1)[0];
      throw new InputError(
        `Unknown contender '${name}' (did you mean '${nearest}'?): ` +
          `the contenders are ${CONTENDER_NAMES.join(', ')}.`,
      );
    }
    return make(shared);
  });
}
