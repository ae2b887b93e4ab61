/**
 * Unit census, streamed over batches in bounded memory: per hook and unit, the mean, standard
 * deviation, fraction of observations above 0 ("active"), whether the unit never fired (dead),
 * and the top-k examples by activation. A unit's observations are its values at every example
 * and position (spatial location, sequence position); an example's score for top-k is its
 * largest value over positions.
 */
import { defaultUnitAxis } from '../graph/units.ts';
import { elementCount, type Tensor } from '../tensor.ts';

export interface UnitCensus {
  mean: number;
  std: number;
  fractionActive: number;
  dead: boolean;
  top: { example: number; value: number }[];
}

export class CensusAccumulator {
  private counts: Float64Array | undefined;
  private mean: Float64Array | undefined;
  private m2: Float64Array | undefined;
  private active: Float64Array | undefined;
  private tops: { example: number; value: number }[][] = [];

  constructor(
    private readonly topK = 5,
    private readonly unitAxis?: number,
  ) {}

  /** Adds a batch of a hook's values, [batch, ...], whose first example is `firstExample` of the dataset. */
  add(values: Tensor, firstExample: number): void {
    const rank = values.dims.length;
    const axis = this.unitAxis ?? defaultUnitAxis(rank);
    const units = values.dims[axis];
    const inner = elementCount(values.dims.slice(axis + 1));
    const perExample = elementCount(values.dims.slice(1));
    if (!this.mean) {
      this.counts = new Float64Array(units);
      this.mean = new Float64Array(units);
      this.m2 = new Float64Array(units);
      this.active = new Float64Array(units);
      this.tops = Array.from({ length: units }, () => []);
    }
    const examples = values.dims[0];
    const best = new Float64Array(units);
    for (let example = 0; example < examples; example++) {
      best.fill(-Infinity);
      for (let offset = 0; offset < perExample; offset++) {
        const value = Number(values.data[example * perExample + offset]);
        const unit = Math.floor(offset / inner) % units;
        // Welford's update per unit: numerically stable running mean and sum of squared deviations.
        const n = ++this.counts![unit];
        const delta = value - this.mean[unit];
        this.mean[unit] += delta / n;
        this.m2![unit] += delta * (value - this.mean[unit]);
        if (value > 0) this.active![unit]++;
        if (value > best[unit]) best[unit] = value;
      }
      for (let unit = 0; unit < units; unit++)
        this.keepTop(unit, firstExample + example, best[unit]);
    }
  }

  result(): UnitCensus[] {
    const counts = this.counts!;
    return Array.from(this.mean ?? [], (mean, unit) => ({
      mean,
      std: counts[unit] > 1 ? Math.sqrt(this.m2![unit] / (counts[unit] - 1)) : 0,
      fractionActive: this.active![unit] / counts[unit],
      dead: this.active![unit] === 0,
      top: [...this.tops[unit]].sort((a, b) => b.value - a.value),
    }));
  }

  /** Keeps the k largest (example, value) pairs of a unit. */
  private keepTop(unit: number, example: number, value: number): void {
    const top = this.tops[unit];
    if (top.length < this.topK) {
      top.push({ example, value });
      return;
    }
    let smallest = 0;
    for (let k = 1; k < top.length; k++) if (top[k].value < top[smallest].value) smallest = k;
    if (value > top[smallest].value) top[smallest] = { example, value };
  }
}
