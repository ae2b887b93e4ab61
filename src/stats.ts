/** Small statistics helpers for the uncertainty every sampled metric carries (docs/design.md). */

/** Wilson score interval for a binomial proportion (successes of trials) at ~95% (z = 1.96). */
export function wilsonInterval(successes: number, trials: number, z = 1.96): [number, number] {
  if (trials === 0) return [0, 1];
  const p = successes / trials;
  const denominator = 1 + (z * z) / trials;
  const centre = (p + (z * z) / (2 * trials)) / denominator;
  const halfWidth =
    (z * Math.sqrt((p * (1 - p)) / trials + (z * z) / (4 * trials * trials))) / denominator;
  return [Math.max(0, centre - halfWidth), Math.min(1, centre + halfWidth)];
}

export function percent(fraction: number, digits = 1): string {
  return `${(100 * fraction).toFixed(digits)}%`;
}

/** Φ(z), the standard normal CDF (Abramowitz & Stegun 7.1.26 erf, |error| < 1.5·10⁻⁷). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/**
 * Two-sided p-value that two proportions k₁/n₁ and k₂/n₂ differ: the pooled z test,
 * z = (p₁ − p₂) / √(p̂(1 − p̂)(1/n₁ + 1/n₂)) with p̂ = (k₁ + k₂)/(n₁ + n₂).
 */
export function twoProportionP(k1: number, n1: number, k2: number, n2: number): number {
  if (n1 === 0 || n2 === 0) return 1;
  const pooled = (k1 + k2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return k1 / n1 === k2 / n2 ? 1 : 0;
  return 2 * (1 - normalCdf(Math.abs(k1 / n1 - k2 / n2) / se));
}

/**
 * Two-sided p-value of McNemar's test for paired outcomes: b examples went right → wrong, c went
 * wrong → right. Exact (binomial with p = ½ on the b + c discordant pairs).
 */
export function mcnemarP(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  return Math.min(1, 2 * binomialUpperTail(Math.max(b, c), n, 0.5));
}

/** P(X ≥ k) for X ~ Binomial(n, p), summed exactly in log space. */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  let total = 0;
  for (let i = k; i <= n; i++) {
    const term = Math.exp(logChoose(n, i) + i * logP + (n - i) * logQ);
    total += term;
    if (term < total * 1e-17 && i > n * p) break;
  }
  return Math.min(1, total);
}

function logChoose(n: number, k: number): number {
  return logFactorial(n) - logFactorial(k) - logFactorial(n - k);
}

const logFactorials: number[] = [0];
function logFactorial(n: number): number {
  for (let i = logFactorials.length; i <= n; i++)
    logFactorials[i] = logFactorials[i - 1] + Math.log(i);
  return logFactorials[n];
}

/** Holm–Bonferroni adjusted p-values (same order as given): controls the family-wise error rate. */
export function holmAdjust(pValues: readonly number[]): number[] {
  const order = pValues.map((p, i) => ({ p, i })).sort((a, b) => a.p - b.p);
  const adjusted = new Array<number>(pValues.length);
  let running = 0;
  order.forEach(({ p, i }, rank) => {
    running = Math.max(running, Math.min(1, (pValues.length - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

/**
 * 95% interval of p₁ − p₂ for independent proportions k₁/n₁ and k₂/n₂: Newcombe's hybrid score
 * interval (method 10 of Newcombe 1998), built from the two Wilson intervals.
 */
export function differenceInterval(
  k1: number,
  n1: number,
  k2: number,
  n2: number,
): [number, number] {
  const [p1, p2] = [k1 / n1, k2 / n2];
  const [l1, u1] = wilsonInterval(k1, n1);
  const [l2, u2] = wilsonInterval(k2, n2);
  const d = p1 - p2;
  return [
    d - Math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
    d + Math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
  ];
}

/**
 * 95% Wald interval of a paired change in a proportion over n pairs, of which b went 1 → 0 and c
 * went 0 → 1: (b − c)/n ± 1.96·√((b + c) − (b − c)²/n) / n.
 */
export function pairedDifferenceInterval(b: number, c: number, n: number): [number, number] {
  const d = (b - c) / n;
  const half = (1.96 * Math.sqrt(Math.max(0, b + c - (b - c) ** 2 / n))) / n;
  return [d - half, d + half];
}
