/**
 * One conformance suite run against every contender (as Hono runs one router suite against every
 * router): probabilities of the right shape that sum to 1; the same seed gives the same
 * classifier; the time budget and the abort signal end training; bad data and mismatched inputs
 * are refused with an InputError that says what and how to fix it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../src/errors.ts';
import { tensor } from '../src/tensor.ts';
import { backpropMlp } from '../src/race/backprop.ts';
import type { Contender } from '../src/race/contender.ts';
import { directFeedbackAlignment } from '../src/race/dfa.ts';
import { evolutionStrategies } from '../src/race/es.ts';
import { forwardForward } from '../src/race/ff.ts';
import { kNearestNeighbours } from '../src/race/knn.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import { spsa } from '../src/race/spsa.ts';
import { gradientBoostedTrees, randomForest } from '../src/race/trees.ts';
import { twoBlobs } from './race-oracles.ts';

const steps = { hidden: [8], maxSteps: 20 };
/** Each contender with a step limit (for determinism) and without one (for the budget). */
const CONTENDERS: { limited: Contender; unlimited: Contender; seeded: boolean }[] = [
  { limited: kNearestNeighbours({ k: 3 }), unlimited: kNearestNeighbours({ k: 3 }), seeded: false },
  {
    limited: logisticRegression({ maxIterations: 20 }),
    unlimited: logisticRegression({ l2: 0, maxIterations: 1e9 }),
    seeded: false,
  },
  {
    limited: evolutionStrategies(steps),
    unlimited: evolutionStrategies({ maxSteps: 1e9 }),
    seeded: true,
  },
  { limited: spsa(steps), unlimited: spsa({ maxSteps: 1e9 }), seeded: true },
  {
    limited: directFeedbackAlignment(steps),
    unlimited: directFeedbackAlignment({ maxSteps: 1e9 }),
    seeded: true,
  },
  { limited: forwardForward(steps), unlimited: forwardForward({ maxSteps: 1e9 }), seeded: true },
  // YDF trains to its own stopping rule; past the budget it is refused (test/race-trees.test.ts).
  { limited: gradientBoostedTrees(), unlimited: gradientBoostedTrees(), seeded: true },
  { limited: randomForest(), unlimited: randomForest(), seeded: true },
  {
    limited: backpropMlp({ hidden: [8], maxTrialSteps: 20 }),
    unlimited: backpropMlp({ hidden: [8] }),
    seeded: true,
  },
];

// Three classes, so that probabilities are more than a complement.
const blobs = twoBlobs(90, 5, 41, 3);
const values = blobs.inputs.data as Float32Array;
const data = {
  inputs: blobs.inputs,
  labels: Int32Array.from(blobs.labels, (label, r) => (r % 3 === 2 ? 2 : label)),
  classes: 3,
};

async function probabilitiesOf(contender: Contender, seed: number): Promise<Float32Array> {
  const classifier = await contender.train(data, { seed, budgetSeconds: 60 });
  try {
    return (await classifier.predictProba(data.inputs)).data as Float32Array;
  } finally {
    await classifier.release();
  }
}

describe('race: every contender keeps the contract', () => {
  for (const { limited, unlimited, seeded } of CONTENDERS) {
    describe(limited.name, () => {
      it('gives probabilities [examples, classes] summing to 1, the same for a seed', async () => {
        const first = await probabilitiesOf(limited, 3);
        assert.equal(first.length, 90 * 3);
        for (let r = 0; r < 90; r++) {
          const row = Array.from(first.subarray(r * 3, r * 3 + 3));
          assert.ok(
            row.every((p) => p >= 0 && p <= 1) && Math.abs(row[0] + row[1] + row[2] - 1) < 1e-5,
          );
        }
        assert.deepEqual(await probabilitiesOf(limited, 3), first);
        if (seeded) assert.notDeepEqual(await probabilitiesOf(limited, 4), first);
      });

      // A learner that ignored its budget would train for 1e9 steps: the timeout fails it.
      it('stops at its time budget and at an aborted signal', { timeout: 10_000 }, async () => {
        // The race gives no contender less than its stated minimum.
        const budgetSeconds = Math.max(0.3, unlimited.minimumBudgetSeconds ?? 0);
        const started = performance.now();
        const classifier = await unlimited.train(data, { seed: 1, budgetSeconds });
        await classifier.release();
        const seconds = (performance.now() - started) / 1000;
        assert.ok(
          seconds < budgetSeconds + 1.2,
          `training took ${seconds.toFixed(2)} s on a ${budgetSeconds} s budget`,
        );
        const controller = new AbortController();
        controller.abort();
        await assert.rejects(
          unlimited.train(data, { seed: 1, budgetSeconds: 60, signal: controller.signal }),
          { name: 'AbortError' },
        );
      });

      it('refuses mismatched labels and inputs with an InputError', async () => {
        await assert.rejects(
          limited.train({ ...data, labels: data.labels.slice(1) }, { seed: 1, budgetSeconds: 1 }),
          (error) => error instanceof InputError && /90 examples but 89 labels/.test(error.message),
        );
        await assert.rejects(
          limited.train(
            { ...data, labels: data.labels.map((l) => l - 1) },
            { seed: 1, budgetSeconds: 1 },
          ),
          (error) =>
            error instanceof InputError && /non-negative integer classes/.test(error.message),
        );
        const withNaN = values.slice();
        withNaN[2 * 5 + 3] = NaN;
        await assert.rejects(
          limited.train(
            { ...data, inputs: tensor('float32', [90, 5], withNaN) },
            { seed: 1, budgetSeconds: 1 },
          ),
          (error) =>
            error instanceof InputError && /example 2, feature 3 is NaN/.test(error.message),
        );
        const budgetSeconds = Math.max(1, limited.minimumBudgetSeconds ?? 0);
        const classifier = await limited.train(data, { seed: 1, budgetSeconds });
        try {
          const wrongWidth = tensor('float32', [18, 25], values.slice(0, 450));
          await assert.rejects(
            classifier.predictProba(wrongWidth),
            (error) => error instanceof InputError && /trained on 5 features/.test(error.message),
          );
        } finally {
          await classifier.release();
        }
      });
    });
  }
});
