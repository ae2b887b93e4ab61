import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../random.ts';
import { fanova, fanovaImportance, treeMainEffects } from './fanova.ts';
import { fitForest, predict, type TreeNode } from './forest.ts';
import { pedAnova } from './ped-anova.ts';
import { sobolPoints } from './sobol.ts';
import type { Parameter } from './spec.ts';

const leaf = (value: number): TreeNode => ({ leaf: true, value });
const split = (feature: number, threshold: number, left: TreeNode, right: TreeNode): TreeNode => ({
  leaf: false,
  feature,
  threshold,
  left,
  right,
});
const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} vs ${expected}`);

const numeric = (name: string): Parameter => ({ name, kind: 'range', low: 0, high: 1 });

describe('fANOVA of one tree (exact main effects)', () => {
  it('an additive step function 3·[x ≥ ½] + [y ≥ ½]: V = 9/4 + 1/4, shares 0.9 and 0.1', () => {
    const tree = split(0, 0.5, split(1, 0.5, leaf(0), leaf(1)), split(1, 0.5, leaf(3), leaf(4)));
    const [x, y, z] = treeMainEffects(tree, 3)!;
    close(x, 0.9);
    close(y, 0.1);
    close(z, 0);
  });

  it('a product [x ≥ ½]·[y ≥ ½]: each main effect 1/3, the interaction 1/3', () => {
    // mean ¼, V = 3/16; a_x ∈ {0, ½}: V_x = 1/16.
    const tree = split(0, 0.5, leaf(0), split(1, 0.5, leaf(0), leaf(1)));
    const [x, y] = treeMainEffects(tree, 2)!;
    close(x, 1 / 3);
    close(y, 1 / 3);
  });

  it('an uneven split: [x ≥ 0.2] has variance 0.16 and one main effect', () => {
    const tree = split(0, 0.2, leaf(0), leaf(1));
    close(treeMainEffects(tree, 2)![0], 1);
    assert.equal(treeMainEffects(leaf(5), 2), null);
  });
});

describe('random forest + fANOVA on planted objectives', () => {
  const points = sobolPoints(256, 3);

  it('fits a smooth function (out-of-sample error small against its range)', () => {
    const f = (p: number[]) => 3 * p[0] + 0.5 * p[1];
    const forest = fitForest(points, points.map(f), { trees: 50, seed: 1 });
    const test = sobolPoints(64, 3, 1000);
    const error = Math.sqrt(
      test.reduce((sum, p) => sum + (predict(forest, p) - f(p)) ** 2, 0) / test.length,
    );
    assert.ok(error < 0.1, `RMS error ${error} (range 3.5)`);
  });

  it('3x + 0.5y + 0z + noise: x ≫ y ≫ z, near the true shares 9/9.25 and 0.25/9.25', () => {
    const random = seededRandom(3);
    const y = points.map((p) => 3 * p[0] + 0.5 * p[1] + 0.05 * (random() - 0.5));
    const { importance } = fanova(fitForest(points, y, { trees: 100, seed: 2 }));
    const [x, yShare, z] = importance.map((i) => i.share);
    assert.ok(Math.abs(x - 9 / 9.25) < 0.03, `x ${x}`);
    assert.ok(Math.abs(yShare - 0.25 / 9.25) < 0.02, `y ${yShare}`);
    assert.ok(z < 0.005 && yShare > 3 * z && x > 10 * yShare, `z ${z}`);
    assert.ok(importance[0].low <= x && x <= importance[0].high);
  });
});

describe('fANOVA bootstrap intervals (forests refit to resampled configurations)', () => {
  it('order x above y above z, stay in [0, 1] and narrow with more configurations', () => {
    const widths = [16, 64].map((n) => {
      const points = sobolPoints(n, 3);
      const random = seededRandom(3);
      const scores = points.map((p) => 3 * p[0] + 0.5 * p[1] + 0.05 * (random() - 0.5));
      const [x, y, z] = fanovaImportance(points, scores, 0).importance;
      assert.ok(
        x.low > y.high && x.low > z.high,
        `x [${x.low}, ${x.high}] y [${y.low}, ${y.high}]`,
      );
      for (const row of [x, y, z]) assert.ok(row.low >= 0 && row.low <= row.high && row.high <= 1);
      return x.high - x.low;
    });
    assert.ok(widths[1] < widths[0] / 2, `x interval width ${widths[0]} at 16, ${widths[1]} at 64`);
  });
});

describe('PED-ANOVA on planted objectives', () => {
  it('3x + 0.5y + 0z: x ≫ y ≫ z among the top 10%', () => {
    const points = sobolPoints(512, 3, 1);
    const random = seededRandom(5);
    const scores = points.map((p) => 3 * p[0] + 0.5 * p[1] + 0.05 * (random() - 0.5));
    const [x, y, z] = pedAnova({ parameters: ['x', 'y', 'z'].map(numeric), points, scores });
    assert.ok(x.share > 0.7 && x.share > 3 * y.share, `x ${x.share} y ${y.share}`);
    assert.ok(y.share > 3 * z.share, `y ${y.share} z ${z.share}`);
    assert.ok(
      x.low <= x.share && x.share <= x.high && x.low > y.high,
      `x [${x.low}, ${x.high}] y [${y.low}, ${y.high}]`,
    );
  });

  it('a categorical parameter that decides alone gets nearly all the importance', () => {
    const parameters: Parameter[] = [
      numeric('x'),
      { name: 'act', kind: 'values', values: ['relu', 'tanh', 'gelu', 'sigmoid'] },
    ];
    const points = sobolPoints(256, 2, 1).map(([x, u]) => [x, (Math.floor(u * 4) + 0.5) / 4]);
    const scores = points.map(([, act]) => (act > 0.75 ? 1 : 0));
    const [x, act] = pedAnova({ parameters, points, scores });
    assert.ok(act.share > 0.9, `act ${act.share}, x ${x.share}`);
  });
});
