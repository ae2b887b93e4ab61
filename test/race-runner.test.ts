/**
 * The race runner: the same rows and budget for every contender and seed; accuracy as an
 * independent count on the same probabilities; a failing contender reported with its reason
 * while the race goes on; an abort ending the whole race; progress that moves within a round as
 * the contender reports its steps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { permutation, takeRows } from '../src/data/tasks.ts';
import { InputError } from '../src/errors.ts';
import { tensor } from '../src/tensor.ts';
import { trackProgress, type ProgressEvent } from '../src/progress.ts';
import type { Contender, TrainedClassifier } from '../src/race/contender.ts';
import { directFeedbackAlignment } from '../src/race/dfa.ts';
import { kNearestNeighbours } from '../src/race/knn.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import { race } from '../src/race/race.ts';
import { seededRandom } from '../src/random.ts';
import { accuracy, gaussian, twoBlobs, rowsOf } from './race-oracles.ts';

const features = 4;
const blobs = twoBlobs(300, features, 17, 1.5);
const [train, test] = [rowsOf(blobs, 0, 200), rowsOf(blobs, 200, 300)];
// The same rows with every label flipped: a one-hot classifier scores exactly 1 − its accuracy.
const shifted = { ...test, labels: test.labels.map((label) => 1 - label) };

const failing: Contender = {
  name: 'always fails',
  family: 'network',
  usesBackprop: false,
  train: async () => {
    throw new Error('the stub cannot train');
  },
};

describe('race: the runner', () => {
  it('measures every contender on the same rows, and goes on past a failure', async () => {
    const dfa = directFeedbackAlignment({ hidden: [4], maxSteps: 30 });
    const contenders = [kNearestNeighbours({ k: 1 }), failing, dfa];
    const results = await race(
      contenders,
      { train, test, shifted },
      { seeds: [1, 2, 3], budgetSeconds: 10 },
    );
    assert.deepEqual(
      results.map((r) => [r.name, r.runs.length, r.failed]),
      [
        ['knn (k=1)', 3, undefined],
        ['always fails', 0, 'the stub cannot train'],
        ['direct feedback alignment', 3, undefined],
      ],
    );
    // kNN: the count here, from a classifier trained apart on the same rows.
    const knn = await kNearestNeighbours({ k: 1 }).train(train, { seed: 1, budgetSeconds: 10 });
    const expected = accuracy(
      (await knn.predictProba(test.inputs)).data as Float32Array,
      test.labels,
      2,
    );
    await knn.release();
    const [knnResult, , dfaResult] = results;
    for (const run of knnResult.runs) {
      assert.equal(run.accuracy.in.value, expected);
      assert.ok(Math.abs(run.accuracy.shifted!.value - (1 - expected)) < 1e-12);
      assert.ok(run.accuracy.in.interval[0] < expected && expected < run.accuracy.in.interval[1]);
      assert.deepEqual(run.size, { kind: 'prototypes', count: 200 });
    }
    assert.equal(knnResult.seedStd, 0);
    // DFA: the spread is the sample standard deviation of the runs.
    const values = dfaResult.runs.map((run) => run.accuracy.in.value);
    const mean = (values[0] + values[1] + values[2]) / 3;
    const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / 2);
    assert.ok(
      Math.abs(dfaResult.seedMean! - mean) < 1e-12 && Math.abs(dfaResult.seedStd! - std) < 1e-12,
    );
    assert.deepEqual(
      dfaResult.runs.map((run) => run.seed),
      [1, 2, 3],
    );
    assert.ok(
      dfaResult.runs.every((run) => run.trainSeconds > 0 && run.predictMicrosPerExample > 0),
    );
  });

  it('trains each fraction on the same seeded rows, and refuses bad fractions', async () => {
    const results = await race(
      [kNearestNeighbours({ k: 1 })],
      { train, test },
      { seeds: [1, 2], budgetSeconds: 5, fractions: [0.1, 1] },
    );
    const runs = results[0].runs;
    assert.deepEqual(
      runs.map((run) => [run.fraction, run.seed, run.size.count]),
      [
        [0.1, 1, 20],
        [0.1, 2, 20],
        [1, 1, 200],
        [1, 2, 200],
      ],
    );
    for (const run of runs.slice(0, 2)) {
      // A kNN trained apart on the rows the seed's permutation puts first.
      const rows = permutation(200, run.seed).slice(0, 20);
      const subset = {
        inputs: takeRows(train.inputs, rows),
        labels: rows.map((r) => train.labels[r]),
        classes: 2,
      };
      const apart = await kNearestNeighbours({ k: 1 }).train(subset, {
        seed: run.seed,
        budgetSeconds: 5,
      });
      const expected = accuracy(
        (await apart.predictProba(test.inputs)).data as Float32Array,
        test.labels,
        2,
      );
      await apart.release();
      assert.equal(run.accuracy.in.value, expected);
    }
    assert.equal(results[0].seedMean, runs[2].accuracy.in.value); // seeds at the full data only
    await assert.rejects(
      race(
        [kNearestNeighbours()],
        { train, test },
        { seeds: [1], budgetSeconds: 1, fractions: [0.5, 0] },
      ),
      (error) =>
        error instanceof InputError &&
        /must be in \(0, 1\], e.g. 0.1,0.3,1; got \[0.5, 0\]/.test(error.message),
    );
  });

  it("refuses a budget below a contender's stated minimum before anything trains", async () => {
    let trained = 0;
    const counting: Contender = {
      ...kNearestNeighbours(),
      train: async (...args) => (trained++, kNearestNeighbours().train(...args)),
    };
    const slow: Contender = { ...kNearestNeighbours(), name: 'slow', minimumBudgetSeconds: 20 };
    await assert.rejects(
      race([counting, slow], { train, test }, { seeds: [1], budgetSeconds: 5 }),
      (error) =>
        error instanceof InputError &&
        /budget of 5 s is below what contender 'slow' needs \(20 s per seed\)/.test(error.message),
    );
    await assert.rejects(
      race([counting], { train, test }, { seeds: [1], budgetSeconds: 0 }),
      /positive number of seconds/,
    );
    assert.equal(trained, 0);
  });

  it('stops the whole race at an abort, rather than reporting it as a failure', async () => {
    const controller = new AbortController();
    const aborting: Contender = {
      ...failing,
      train: async () => {
        controller.abort();
        throw controller.signal.reason;
      },
    };
    await assert.rejects(
      race(
        [aborting, kNearestNeighbours()],
        { train, test },
        { seeds: [1], budgetSeconds: 1, signal: controller.signal },
      ),
      { name: 'AbortError' },
    );
  });
});

/** A classifier that answers one half for every row of [rows, features]. */
const undecided: TrainedClassifier = {
  classes: 2,
  size: { kind: 'parameters', count: 0 },
  predictProba: async (inputs) =>
    tensor('float32', [inputs.dims[0], 2], new Float32Array(2 * inputs.dims[0]).fill(0.5)),
  release: async () => {},
};

