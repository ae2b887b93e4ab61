/**
 * Linear probes: can a hook's value be read out linearly as the labels (or an attribute)? A ridge
 * classifier per hook — W = (XᵀX + λI)⁻¹XᵀY on one-hot targets, X the per-example unit means with a
 * bias column — trained on 80% of the examples (chosen by a seeded hash of the example index) and
 * scored on the held-out 20%. XᵀX and XᵀY are summed while the data streams, so memory is
 * O(units²), not O(examples).
 */
import { hashIndex } from '../random.ts';

export const isHeldOut = (example: number, seed = 0) => hashIndex(seed, example) % 5 === 0;

export class RidgeProbe {
  private readonly gram: Float64Array; // (d+1)×(d+1)
  private readonly cross: Float64Array; // (d+1)×classes
  private weights: Float64Array | undefined;
  private correct = 0;
  private scored = 0;

  constructor(
    private readonly units: number,
    private readonly classes: number,
    private readonly lambda = 1e-3,
  ) {
    this.gram = new Float64Array((units + 1) ** 2);
    this.cross = new Float64Array((units + 1) * classes);
  }

  /** Pass 1: accumulate the training examples. */
  fit(features: Float64Array[], labels: ArrayLike<number | bigint>, firstExample: number): void {
    const width = this.units + 1;
    features.forEach((row, k) => {
      if (isHeldOut(firstExample + k)) return;
      const x = [...row, 1];
      const label = Number(labels[k]);
      for (let i = 0; i < width; i++) {
        for (let j = i; j < width; j++) this.gram[i * width + j] += x[i] * x[j];
        if (label >= 0 && label < this.classes) this.cross[i * this.classes + label] += x[i];
      }
    });
  }

  /** Pass 2: score the held-out examples (solves for the weights on first use). */
  score(features: Float64Array[], labels: ArrayLike<number | bigint>, firstExample: number): void {
    this.weights ??= this.solve();
    features.forEach((row, k) => {
      if (!isHeldOut(firstExample + k)) return;
      let best = 0;
      let bestScore = -Infinity;
      for (let c = 0; c < this.classes; c++) {
        let value = this.weights![this.units * this.classes + c];
        for (let i = 0; i < this.units; i++) value += row[i] * this.weights![i * this.classes + c];
        if (value > bestScore) {
          bestScore = value;
          best = c;
        }
      }
      if (best === Number(labels[k])) this.correct++;
      this.scored++;
    });
  }

  /** Held-out accuracy. */
  accuracy(): number {
    return this.scored ? this.correct / this.scored : NaN;
  }

  /** Cholesky solve of (XᵀX + λ·trace/d·I) W = XᵀY. */
  private solve(): Float64Array {
    const n = this.units + 1;
    const a = new Float64Array(n * n);
    let trace = 0;
    for (let i = 0; i < n; i++) trace += this.gram[i * n + i];
    for (let i = 0; i < n; i++)
      for (let j = i; j < n; j++) {
        a[i * n + j] = a[j * n + i] = this.gram[i * n + j];
      }
    for (let i = 0; i < n; i++) a[i * n + i] += (this.lambda * trace) / n + 1e-12;
    // A = L·Lᵀ
    for (let j = 0; j < n; j++) {
      let diagonal = a[j * n + j];
      for (let k = 0; k < j; k++) diagonal -= a[j * n + k] ** 2;
      a[j * n + j] = Math.sqrt(Math.max(diagonal, 1e-300));
      for (let i = j + 1; i < n; i++) {
        let value = a[i * n + j];
        for (let k = 0; k < j; k++) value -= a[i * n + k] * a[j * n + k];
        a[i * n + j] = value / a[j * n + j];
      }
    }
    const w = Float64Array.from(this.cross);
    for (let c = 0; c < this.classes; c++) {
      for (let i = 0; i < n; i++) {
        // L y = b
        let value = w[i * this.classes + c];
        for (let k = 0; k < i; k++) value -= a[i * n + k] * w[k * this.classes + c];
        w[i * this.classes + c] = value / a[i * n + i];
      }
      for (let i = n - 1; i >= 0; i--) {
        // Lᵀ x = y
        let value = w[i * this.classes + c];
        for (let k = i + 1; k < n; k++) value -= a[k * n + i] * w[k * this.classes + c];
        w[i * this.classes + c] = value / a[i * n + i];
      }
    }
    return w;
  }
}
