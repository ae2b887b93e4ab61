/**
 * The Pareto front of the race: the contenders no other contender beats on every axis at once.
 * With every objective to be maximised (negate one to minimise, as training time), b dominates a
 * when b ≥ a on every objective and b > a on at least one; the front is the undominated.
 *
 *   paretoFront(scores, [(c) => c.accuracy, (c) => -c.trainSeconds]);
 */
export function paretoFront<T>(items: readonly T[], objectives: ((item: T) => number)[]): T[] {
  const values = items.map((item) => objectives.map((objective) => objective(item)));
  const dominates = (b: number[], a: number[]) =>
    b.every((v, k) => v >= a[k]) && b.some((v, k) => v > a[k]);
  return items.filter((_, i) => !values.some((other, j) => j !== i && dominates(other, values[i])));
}
