/** Small statistics helpers for the uncertainty every sampled metric carries (DESIGN.md, "Uncertainty"). */

/** Wilson score interval for a binomial proportion (successes of trials) at ~95% (z = 1.96). */
export function wilsonInterval(successes: number, trials: number, z = 1.96): [number, number] {
  if (trials === 0) return [0, 1];
  const p = successes / trials;
  const denominator = 1 + (z * z) / trials;
  const centre = (p + (z * z) / (2 * trials)) / denominator;
  const halfWidth = (z * Math.sqrt((p * (1 - p)) / trials + (z * z) / (4 * trials * trials))) / denominator;
  return [Math.max(0, centre - halfWidth), Math.min(1, centre + halfWidth)];
}

export function percent(fraction: number, digits = 1): string {
  return `${(100 * fraction).toFixed(digits)}%`;
}
