/**
 * Loss and accuracy of class scores against labels, in JavaScript from the model's output:
 * cross-entropy per row = logsumexp(scores) − scores[label]; sequence scores count their last
 * position when the task is scored there, else every position.
 */
import { valueInfo } from '../graph/builder.ts';
import { derive } from '../graph/edit.ts';
import { toNumber } from '../onnx/proto.ts';
import { takeRows, type Split } from '../data/tasks.ts';
import type { Model } from '../runtime/model.ts';
import { run } from '../runtime/run.ts';
import { predictedClasses } from '../tensor-math.ts';
import { openSession, type RuntimeOptions, type Session } from '../runtime/session.ts';
import type { Feeds, Tensor } from '../tensor.ts';

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
        if (value > max) {
          max = value;
          best = c;
        }
      }
      let sum = 0;
      for (let c = 0; c < classes; c++)
        sum += Math.exp(Number(scores.data[row * classes + c]) - max);
      result.lossSum += max + Math.log(sum) - Number(scores.data[row * classes + label]);
      if (best === label) result.correct++;
      result.rows++;
    }
  }
  return result;
}

/**
 * Natural logs of probabilities (a Softmax output): as scores they give the same cross-entropy as
 * the logits, since logsumexp(log p) = log Σp = 0, and the same argmax.
 */
export function logOf(probabilities: Tensor): Tensor {
  return {
    ...probabilities,
    data: Float32Array.from(probabilities.data as Float32Array, Math.log),
  };
}

/** Loss and accuracy over a whole split, in batches, with parameters fed as inputs (one session for the whole run). */
export class Evaluator {
  private constructor(
    private readonly session: Session,
    private readonly input: string,
    private readonly output: string,
    private readonly probabilities: boolean,
  ) {}

  /** `probabilities`: the output is a Softmax's; scored by its log, which a cross-entropy reads like logits. */
  static async create(
    model: Model,
    parameters: string[],
    runtime: RuntimeOptions,
    probabilities = false,
    input = model.inputs[0].name,
  ): Promise<Evaluator> {
    const isParameter = new Set(parameters);
    const graph = model.proto.graph;
    const dims = new Map(graph.initializer.map((t) => [t.name, t.dims.map(toNumber)]));
    const proto = derive(model.proto, {
      graph: derive(graph, {
        initializer: graph.initializer.filter((t) => !isParameter.has(t.name)),
        input: [
          ...graph.input,
          ...parameters.map((name) => valueInfo(name, 'float32', dims.get(name))),
        ],
      }),
    });
    return new Evaluator(
      await openSession(proto, runtime, 'the evaluation graph'),
      input,
      model.outputNames[0],
      probabilities,
    );
  }

  /** `extra`: the model's other inputs for examples of the split (fine-tuning with --input). */
  async evaluate(
    parameters: Map<string, Tensor>,
    split: Split,
    positions: 'all' | 'last',
    extra: (split: Split, indices: number[]) => Feeds = () => ({}),
  ): Promise<{ loss: number; accuracy: number }> {
    const rows = split.labels.dims[0];
    const total = { lossSum: 0, correct: 0, rows: 0 };
    for (let start = 0; start < rows; start += 1024) {
      const indices = Array.from(
        { length: Math.min(rows, start + 1024) - start },
        (_, k) => start + k,
      );
      const outputs = await this.session.run(
        {
          [this.input]: takeRows(split.inputs, indices),
          ...extra(split, indices),
          ...Object.fromEntries(parameters),
        },
        [this.output],
      );
      const scores = this.probabilities ? logOf(outputs[this.output]) : outputs[this.output];
      const scored = scoreRows(scores, takeRows(split.labels, indices), positions);
      total.lossSum += scored.lossSum;
      total.correct += scored.correct;
      total.rows += scored.rows;
    }
    return { loss: total.lossSum / total.rows, accuracy: total.correct / total.rows };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * The predicted class (argmax of the first output's last axis) of every example of a classifier;
 * `inputs` feed `inputName` (default the first), `extra` gives other inputs for those examples.
 */
export async function predictClasses(
  model: Model,
  inputs: Tensor,
  inputName = model.inputs[0].name,
  extra: (indices: number[]) => Feeds = () => ({}),
): Promise<Int32Array> {
  const rows = inputs.dims[0];
  const predicted = new Int32Array(rows);
  for (let start = 0; start < rows; start += 1024) {
    const indices = Array.from(
      { length: Math.min(rows, start + 1024) - start },
      (_, k) => start + k,
    );
    const scores = (await run(model, { [inputName]: takeRows(inputs, indices), ...extra(indices) }))
      .outputs[model.outputNames[0]];
    predicted.set(predictedClasses(scores), start);
  }
  return predicted;
}
