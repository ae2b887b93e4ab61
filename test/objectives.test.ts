/**
 * The weighted cross-entropy and the IRMv1 penalty (train/objective-losses.ts) against a JavaScript
 * reference of their formulas; gradients against central finite differences of that reference.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeGradients } from '../src/autodiff/gradients.ts';
import { GraphBuilder } from '../src/graph/builder.ts';
import { seededRandom } from '../src/random.ts';
import { Model } from '../src/runtime/model.ts';
import { tensor } from '../src/tensor.ts';
import { groupBalancedWeights } from '../src/train/objective.ts';
import {
  ENVIRONMENT_INPUT,
  irmV1,
  PENALTY_WEIGHT_INPUT,
  WEIGHT_INPUT,
  weightedCrossEntropy,
} from '../src/train/objective-losses.ts';

const ROWS = 6,
  CLASSES = 3;
const random = seededRandom(11);
const logits = Array.from({ length: ROWS * CLASSES }, () => 3 * random() - 1.5);
const targets = [0, 2, 1, 1, 0, 2];
const weights = [1, 3, 0.5, 2, 1, 1];
const environment = [0, 1, 0, 1, 1, 0];

const scoresModel = () => {
  const g = new GraphBuilder('scores', 17);
  g.output(
    g.node(
      'Identity',
      [g.input('input', 'float32', ['batch', CLASSES])],
      {},
      '/scores/Identity',
      'scores',
    ),
    'float32',
  );
  return Model.fromProto(g.build(), 'scores', { threads: 1 });
};

function softmax(z: number[], row: number): number[] {
  const values = z.slice(row * CLASSES, (row + 1) * CLASSES);
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b);
  return exps.map((e) => e / sum);
}

const crossEntropy = (z: number[], row: number) => -Math.log(softmax(z, row)[targets[row]]);

function weightedLoss(z: number[]): number {
  let total = 0,
    weight = 0;
  for (let i = 0; i < ROWS; i++) {
    total += weights[i] * crossEntropy(z, i);
    weight += weights[i];
  }
  return total / weight;
}

/** IRMv1 with the dummy-scale derivative taken by finite differences of the risk itself: independent of the closed form in objective-losses.ts. */
function irmLoss(z: number[], lambda: number): number {
  const risk = (scale: number, e: number) => {
    const rows = [...Array(ROWS).keys()].filter((i) => environment[i] === e);
    return (
      rows.reduce(
        (sum, i) =>
          sum +
          crossEntropy(
            z.map((v) => v * scale),
            i,
          ),
        0,
      ) / rows.length
    );
  };
  const h = 1e-5;
  const penalty = [0, 1].reduce(
    (sum, e) => sum + ((risk(1 + h, e) - risk(1 - h, e)) / (2 * h)) ** 2,
    0,
  );
  const mean = [...Array(ROWS).keys()].reduce((sum, i) => sum + crossEntropy(z, i), 0) / ROWS;
  return (mean + lambda * penalty) / Math.max(1, lambda);
}

function numericGradient(f: (z: number[]) => number): number[] {
  const h = 1e-4;
  return logits.map((_, k) => {
    const up = [...logits],
      down = [...logits];
    up[k] += h;
    down[k] -= h;
    return (f(up) - f(down)) / (2 * h);
  });
}

async function graphLossAndGradient(
  loss: object,
  extra: Record<string, ReturnType<typeof tensor>>,
) {
  const model = scoresModel();
  try {
    const result = await computeGradients(
      model,
      { input: tensor('float32', [ROWS, CLASSES], logits), ...extra },
      tensor('int64', [ROWS], targets),
      { loss: { kind: 'cross-entropy', ...loss }, wrt: ['input'] },
    );
    return {
      loss: result.loss,
      gradient: Array.from(result.gradients.get('input')!.data as Float32Array),
    };
  } finally {
    await model.release();
  }
}

function assertNear(actual: number[], expected: number[], tolerance: number, what: string) {
  actual.forEach((value, k) =>
    assert.ok(
      Math.abs(value - expected[k]) <= tolerance * (1 + Math.abs(expected[k])),
      `${what}[${k}]: ${value} vs ${expected[k]}`,
    ),
  );
}

describe('training objectives', () => {
  it('weighted cross-entropy: Σ wᵢ·CEᵢ / Σ wᵢ and its gradient', async () => {
    const { loss, gradient } = await graphLossAndGradient(
      { objective: weightedCrossEntropy },
      { [WEIGHT_INPUT]: tensor('float32', [ROWS], weights) },
    );
    assertNear([loss], [weightedLoss(logits)], 1e-5, 'loss');
    assertNear(gradient, numericGradient(weightedLoss), 2e-3, 'gradient');
  });

  for (const lambda of [1, 250]) {
    it(`IRMv1 penalty (λ = ${lambda}): loss and gradient match finite differences of the risk`, async () => {
      const mask = tensor(
        'float32',
        [ROWS, 2],
        environment.flatMap((e) => [e === 0 ? 1 : 0, e === 1 ? 1 : 0]),
      );
      const { loss, gradient } = await graphLossAndGradient(
        { objective: irmV1(2) },
        { [ENVIRONMENT_INPUT]: mask, [PENALTY_WEIGHT_INPUT]: tensor('float32', [], [lambda]) },
      );
      assertNear([loss], [irmLoss(logits, lambda)], 1e-4, 'loss');
      assertNear(
        gradient,
        numericGradient((z) => irmLoss(z, lambda)),
        5e-3,
        'gradient',
      );
    });
  }

  it('group-balanced weights give every label × attribute group the same total weight', () => {
    const labels = Int32Array.from([0, 0, 0, 1, 1, 0, 1, 1]);
    const colour = Int32Array.from([0, 0, 1, 1, 1, 0, 0, 1]);
    const w = groupBalancedWeights(labels, [colour]);
    const totals = new Map<string, number>();
    w.forEach((value, i) =>
      totals.set(
        `${labels[i]}|${colour[i]}`,
        (totals.get(`${labels[i]}|${colour[i]}`) ?? 0) + value,
      ),
    );
    for (const total of totals.values()) assert.ok(Math.abs(total - 2) < 1e-6); // N / G = 8 / 4
  });
});
