/**
 * Multinomial logistic regression with an L2 penalty, fitted by L-BFGS to the exact optimum of
 *   J(W, b) = −(1/n) Σ_i log softmax(W x_i + b)_{y_i} + (λ/2) ‖W‖²      (the bias unpenalised)
 *   ∇_W J = (1/n) (P − Y)ᵀ X + λ W,   ∇_b J = (1/n) Σ_i (p_i − y_i)
 * (P: softmax probabilities [n, classes], Y: one-hot labels). J is strictly convex in W for λ > 0,
 * so its one minimum is where the gradient vanishes. Predictions run as an MLP without hidden
 * layers (race/mlp.ts) on onnxruntime.
 */
import { trackProgress } from '../progress.ts';
import {
  featureMatrix,
  secondsSince,
  type Contender,
  type FeatureMatrix,
  type TrainOptions,
} from './contender.ts';
import { minimizeLbfgs } from './lbfgs.ts';
import { MlpRunner, mlpClassifier, type LinearLayer } from './mlp.ts';

export interface LogisticSettings {
  /** λ of the L2 penalty on the weights (default 1e-4). */
  l2?: number;
  maxIterations?: number;
}

export function logisticRegression(settings: LogisticSettings = {}): Contender {
  const l2 = settings.l2 ?? 1e-4;
  const maxIterations = settings.maxIterations ?? 500;
  return {
    name: 'logistic regression',
    family: 'linear',
    usesBackprop: false,
    async train(data, options) {
      const matrix = featureMatrix(data);
      const parameters = fitLogisticRegression(matrix, l2, { ...options, maxIterations });
      const shape = {
        features: matrix.features,
        hidden: [],
        classes: matrix.classes,
        act: 'relu' as const,
      };
      const runner = await MlpRunner.open(shape, options.threads ?? 1);
      return mlpClassifier(runner, [logisticLayer(matrix, parameters)]);
    },
  };
}

/** The minimiser of J: [W (classes × features, row-major), b (classes)], from zeros. */
export function fitLogisticRegression(
  matrix: FeatureMatrix,
  l2: number,
  options: TrainOptions & { maxIterations: number },
): Float64Array {
  const start = performance.now();
  const progress = trackProgress('train', options.maxIterations, options);
  const zeros = new Float64Array((matrix.features + 1) * matrix.classes);
  return minimizeLbfgs(logisticObjective(matrix, l2), zeros, {
    maxIterations: options.maxIterations,
    gradientTolerance: 1e-7,
    onIteration: (_, value) => {
      progress.tick(1, `loss ${value.toFixed(4)}`);
      return secondsSince(start) < options.budgetSeconds;
    },
  });
}

/** Parameters as [W (classes × features, row-major), b (classes)], float64. */
export function logisticObjective(matrix: FeatureMatrix, l2: number) {
  const { values, rows, features, classes, labels } = matrix;
  const logits = new Float64Array(classes);
  return (parameters: Float64Array, gradient: Float64Array): number => {
    gradient.fill(0);
    const biasAt = classes * features;
    let loss = 0;
    for (let r = 0; r < rows; r++) {
      const x = values.subarray(r * features, (r + 1) * features);
      let largest = -Infinity;
      for (let c = 0; c < classes; c++) {
        let z = parameters[biasAt + c];
        for (let f = 0, at = c * features; f < features; f++) z += parameters[at + f] * x[f];
        logits[c] = z;
        largest = Math.max(largest, z);
      }
      let total = 0;
      for (let c = 0; c < classes; c++) total += Math.exp(logits[c] - largest);
      loss += largest + Math.log(total) - logits[labels[r]]; // −log softmax_y, stably
      for (let c = 0; c < classes; c++) {
        // (p − y)/n
        const error = (Math.exp(logits[c] - largest) / total - (c === labels[r] ? 1 : 0)) / rows;
        if (error === 0) continue;
        for (let f = 0, at = c * features; f < features; f++) gradient[at + f] += error * x[f];
        gradient[biasAt + c] += error;
      }
    }
    let penalty = 0;
    for (let i = 0; i < biasAt; i++) {
      penalty += parameters[i] * parameters[i];
      gradient[i] += l2 * parameters[i];
    }
    return loss / rows + (l2 / 2) * penalty;
  };
}

export function logisticLayer(matrix: FeatureMatrix, parameters: Float64Array): LinearLayer {
  const biasAt = matrix.classes * matrix.features;
  return {
    module: 'head',
    inFeatures: matrix.features,
    outFeatures: matrix.classes,
    weight: Float32Array.from(parameters.subarray(0, biasAt)),
    bias: Float32Array.from(parameters.subarray(biasAt)),
  };
}
