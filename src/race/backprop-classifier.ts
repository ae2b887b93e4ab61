/**
 * A network trained by teardown's trainer as the race's classifier: the exported ONNX model
 * (logits out) run on onnxruntime, a softmax over its logits, and the model itself for the
 * analyses that read a network's insides.
 */
import { InputError } from '../errors.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { openSession } from '../runtime/session.ts';
import { elementCount, tensor, type Tensor as TensorLike } from '../tensor.ts';
import { queryMatrix, type TrainedClassifier } from './contender.ts';

/** Rows per onnxruntime run when predicting (bounds the activations a CNN holds at once). */
const PREDICT_BATCH = 1024;

export interface ExampleShape {
  /** One example's dims as the model takes it: [features] or [channels, height, width]. */
  dims: number[];
  /**
   * Whether inputs must come in exactly that shape (a CNN: a convolution needs the image's
   * layout); otherwise any inputs with as many values per example are read in C order.
   */
  exactShape: boolean;
  /** Classes the race scores (the model may have fewer, when the last never occurs). */
  classes: number;
}

export async function trainedClassifier(
  model: ModelProto,
  shape: ExampleShape,
  threads: number,
): Promise<TrainedClassifier> {
  const session = await openSession(model, { threads }, 'the trained backprop network');
  const features = shape.dims.reduce((a, b) => a * b, 1);
  return {
    classes: shape.classes,
    size: { kind: 'parameters', count: parameterCount(model) },
    model: () => model,
    async predictProba(inputs: TensorLike) {
      if (shape.exactShape) checkExampleShape(inputs, shape.dims);
      const { values, rows } = queryMatrix(inputs, features);
      const probabilities = new Float32Array(rows * shape.classes);
      for (let start = 0; start < rows; start += PREDICT_BATCH) {
        const count = Math.min(PREDICT_BATCH, rows - start);
        const batch = values.subarray(start * features, (start + count) * features);
        const input = tensor('float32', [count, ...shape.dims], batch);
        const { logits } = await session.run({ input }, ['logits']);
        softmaxInto(logits, probabilities.subarray(start * shape.classes), shape.classes);
      }
      return tensor('float32', [rows, shape.classes], probabilities);
    },
    release: () => session.release(),
  };
}

/** A CNN takes images of the shape it was trained on, not just as many values. */
function checkExampleShape(inputs: TensorLike, dims: number[]): void {
  const given = inputs.dims.slice(1);
  if (given.join() !== dims.join()) {
    throw new InputError(
      `The CNN was trained on images [${dims.join(', ')}]; these inputs have shape ` +
        `[${inputs.dims.join(', ')}]: give images [examples, ${dims.join(', ')}].`,
    );
  }
}

/**
 * p_c = exp(z_c − max z) / Σ exp(z − max z) per row of logits [rows, k], written into
 * [rows, classes]; classes k … classes − 1, which the model has no logit for because they never
 * occurred in its training rows, get probability 0.
 */
function softmaxInto(logits: TensorLike, out: Float32Array, classes: number): void {
  const [rows, k] = logits.dims;
  const z = logits.data as Float32Array;
  for (let r = 0; r < rows; r++) {
    let largest = -Infinity;
    for (let c = 0; c < k; c++) largest = Math.max(largest, z[r * k + c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(z[r * k + c] - largest);
    for (let c = 0; c < k; c++) out[r * classes + c] = Math.exp(z[r * k + c] - largest) / sum;
  }
}

/** Every value of every initializer: the builders' initializers are the parameters. */
function parameterCount(model: ModelProto): number {
  return model.graph!.initializer.reduce(
    (count, initializer) => count + elementCount(initializer.dims.map(Number)),
    0,
  );
}
