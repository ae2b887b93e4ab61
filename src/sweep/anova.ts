/**
 * How much of a metric's variance is the hyperparameters', the seeds' and their interaction's: a
 * two-way ANOVA on the configuration × seed table (C rows, S columns, one trial per cell). With
 * grand mean m, row means r_c and column means k_s:
 *   SS_params = S Σ_c (r_c − m)²,  SS_seed = C Σ_s (k_s − m)²,  SS_int = Σ (y_cs − r_c − k_s + m)²
 * on C − 1, S − 1 and (C − 1)(S − 1) degrees of freedom. Read as random effects (configurations
 * drawn from the searched space, seeds from all seeds), the expected mean squares give the variance
 * components σ²_params = (MS_params − MS_int)/S, σ²_seed = (MS_seed − MS_int)/C, σ²_int = MS_int
 * (negative estimates read as 0). With one trial per cell the interaction cannot be told apart from
 * any other noise: it is "what the seed does differently in each configuration". The seed's main
 * effect is what seed s does alike in every configuration (the same initialisation draw, the same
 * data order).
 */

export interface VarianceDecomposition {
  /** Shares of the variance components, summing to 1. */
  params: number;
  seed: number;
  interaction: number;
  components: { params: number; seed: number; interaction: number };
  /** Shares of the total sum of squares (descriptive, also summing to 1). */
  sumsOfSquares: { params: number; seed: number; interaction: number };
  configurations: number;
  seeds: number;
}

/** `table[c][s]`: the metric of configuration c with seed s; at least 2 × 2, every cell finite. */
export function decomposeVariance(
  table: readonly (readonly number[])[],
): VarianceDecomposition | null {
  const C = table.length;
  const S = C > 0 ? table[0].length : 0;
  if (C < 2 || S < 2) return null;
  const m = table.flat().reduce((sum, y) => sum + y, 0) / (C * S);
  const rowMeans = table.map((row) => row.reduce((sum, y) => sum + y, 0) / S);
  const columnMeans = Array.from(
    { length: S },
    (_, s) => table.reduce((sum, row) => sum + row[s], 0) / C,
  );
  const ssParams = S * rowMeans.reduce((sum, r) => sum + (r - m) ** 2, 0);
  const ssSeed = C * columnMeans.reduce((sum, k) => sum + (k - m) ** 2, 0);
  let ssInteraction = 0;
  table.forEach((row, c) =>
    row.forEach((y, s) => {
      ssInteraction += (y - rowMeans[c] - columnMeans[s] + m) ** 2;
    }),
  );
  const msParams = ssParams / (C - 1);
  const msSeed = ssSeed / (S - 1);
  const msInteraction = ssInteraction / ((C - 1) * (S - 1));
  const components = {
    params: Math.max(0, (msParams - msInteraction) / S),
    seed: Math.max(0, (msSeed - msInteraction) / C),
    interaction: msInteraction,
  };
  const total = components.params + components.seed + components.interaction;
  const ssTotal = ssParams + ssSeed + ssInteraction;
  const share = (x: number, of: number) => (of > 0 ? x / of : 0);
  return {
    params: share(components.params, total),
    seed: share(components.seed, total),
    interaction: share(components.interaction, total),
    components,
    sumsOfSquares: {
      params: share(ssParams, ssTotal),
      seed: share(ssSeed, ssTotal),
      interaction: share(ssInteraction, ssTotal),
    },
    configurations: C,
    seeds: S,
  };
}
