/**
 * Per-example metrics of a classifier's scores ([batch, classes] or [batch, seq, classes]: the mean
 * over positions for labels per position, the last position for one label per sequence), oriented
 * so that larger means a better model:
 *   loss         −cross-entropy (so an ablation that raises the loss has a positive importance)
 *   accuracy     1 when the top class is the label
 *   logit-diff   score[A] − score[B]
 *   output-change  −mean((output − clean output)²) over the example's output elements: for models
 *                without labels (and outputs of any shape), 0 on the clean run, so an ablation's
 *                importance is the mean squared change it makes to the output
 */
import { InputError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';

/** loss: `probabilities` when the scores are already a Softmax's output (the loss is then −log p(label), not a cross-entropy of them). */
export type MetricSpec =
  | { kind: 'loss'; probabilities?: boolean }
  | { kind: 'accuracy' }
  | { kind: 'logit-diff'; a: number; b: number }
  | { kind: 'output-change' };

export function parseMetric(text: string): MetricSpec {
  if (text === 'loss' || text === 'accuracy' || text === 'output-change') return { kind: text };
  const diff = /^logit-diff:(\d+),(\d+)$/.exec(text);
  if (diff) return { kind: 'logit-diff', a: Number(diff[1]), b: Number(diff[2]) };
  throw new InputError(
    `--metric must be loss, accuracy or logit-diff:A,B (two class indices), or output-change, got '${text}'.`,
  );
}

/**
 * The metric of every example of a batch; `labels` are the batch's labels ([batch] or [batch, seq]);
 * `clean` the output without intervention (output-change only).
 */
export function perExample(
  metric: MetricSpec,
  scores: Tensor,
  labels: Tensor | undefined,
  clean?: Tensor,
): Float64Array {
  if (metric.kind === 'output-change') return meanSquaredChange(scores, clean ?? scores);
  const classes = scores.dims[scores.dims.length - 1];
  const examples = scores.dims[0];
  const positions = scores.data.length / (examples * classes);
  const out = new Float64Array(examples);
  if (metric.kind !== 'logit-diff' && !labels)
    throw new InputError(
      `The ${metric.kind} metric needs labels: give --labels FILE.npy or --label-column NAME.`,
    );
  // One label per example on sequence scores: the sequence is scored on its last position (as modular-addition).
  const onePerExample = labels !== undefined && labels.data.length === examples;
  const first = onePerExample ? positions - 1 : 0;
  for (let example = 0; example < examples; example++) {
    let sum = 0;
    for (let position = first; position < positions; position++) {
      const row = example * positions + position;
      const at = (c: number) => Number(scores.data[row * classes + c]);
      if (metric.kind === 'logit-diff') {
        sum += at(metric.a) - at(metric.b);
        continue;
      }
      const label = Number(labels!.data[onePerExample ? example : row]);
      let max = -Infinity;
      let best = 0;
      for (let c = 0; c < classes; c++)
        if (at(c) > max) {
          max = at(c);
          best = c;
        }
      if (metric.kind === 'accuracy') {
        sum += best === label ? 1 : 0;
        continue;
      }
      if (metric.kind === 'loss' && metric.probabilities) {
        sum += Math.log(Math.max(at(label), Number.MIN_VALUE));
        continue;
      } // −CE = log p[label]
      let total = 0;
      for (let c = 0; c < classes; c++) total += Math.exp(at(c) - max);
      sum -= max + Math.log(total) - at(label); // −CE = log softmax[label]
    }
    out[example] = sum / (positions - first);
  }
  return out;
}

/** Per example: −mean over its output elements of (output − clean)². */
function meanSquaredChange(scores: Tensor, clean: Tensor): Float64Array {
  const examples = scores.dims[0];
  const perExampleSize = scores.data.length / examples;
  return Float64Array.from({ length: examples }, (_, example) => {
    let sum = 0;
    for (let i = example * perExampleSize; i < (example + 1) * perExampleSize; i++)
      sum += (Number(scores.data[i]) - Number(clean.data[i])) ** 2;
    return -sum / perExampleSize;
  });
}
