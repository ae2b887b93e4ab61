/**
 * What an intervention changed in a model's outputs, accumulated over batches: mean and largest
 * absolute change, and for score-shaped outputs ([batch, classes] or [batch, seq, classes]) how
 * often the top-scoring class (argmax over the last axis) flipped, with its 95% Wilson interval.
 */
import { wilsonInterval } from '../stats.ts';
import type { Tensor } from '../tensor.ts';

export interface OutputChange {
  meanAbsChange: number;
  maxAbsChange: number;
  /** Argmax over the last axis changed, per row (a row per example, or per position for sequences). */
  argmaxFlipRate?: number;
  argmaxFlipInterval?: [number, number];
  rows?: number;
}

export class OutputChangeTracker {
  private absSum = 0;
  private maxAbs = 0;
  private count = 0;
  private flips = 0;
  private rows = 0;

  add(original: Tensor, edited: Tensor): void {
    for (let i = 0; i < original.data.length; i++) {
      const change = Math.abs(Number(edited.data[i]) - Number(original.data[i]));
      this.absSum += change;
      if (change > this.maxAbs || Number.isNaN(change)) this.maxAbs = change;
    }
    this.count += original.data.length;
    const classes = original.dims[original.dims.length - 1];
    if (original.dims.length < 2 || classes < 2) return;
    for (let row = 0; row < original.data.length / classes; row++) {
      if (argmax(original, row, classes) !== argmax(edited, row, classes)) this.flips++;
      this.rows++;
    }
  }

  summary(): OutputChange {
    const change: OutputChange = {
      meanAbsChange: this.absSum / Math.max(1, this.count),
      maxAbsChange: this.maxAbs,
    };
    if (this.rows > 0)
      Object.assign(change, {
        argmaxFlipRate: this.flips / this.rows,
        argmaxFlipInterval: wilsonInterval(this.flips, this.rows),
        rows: this.rows,
      });
    return change;
  }
}

function argmax(t: Tensor, row: number, width: number): number {
  let best = 0;
  for (let c = 1; c < width; c++)
    if (Number(t.data[row * width + c]) > Number(t.data[row * width + best])) best = c;
  return best;
}