/**
 * A contender that reports `steps` of `total` training steps through its own onProgress, waiting
 * `pauseMs` before each, noting how many race events had arrived when it reported each step; it
 * throws after `failAfter` steps when given.
 */
function stepper(name: string, steps: number, total: number, pauseMs = 0, failAfter?: number) {
  const seenAtEachStep: number[][] = [];
  const contender: Contender = {
    name,
    family: 'network',
    usesBackprop: false,
    train: async (_data, options) => {
      const progress = trackProgress('train', total, options);
      const seen: number[] = [];
      seenAtEachStep.push(seen);
      for (let step = 1; step <= steps; step++) {
        if (step - 1 === failAfter) throw new Error(`${name} broke at step ${step}`);
        if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs));
        progress.tick(1, `loss ${1 / step}`);
        seen.push(raceEvents.length);
      }
      return undecided;
    },
  };
  return { contender, seenAtEachStep };
}

let raceEvents: ProgressEvent[] = [];

describe('race: progress within a round', () => {
  it('moves by each contender’s steps, a round counted once, when it ends', async () => {
    raceEvents = [];
    const steady = stepper('steady', 4, 4);
    const breaks = stepper('breaks', 4, 4, 0, 1);
    const results = await race(
      [steady.contender, breaks.contender],
      { train, test },
      {
        seeds: [1, 2],
        budgetSeconds: 1000,
        description: false,
        onProgress: (event) => raceEvents.push(event),
      },
    );
    assert.equal(results[1].failed, 'breaks broke at step 2');
    // Four rounds in all. Each step of 4 is a quarter round, shown up to .99 until the round
    // ends; the clock (milliseconds of 1000 s) adds nothing. 'breaks' reports one step of its
    // first round, fails (the round ends: 3), and its second round is counted unrun (4).
    const expected = [0.25, 0.5, 0.75, 0.99, 1, 1.25, 1.5, 1.75, 1.99, 2, 2.25, 3, 4];
    assert.deepEqual(
      raceEvents.map((e) => e.done),
      expected,
    );
    assert.ok(raceEvents.every((e) => e.task === 'race' && e.total === 4));
    // Each step's event had arrived before the contender's next step: during training.
    assert.deepEqual(steady.seenAtEachStep, [
      [1, 2, 3, 4],
      [6, 7, 8, 9],
    ]);
    assert.equal(raceEvents[0].status, 'steady, 100% of the data, seed 1: train 1/4, loss 1');
    assert.equal(raceEvents[4].status, 'steady, 100% of the data, seed 1');
  });

  it('moves by the clock for a contender that stops on the budget long before its step limit', async () => {
    raceEvents = [];
    // Steps of 100,000 are nothing; 60 ms each of a 0.2 s budget are 30%, 60%, 90%, then past it.
    const slow = stepper('slow', 4, 100_000, 60);
    await race(
      [slow.contender],
      { train, test },
      { seeds: [1], budgetSeconds: 0.2, description: false, onProgress: (e) => raceEvents.push(e) },
    );
    const within = raceEvents.slice(0, 4).map((e) => e.done);
    for (let i = 1; i < 4; i++) assert.ok(within[i] >= within[i - 1], `never back: ${within}`);
    assert.ok(within[0] >= 0.25 && within[0] < within[3], `moves with the clock: ${within}`);
    assert.equal(within[3], 0.99, 'past the budget: at the cap until the round ends');
    assert.deepEqual(
      raceEvents.slice(4).map((e) => e.done),
      [1],
    );
  });
});

