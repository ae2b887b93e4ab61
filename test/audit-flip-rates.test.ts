/**
 * The audit measures every counterfactual's flip rate, a finding or not (AuditResult
 * `counterfactuals`), and the race's audit summary carries it for every contender. Oracle: the
 * flips counted here from the classifier's own probabilities on the test rows and on the same
 * rows with the attribute's column flipped (1 − x) by this file, and the Wilson interval from
 * its closed form.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { audit } from '../src/api/audit.ts';
import type { Contender, TrainedClassifier } from '../src/race/contender.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import { race } from '../src/race/race.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { gaussian } from './race-oracles.ts';

const featureNames = ['signal', 'attr', 'noise'];
const ATTR = 1;

/**
 * Rows [signal, attr, noise] with a binary attr. `reads: 'signal'`: the label is sign(signal)
 * and attr is a coin independent of it; `reads: 'attr'`: the label is attr, signal is noise.
 */
function table(rows: number, seed: number, reads: 'signal' | 'attr') {
  const random = seededRandom(seed);
  const labels = new Int32Array(rows);
  const values = new Float32Array(rows * 3);
  for (let r = 0; r < rows; r++) {
    const signal = gaussian(random);
    const attr = random() < 0.5 ? 0 : 1;
    labels[r] = reads === 'signal' ? (signal > 0 ? 1 : 0) : attr;
    values.set([signal, attr, gaussian(random)], 3 * r);
  }
  return { inputs: tensor('float32', [rows, 3], values), labels, classes: 2 };
}

type Table = ReturnType<typeof table>;

/** Predictions whose class (first of the largest) changes when attr becomes 1 − attr. */
async function countedFlips(classifier: TrainedClassifier, rows: Table): Promise<number> {
  const flipped = (rows.inputs.data as Float32Array).slice();
  for (let r = 0; r < rows.labels.length; r++) flipped[3 * r + ATTR] = 1 - flipped[3 * r + ATTR];
  const before = await classesOf(classifier, rows.inputs.data as Float32Array);
  const after = await classesOf(classifier, flipped);
  return before.filter((c, r) => c !== after[r]).length;
}

async function classesOf(classifier: TrainedClassifier, values: Float32Array): Promise<number[]> {
  const rows = values.length / 3;
  const p = (await classifier.predictProba(tensor('float32', [rows, 3], values)))
    .data as Float32Array;
  return Array.from({ length: rows }, (_, r) => (p[2 * r + 1] > p[2 * r] ? 1 : 0));
}

/** Wilson's 95% interval, (p + z²/2n ± z√(p(1−p)/n + z²/4n²)) / (1 + z²/n). */
function wilson(successes: number, n: number): [number, number] {
  const z = 1.959964;
  const p = successes / n;
  const centre = p + (z * z) / (2 * n);
  const half = z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  const scale = 1 + (z * z) / n;
  return [Math.max(0, (centre - half) / scale), Math.min(1, (centre + half) / scale)];
}

const cases = [
  { reads: 'signal' as const, expect: (rate: number) => rate < 0.03, what: 'near 0' },
  { reads: 'attr' as const, expect: (rate: number) => rate > 0.97, what: 'near 100%' },
];

describe('audit: every counterfactual is measured', () => {
  for (const { reads, expect, what } of cases) {
    it(`a classifier that reads ${reads} gets a flip rate of attr ${what}`, async () => {
      const [train, test] = [table(400, 3, reads), table(300, 4, reads)];
      const classifier = await logisticRegression().train(train, { seed: 1, budgetSeconds: 10 });
      try {
        const flips = await countedFlips(classifier, test);
        const result = await audit(classifier, {
          inputs: test.inputs,
          labels: test.labels,
          featureNames,
          attributes: { attr: Array.from(test.inputs.data as Float32Array).filter(isAttr) },
        });
        assert.equal(result.counterfactuals.length, 1);
        const [measured] = result.counterfactuals;
        const { interval, ...rest } = measured;
        const n = test.labels.length;
        assert.deepEqual(rest, {
          attribute: 'attr',
          transform: 'flip',
          flipRate: flips / n,
          flips,
          examples: n,
        });
        wilson(flips, n).forEach((bound, i) => assert.ok(Math.abs(bound - interval[i]) < 1e-6));
        console.log(`reads ${reads}: attr flips ${flips} of ${n}`);
        assert.ok(expect(measured.flipRate), `flip rate ${measured.flipRate}`);
        const finding = result.findings.find((f) => f.detector === 'shortcut-attribute');
        assert.equal(finding !== undefined, reads === 'attr', 'a finding only past the thresholds');
      } finally {
        await classifier.release();
      }
    });
  }
});

/** Every third value of a [rows, 3] table, from column ATTR. */
function isAttr(_: number, index: number): boolean {
  return index % 3 === ATTR;
}

describe('race: the audit summary carries every flip rate', () => {
  it('reports the attribute a contender ignores, with its measured flip rate', async () => {
    const [train, test] = [table(400, 5, 'signal'), table(300, 6, 'signal')];
    const oracle: { flips?: number } = {};
    const logistic = logisticRegression();
    // The same learner, and the flips counted on its classifier before the race audits it.
    const observed: Contender = {
      ...logistic,
      train: async (data, options) => {
        const classifier = await logistic.train(data, options);
        oracle.flips = await countedFlips(classifier, test);
        return classifier;
      },
    };
    const attributes = { attr: Array.from(test.inputs.data as Float32Array).filter(isAttr) };
    const [result] = await race(
      [observed],
      { train, test },
      { seeds: [1], budgetSeconds: 10, audit: { featureNames, attributes } },
    );
    const shortcuts = result.runs[0].audit!.shortcuts;
    assert.equal(shortcuts.length, 1);
    assert.equal(shortcuts[0].attribute, 'attr');
    assert.equal(shortcuts[0].transform, 'flip');
    assert.equal(shortcuts[0].flipRate, oracle.flips! / test.labels.length);
    assert.ok(shortcuts[0].flipRate < 0.03, `flip rate ${shortcuts[0].flipRate}`);
    assert.equal(shortcuts[0].severity, undefined, 'no finding under the thresholds');
  });
});
