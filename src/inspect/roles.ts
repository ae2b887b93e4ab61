/**
 * Roles: the association of each unit with each class, as the Pearson correlation between the
 * unit's per-example mean activation and the class indicator, with a two-sided p-value
 * (t = r·√(n−2)/√(1−r²), normal approximation for the large n of a dataset) and Bonferroni
 * correction over every (unit, class) pair tested.
 */
export interface Role {
  label: number;
  correlation: number;
  /** Bonferroni-corrected p-value. */
  p: number;
}

export class AssociationAccumulator {
  private n = 0;
  private sumX: Float64Array;
  private sumXX: Float64Array;
  private sumXY: Float64Array[];
  private classCounts: Float64Array;

  constructor(
    private readonly units: number,
    private readonly classes: number,
  ) {
    this.sumX = new Float64Array(units);
    this.sumXX = new Float64Array(units);
    this.sumXY = Array.from({ length: classes }, () => new Float64Array(units));
    this.classCounts = new Float64Array(classes);
  }

  /** `activations[example][unit]`: per-example mean activation; `labels[example]`: class. */
  add(activations: Float64Array[], labels: ArrayLike<number | bigint>): void {
    activations.forEach((row, example) => {
      const label = Number(labels[example]);
      this.n++;
      if (label >= 0 && label < this.classes) this.classCounts[label]++;
      for (let unit = 0; unit < this.units; unit++) {
        this.sumX[unit] += row[unit];
        this.sumXX[unit] += row[unit] * row[unit];
        if (label >= 0 && label < this.classes) this.sumXY[label][unit] += row[unit];
      }
    });
  }

  /** The strongest significant class per unit (p < alpha after correction), if any. */
  roles(alpha = 0.01, tests = this.units * this.classes): (Role | undefined)[] {
    return Array.from({ length: this.units }, (_, unit) => {
      let best: Role | undefined;
      for (let label = 0; label < this.classes; label++) {
        const r = this.correlation(unit, label);
        const p = Math.min(1, tests * twoSidedP(r, this.n));
        if (p < alpha && (!best || Math.abs(r) > Math.abs(best.correlation)))
          best = { label, correlation: r, p };
      }
      return best;
    });
  }

  private correlation(unit: number, label: number): number {
    const n = this.n;
    const meanX = this.sumX[unit] / n;
    const meanY = this.classCounts[label] / n;
    const covariance = this.sumXY[label][unit] / n - meanX * meanY;
    const varianceX = this.sumXX[unit] / n - meanX * meanX;
    const varianceY = meanY * (1 - meanY);
    return varianceX > 1e-12 && varianceY > 0 ? covariance / Math.sqrt(varianceX * varianceY) : 0;
  }
}

/** P(|Z| ≥ |t|) for t = r·√(n−2)/√(1−r²), Z standard normal. */
function twoSidedP(r: number, n: number): number {
  if (Math.abs(r) >= 1) return 0;
  const t = Math.abs(r) * Math.sqrt((n - 2) / (1 - r * r));
  return erfc(t / Math.SQRT2);
}

/** Complementary error function (Numerical Recipes' erfcc, fractional error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
