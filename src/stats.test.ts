import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  binomialUpperTail,
  differenceInterval,
  holmAdjust,
  mcnemarP,
  normalCdf,
  pairedDifferenceInterval,
  twoProportionP,
} from './stats.ts';

test('normalCdf matches tabulated values', () => {
  assert.ok(Math.abs(normalCdf(1.96) - 0.9750021) < 2e-7);
  assert.ok(Math.abs(normalCdf(-2.5758) - 0.005) < 2e-6);
  assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-8);
});

test('binomial tails match hand sums', () => {
  // P(X ≥ 9 | n = 10, p = ½) = (10 + 1) / 1024
  assert.ok(Math.abs(binomialUpperTail(9, 10, 0.5) - 11 / 1024) < 1e-12);
  assert.equal(binomialUpperTail(0, 10, 0.3), 1);
  assert.equal(binomialUpperTail(11, 10, 0.3), 0);
  // McNemar: 9 vs 1 discordant pairs, two-sided exact = 2·11/1024
  assert.ok(Math.abs(mcnemarP(9, 1) - 22 / 1024) < 1e-12);
  assert.equal(mcnemarP(0, 0), 1);
});

test('two-proportion z test: equal proportions are not significant, very different ones are', () => {
  assert.ok(twoProportionP(50, 100, 50, 100) > 0.999);
  // z = (0.6 − 0.4)/√(0.25·(2/100)) = 2.828… → p = 0.00468
  assert.ok(Math.abs(twoProportionP(60, 100, 40, 100) - 0.004678) < 1e-5);
});

test('Holm adjustment as in Holm (1979): sorted p-values times (m − rank), kept monotone', () => {
  assert.deepEqual(
    holmAdjust([0.01, 0.04, 0.03, 0.005]).map((p) => +p.toFixed(6)),
    [0.03, 0.06, 0.06, 0.02],
  );
});

test('Newcombe interval for a difference of proportions matches his worked example', () => {
  // Newcombe (1998), Table II example (56/70 − 48/80): method 10 gives 0.0524 to 0.3339.
  const [low, high] = differenceInterval(56, 70, 48, 80);
  assert.ok(Math.abs(low - 0.0524) < 5e-4 && Math.abs(high - 0.3339) < 5e-4, `${low} ${high}`);
});

test('paired interval: symmetric changes centre on zero, and width shrinks with n', () => {
  const [low, high] = pairedDifferenceInterval(10, 10, 100);
  assert.ok(Math.abs(low + high) < 1e-12 && high > 0);
  assert.ok(pairedDifferenceInterval(100, 100, 1000)[1] < high);
});
