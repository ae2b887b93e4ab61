/**
 * The demo's third study, the race's question in small: on colored-mnist, does any learner avoid
 * the colour shortcut that backprop takes? A short race (race/race.ts) of a few fast contenders,
 * one of them the backprop MLP, on the same rows with the same budget and the same audit (the
 * colour channels swapped); the scorecard's verdict is the answer, measured, never assumed.
 * `teardown race --task colored-mnist` runs the full race.
 */
import type { ProgressOptions } from '../progress.ts';
import { contendersNamed } from '../race/contenders.ts';
import { race } from '../race/race.ts';
import { firstRowsOfTask, raceTask } from '../race/race-task.ts';
import { scorecard, type Scorecard } from '../race/scorecard.ts';

/** Fast enough for the demo: the flip rates of learners of every family but trees, and backprop. */
export const DEMO_RACE = { contenders: 'knn,logistic,dfa,mlp', budgetSeconds: 5 };

export interface ShortcutRaceOptions extends ProgressOptions {
  contenders?: string;
  budgetSeconds?: number;
  /** Race on each set's first rows only (a quick check). */
  rows?: number;
  threads?: number;
}

export async function shortcutRace(options: ShortcutRaceOptions = {}): Promise<Scorecard> {
  const contenders = contendersNamed(options.contenders ?? DEMO_RACE.contenders);
  const budgetSeconds = options.budgetSeconds ?? DEMO_RACE.budgetSeconds;
  const whole = raceTask('colored-mnist');
  const task = options.rows === undefined ? whole : firstRowsOfTask(whole, options.rows);
  const seeds = [1];
  const results = await race(contenders, task.split, {
    seeds,
    budgetSeconds,
    threads: options.threads,
    audit: task.audit,
    // The question is the shortcut: the descriptions (a circuit search per network) are left out.
    description: false,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  return scorecard(results, {
    task: task.name,
    seeds,
    fractions: [1],
    budgetSeconds,
    split: task.record,
    shortcutAttribute: task.shortcutAttribute,
    classes: task.classes,
  });
}
