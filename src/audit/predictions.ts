/**
 * A classifier's predictions over a dataset, in batches: class probabilities (softmax over the
 * first output's last axis; a sigmoid for a single-logit binary model), the predicted class and
 * the top-label confidence.
 */
import { InputError } from '../errors.ts';
import type { Intervention } from '../graph/interventions.ts';
import { Model } from '../runtime/model.ts';
import { normalizedOutput } from '../autodiff/loss.ts';
import { prepareInterventions, run } from '../runtime/run.ts';
import type { Tensor } from '../tensor.ts';
import { readFeeds, type Examples } from './examples.ts';

export interface Predictions {
  examples: number;
  classes: number;
  /** [examples × classes], row-major. */
  probabilities: Float64Array;
  predicted: Int32Array;
  confidence: Float64Array;
}

/**
 * A learner that is not an ONNX network (a gradient-boosted forest, a logistic regression):
 * `predictProba` gives each example's class probabilities, [examples, classes] row-major.
 */
export interface Classifier {
  classes: number;
  predictProba(inputs: Tensor): ArrayLike<number> | Tensor | Promise<ArrayLike<number> | Tensor>;
}

/** What an audit can check: a network (every detector) or any classifier (those that need only predictions). */
export type Predictor = Model | Classifier;

export const isNetwork = (predictor: Predictor): predictor is Model => predictor instanceof Model;

/** `inputs` (with any pass-through inputs) are read in batches; interventions' reference statistics come from the first 4,096 examples. */
export async function predict(
  model: Predictor,
  inputs: Examples,
  options: { batchSize?: number; interventions?: Intervention[] } = {},
): Promise<Predictions> {
  if (!isNetwork(model)) return predictWith(model, inputs, options.batchSize ?? 512);
  const examples = inputs.rows;
  const batchSize = options.batchSize ?? 512;
  const first = model.inputs[0].name;
  const prepared = options.interventions?.length
    ? await prepareInterventions(
        model,
        options.interventions,
        readFeeds(inputs, 0, Math.min(examples, 4096), first),
      )
    : undefined;
  let result: Predictions | undefined;
  for (let start = 0; start < examples; start += batchSize) {
    const end = Math.min(examples, start + batchSize);
    const { outputs } = await run(model, readFeeds(inputs, start, end, first), {
      interventions: prepared,
      exampleOffset: start,
    });
    const scores = outputs[model.outputNames[0]];
    result ??= allocate(examples, classCount(model, scores));
    fill(
      result,
      scores,
      start,
      normalizedOutput(model.graph, model.outputNames[0], scores.dims.length)?.op === 'Softmax',
    );
  }
  return result ?? allocate(0, 2);
}

async function predictWith(
  classifier: Classifier,
  inputs: Examples,
  batchSize: number,
): Promise<Predictions> {
  if (inputs.passThrough && Object.keys(inputs.passThrough).length)
    throw new InputError(
      'A classifier given as { classes, predictProba } takes one input: audit data with several inputs needs an ONNX model.',
    );
  const result = allocate(inputs.rows, classifier.classes);
  for (let start = 0; start < inputs.rows; start += batchSize) {
    const end = Math.min(inputs.rows, start + batchSize);
    const returned = await classifier.predictProba(inputs.read(start, end));
    const probabilities = 'dims' in returned ? (returned.data as ArrayLike<number>) : returned;
    if (probabilities.length !== (end - start) * classifier.classes) {
      throw new InputError(
        `predictProba returned ${probabilities.length} values for ${end - start} examples of ${classifier.classes} classes: return [examples, classes] probabilities, row-major (${(end - start) * classifier.classes} values).`,
      );
    }
    for (let row = start; row < end; row++) {
      let best = 0;
      for (let c = 0; c < classifier.classes; c++) {
        result.probabilities[row * classifier.classes + c] = Number(
          probabilities[(row - start) * classifier.classes + c],
        );
        if (
          result.probabilities[row * classifier.classes + c] >
          result.probabilities[row * classifier.classes + best]
        )
          best = c;
      }
      result.predicted[row] = best;
      result.confidence[row] = finiteOrZero(result.probabilities[row * classifier.classes + best]);
    }
  }
  return result;
}

/** The number of classes the first output scores: its last axis, or 2 for a single logit. */
function classCount(model: Model, scores: Tensor): number {
  const dims = scores.dims;
  if (dims.length > 2)
    throw new InputError(
      `audit needs a classifier whose first output is [batch, classes]; '${model.outputNames[0]}' of '${model.path}' has shape [${dims.join(', ')}].`,
    );
  const last = dims.length === 2 ? dims[1] : 1;
  return last === 1 ? 2 : last;
}

function allocate(examples: number, classes: number): Predictions {
  return {
    examples,
    classes,
    probabilities: new Float64Array(examples * classes),
    predicted: new Int32Array(examples),
    confidence: new Float64Array(examples),
  };
}

/** `probabilities`: the scores are a Softmax's output already, taken as they are (a LogSoftmax's need nothing: softmax(log p) = p). */
function fill(into: Predictions, scores: Tensor, offset: number, probabilities: boolean): void {
  const width = scores.dims.length === 2 ? scores.dims[1] : 1;
  const rows = scores.data.length / width;
  const classes = into.classes;
  for (let row = 0; row < rows; row++) {
    const target = (offset + row) * classes;
    if (width === 1) {
      const p = 1 / (1 + Math.exp(-Number(scores.data[row]))); // sigmoid: P(class 1)
      into.probabilities[target] = 1 - p;
      into.probabilities[target + 1] = p;
    } else if (probabilities) {
      for (let c = 0; c < width; c++)
        into.probabilities[target + c] = Number(scores.data[row * width + c]);
    } else {
      let max = -Infinity;
      for (let c = 0; c < width; c++) max = Math.max(max, Number(scores.data[row * width + c]));
      let sum = 0;
      for (let c = 0; c < width; c++)
        sum += into.probabilities[target + c] = Math.exp(
          Number(scores.data[row * width + c]) - max,
        );
      for (let c = 0; c < width; c++) into.probabilities[target + c] /= sum;
    }
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (into.probabilities[target + c] > into.probabilities[target + best]) best = c;
    into.predicted[offset + row] = best;
    into.confidence[offset + row] = finiteOrZero(into.probabilities[target + best]);
  }
}

/** Per-example cross-entropy −log p(label). */
export function exampleLosses(predictions: Predictions, labels: Int32Array): Float64Array {
  return Float64Array.from(
    labels,
    (label, i) =>
      -Math.log(Math.max(1e-12, predictions.probabilities[i * predictions.classes + label])),
  );
}

export function correctCount(
  predicted: Int32Array,
  labels: Int32Array,
  rows?: Iterable<number>,
): number {
  let correct = 0;
  for (const i of rows ?? predicted.keys()) if (predicted[i] === labels[i]) correct++;
  return correct;
}

/** A row whose scores are not finite (inputs let through with --allow-non-finite) has no confidence: 0. */
function finiteOrZero(confidence: number): number {
  return Number.isFinite(confidence) ? confidence : 0;
}
