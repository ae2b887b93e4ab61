/**
 * Direct feedback alignment (Nøkland 2016, "Direct Feedback Alignment Provides Learning in Deep
 * Neural Networks"): the output error e = ∂L/∂logits = (P − Y)/n reaches every hidden layer
 * through its own fixed random matrix B_l [width_l, classes], not back through the weights above:
 *   δ_l = (e B_lᵀ) ⊙ f'(a_l)                      [n, width_l]
 *   ΔW_l ∝ −δ_lᵀ h_{l−1},  Δb_l ∝ −Σ_n δ_l        (h_0 = x)
 *   ΔW_head ∝ −eᵀ h_L,     Δb_head ∝ −Σ_n e        (the head's own gradient: it is one layer)
 * With one hidden layer and B_1 = W_headᵀ this is exactly backprop's gradient, which the tests
 * check. The forward pass (a_l, h_l, P) is the MLP graph on onnxruntime; the updates are here.
 */
import { featureMatrix, type Contender } from './contender.ts';
import {
  activationDerivative,
  crossEntropy,
  initialLayers,
  layerWidths,
  MlpRunner,
  mlpClassifier,
  flattenLayers,
  unflattenLayers,
  type Forward,
  type LinearLayer,
  type MlpShape,
} from './mlp.ts';
import {
  Adam,
  gaussianSource,
  MinibatchSampler,
  mlpShapeOf,
  runSteps,
  type NetworkSettings,
} from './network.ts';

export interface DfaSettings extends NetworkSettings {
  learningRate?: number;
}

/** The fixed feedback matrices, B_l [width_l, classes] ~ N(0, 1/classes), drawn once. */
export function randomFeedback(shape: MlpShape, seed: number): Float32Array[] {
  const gaussian = gaussianSource(seed);
  const scale = 1 / Math.sqrt(shape.classes);
  return shape.hidden.map((width) =>
    Float32Array.from({ length: width * shape.classes }, () => scale * gaussian()),
  );
}

/** The DFA update direction for every layer, in the layers' own layout (weight [out, in], bias). */
export function dfaGradients(
  shape: MlpShape,
  layers: readonly LinearLayer[],
  forward: Forward,
  inputs: Float32Array,
  labels: ArrayLike<number>,
  feedback: readonly Float32Array[],
): LinearLayer[] {
  const { rows, probabilities } = forward;
  const classes = shape.classes;
  const error = probabilities.map(
    (p, at) => (p - (labels[Math.floor(at / classes)] === at % classes ? 1 : 0)) / rows,
  ); // [n, classes]
  const widths = layerWidths(shape);
  // h_{l−1} [n, width]
  const layerInput = (l: number) => (l === 0 ? inputs : forward.activations[l - 1]);
  return layers.map((layer, l) => {
    const isHead = l === layers.length - 1;
    const delta = isHead ? error : hiddenDelta(shape, forward, l, error, feedback[l]);
    return { ...layer, ...outerGradient(delta, layerInput(l), rows, widths[l + 1], widths[l]) };
  });
}

/** δ_l = (e B_lᵀ) ⊙ f'(a_l): [n, width]. */
function hiddenDelta(
  shape: MlpShape,
  forward: Forward,
  l: number,
  error: Float32Array,
  feedback: Float32Array,
): Float32Array {
  const width = shape.hidden[l];
  const classes = shape.classes;
  const delta = new Float32Array(forward.rows * width);
  for (let r = 0; r < forward.rows; r++) {
    for (let u = 0; u < width; u++) {
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += error[r * classes + c] * feedback[u * classes + c];
      const at = r * width + u;
      delta[at] =
        sum *
        activationDerivative(shape.act, forward.preActivations[l][at], forward.activations[l][at]);
    }
  }
  return delta;
}

/** weight = δᵀ h [out, in], bias = Σ_rows δ [out]. */
function outerGradient(
  delta: Float32Array,
  input: Float32Array,
  rows: number,
  outWidth: number,
  inWidth: number,
) {
  const weight = new Float32Array(outWidth * inWidth);
  const bias = new Float32Array(outWidth);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outWidth; o++) {
      const d = delta[r * outWidth + o];
      if (d === 0) continue;
      bias[o] += d;
      const row = o * inWidth;
      const x = r * inWidth;
      for (let i = 0; i < inWidth; i++) weight[row + i] += d * input[x + i];
    }
  }
  return { weight, bias };
}

export function directFeedbackAlignment(settings: DfaSettings = {}): Contender {
  return {
    name: 'direct feedback alignment',
    family: 'network',
    usesBackprop: false,
    async train(data, options) {
      const matrix = featureMatrix(data);
      const shape = mlpShapeOf(matrix, settings);
      const runner = await MlpRunner.open(shape, options.threads ?? 1);
      const start = initialLayers(shape, options.seed);
      const theta = flattenLayers(start);
      const layers = unflattenLayers(start, theta);
      const feedback = randomFeedback(shape, options.seed + 2);
      const adam = new Adam(theta.length, settings.learningRate ?? 0.003);
      const sampler = new MinibatchSampler(matrix, settings.batchSize ?? 128, options.seed + 1);
      await runSteps(options, settings.maxSteps ?? 100_000, async () => {
        const batch = sampler.draw();
        const forward = await runner.forward(layers, batch.inputs, batch.rows);
        adam.step(
          theta,
          flattenLayers(dfaGradients(shape, layers, forward, batch.inputs, batch.labels, feedback)),
        );
        return crossEntropy(forward.probabilities, batch.labels, shape.classes);
      });
      return mlpClassifier(runner, layers);
    },
  };
}
