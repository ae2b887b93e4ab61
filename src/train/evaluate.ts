/**
 * Loss and accuracy of class scores against labels, in JavaScript from the model's output:
 * cross-entropy per row = logsumexp(scores) − scores[label]; sequence scores count their last
 * position when the task is scored there, else every position.
 */
import type { Tensor } from '../tensor.ts';

export interface Scored {
  lossSum: number;
  correct: number;
  rows: number;
}

export function scoreRows(scores: Tensor, labels: Tensor, positions: 'all' | 'last'): Scored {
  const classes = scores.dims[scores.dims.length - 1];
  const sequence = scores.dims.length === 3 ? scores.dims[1] : 1;
  const examples = scores.dims[0];
  const result: Scored = { lossSum: 0, correct: 0, rows: 0 };
  for (let example = 0; example < examples; example++) {
    const first = positions === 'last' ? sequence - 1 : 0;
    for (let position = first; position < sequence; position++) {
      const row = example * sequence + position;
      const label = Number(labels.data[labels.data.length === examples ? example : row]);
      let best = 0;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) {
        const value = Number(scores.data[row * classes + c]);
        if (value > max) { max = value; best = c; }
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(Number(scores.data[row * classes + c]) - max);
      result.lossSum += max + Math.log(sum) - Number(scores.data[row * classes + label]);
      if (best === label) result.correct++;
      result.rows++;
    }
  }
  return result;
}
