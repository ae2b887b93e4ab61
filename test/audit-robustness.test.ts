/**
 * The audit measures robustness (the flip rate under small Gaussian noise) whether or not it
 * becomes a finding (AuditResult `robustness`), and the race carries it into each run's audit
 * summary. Two oracles: the flips counted here from the classifier's own probabilities on the
 * same perturbed rows (perturbTable with the audit's seed), and the closed form — a row at
 * distance d from a sign classifier's boundary flips when noise of σ = 0.05 · sd crosses it, with
 * probability Φ(−d / σ): planted rows at d = σ flip with Φ(−1) = 15.87%, rows at d = 20σ never.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { audit } from '../src/api/audit.ts';
import { DEFAULT_CONFIG } from '../src/audit/config.ts';
import { inMemory } from '../src/audit/examples.ts';
import { perturbTable } from '../src/audit/transforms.ts';
import type { Contender, TrainedClassifier } from '../src/race/contender.ts';
import { race } from '../src/race/race.ts';
import { tensor, type Tensor } from '../src/tensor.ts';

const featureNames = ['x', 'attr'];
const ROWS = 2000;
const NEAR = ROWS / 2;
/** Φ(−1), the standard normal's lower tail at −1. */
const PHI_MINUS_ONE = 0.158655254;

/**
 * Column x: the first half of the rows at ±c, the second at ±1, alternating signs (mean 0), so
 * sd = √((c² + 1) / 2); c solves c = 0.05 · sd, i.e. c² = 0.00125 / (1 − 0.00125): every near
 * row sits one noise σ from 0. Column attr: 0 / 1 alternating, sd 0.5, noise σ 0.025.
 */
function table() {
  const c = Math.sqrt(0.00125 / (1 - 0.00125));
  const values = new Float32Array(ROWS * 2);
  const labels = new Int32Array(ROWS);
  for (let r = 0; r < ROWS; r++) {
    const sign = r % 2 === 0 ? 1 : -1;
    values[2 * r] = sign * (r < NEAR ? c : 1);
    values[2 * r + 1] = (r >> 1) % 2;
    labels[r] = sign > 0 ? 1 : 0;
  }
  return { inputs: tensor('float32', [ROWS, 2], values), labels, c };
}

/** Class 1 when the column is above the threshold, as steep probabilities (no ties). */
function thresholdClassifier(column: number, threshold: number): TrainedClassifier {
  return {
    classes: 2,
    size: { kind: 'parameters', count: 1 },
    async predictProba(inputs) {
      const values = inputs.data as Float32Array;
      const rows = inputs.dims[0];
      const out = new Float32Array(rows * 2);
      for (let r = 0; r < rows; r++) {
        const p = 1 / (1 + Math.exp(-(values[2 * r + column] - threshold) / 1e-4));
        out.set([1 - p, p], 2 * r);
      }
      return tensor('float32', [rows, 2], out);
    },
    async release() {},
  };
}

/** Predictions (first of the largest) that differ between the rows and the perturbed rows. */
async function countedFlips(classifier: TrainedClassifier, rows: Tensor, seed: number) {
  const noisy = perturbTable(inMemory(rows), 0.05, seed).read(0, ROWS);
  const before = await classesOf(classifier, rows);
  const after = await classesOf(classifier, noisy);
  return before.filter((cls, r) => cls !== after[r]).length;
}

async function classesOf(classifier: TrainedClassifier, rows: Tensor): Promise<number[]> {
  const p = (await classifier.predictProba(rows)).data as Float32Array;
  return Array.from({ length: rows.dims[0] }, (_, r) => (p[2 * r + 1] > p[2 * r] ? 1 : 0));
}

describe('audit: robustness is measured, a finding or not', () => {
  const data = table();

  it('a sign classifier with rows one σ from its boundary flips Φ(−1) of them', async () => {
    const classifier = thresholdClassifier(0, 0);
    const result = await audit(classifier, { ...data, featureNames });
    const measured = result.robustness!;
    const flips = await countedFlips(classifier, data.inputs, result.config.seed + 1);
    assert.equal(measured.flips, flips, 'the flips counted here on the same perturbed rows');
    assert.equal(measured.examples, ROWS);
    assert.equal(measured.flipRate, flips / ROWS);
    assert.ok(measured.interval[0] < measured.flipRate && measured.flipRate < measured.interval[1]);
    assert.match(measured.perturbation, /0\.05 × each feature's standard deviation/);
    // Closed form: Binomial(1000, Φ(−1)) from the near rows, 0 from the far ones (20σ away).
    const expected = NEAR * PHI_MINUS_ONE;
    const sd = Math.sqrt(NEAR * PHI_MINUS_ONE * (1 - PHI_MINUS_ONE));
    console.log(
      `sign of x: ${flips} of ${ROWS} flip; closed form ${expected.toFixed(1)} ± ${sd.toFixed(1)}`,
    );
    assert.ok(Math.abs(flips - expected) < 4 * sd, `${flips} flips, expected ${expected} ± ${sd}`);
    const finding = result.findings.find((f) => f.detector === 'robustness');
    assert.ok(finding, '7.9% is past the tolerated flip rate');
    assert.equal(finding.metric.value, measured.flipRate, 'the finding reports the same figure');
  });

  it('a classifier reading a binary column 20σ from its threshold flips none, no finding', async () => {
    const classifier = thresholdClassifier(1, 0.5);
    const result = await audit(classifier, { ...data, featureNames });
    assert.equal(await countedFlips(classifier, data.inputs, result.config.seed + 1), 0);
    const { interval, ...rest } = result.robustness!;
    assert.deepEqual(rest, {
      perturbation: rest.perturbation,
      flipRate: 0,
      flips: 0,
      examples: ROWS,
    });
    assert.equal(interval[0], 0);
    assert.equal(
      result.findings.find((f) => f.detector === 'robustness'),
      undefined,
      'measured, not a finding',
    );
  });
});

describe('race: the audit summary carries robustness', () => {
  it('reports each run’s flip rate under noise, with severity only for a finding', async () => {
    const data = table();
    const stub = (name: string, column: number, threshold: number): Contender => ({
      name,
      family: 'linear',
      usesBackprop: false,
      train: async () => thresholdClassifier(column, threshold),
    });
    const results = await race(
      [stub('sign of x', 0, 0), stub('attr', 1, 0.5)],
      { train: { ...data, classes: 2 }, test: { ...data, classes: 2 } },
      { seeds: [1], budgetSeconds: 1, audit: { featureNames }, description: false },
    );
    const [sign, attr] = results.map((r) => r.runs[0].audit!.robustness!);
    const flips = await countedFlips(
      thresholdClassifier(0, 0),
      data.inputs,
      DEFAULT_CONFIG.seed + 1,
    );
    assert.equal(sign.flipRate, flips / ROWS);
    assert.ok(sign.severity !== undefined, 'a finding');
    assert.equal(attr.flipRate, 0);
    assert.equal(attr.severity, undefined);
  });
});