describe('race: the runner with the audit', () => {
  it('finds the planted shortcut column logistic regression relies on, not the noise', async () => {
    // Columns: a weak real signal (label + N(0, 1.5²)), a shortcut equal to the label, noise.
    const random = seededRandom(23);
    const rows = 600;
    const labels = Int32Array.from({ length: rows }, (_, r) => r % 2);
    const values = new Float32Array(rows * 3);
    labels.forEach((label, r) => {
      values.set([label + 1.5 * gaussian(random), label, gaussian(random)], 3 * r);
    });
    const part = (start: number, end: number) => ({
      inputs: tensor('float32', [end - start, 3], values.slice(3 * start, 3 * end)),
      labels: labels.slice(start, end),
      classes: 2,
    });
    const [table, held] = [part(0, 400), part(400, 600)];
    const featureNames = ['signal', 'shortcut', 'noise'];
    const audit = { featureNames, attributes: { shortcut: held.labels } };
    const [result] = await race(
      [logisticRegression()],
      { train: table, test: held },
      { seeds: [1], budgetSeconds: 10, audit },
    );
    const summary = result.runs[0].audit!;
    const reliance = Object.fromEntries(
      summary.featureReliance.map((f) => [f.feature, f.reliance]),
    );
    console.log(`logistic regression, planted shortcut: ${JSON.stringify(summary)}`);
    assert.ok(reliance.shortcut > 30, `reliance on the shortcut: ${reliance.shortcut} points`);
    assert.ok(Math.abs(reliance.noise) < 5, `reliance on the noise: ${reliance.noise} points`);
    assert.deepEqual(
      summary.shortcuts.map((s) => s.attribute),
      ['shortcut'],
    );
    assert.ok(summary.shortcuts[0].flipRate > 0.5, `flip rate ${summary.shortcuts[0].flipRate}`);
    assert.ok(summary.ece >= 0 && summary.ece <= 1);
  });
});
