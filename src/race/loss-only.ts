/**
 * What evolution strategies and SPSA share: they see teardown's MLP only through its minibatch
 * loss at given parameters (zeroth-order methods), so each needs the same set-up — the MLP's
 * shape, its forward graph on onnxruntime, seeded initial weights flattened into θ, and seeded
 * minibatches — and ends with the same classifier built from θ.
 */
import {
  featureMatrix,
  type RaceData,
  type TrainedClassifier,
  type TrainOptions,
} from './contender.ts';
import {
  MlpRunner,
  crossEntropy,
  flattenLayers,
  initialLayers,
  mlpClassifier,
  unflattenLayers,
} from './mlp.ts';
import { MinibatchSampler, mlpShapeOf, type NetworkSettings } from './network.ts';

export interface LossOnlyProblem {
  /** The flat parameters θ, updated in place by the learner. */
  theta: Float32Array;
  /** Draws the next minibatch; returns its mean cross-entropy as a function of the parameters. */
  nextBatchLoss(): (parameters: Float32Array) => Promise<number>;
  /** The trained MLP at the current θ. */
  classifier(): TrainedClassifier;
}

/** Weights from `options.seed`, minibatches from `options.seed + 1`. */
export async function lossOnlyProblem(
  data: RaceData,
  settings: NetworkSettings,
  options: TrainOptions,
): Promise<LossOnlyProblem> {
  const matrix = featureMatrix(data);
  const shape = mlpShapeOf(matrix, settings);
  const runner = await MlpRunner.open(shape, options.threads ?? 1);
  const start = initialLayers(shape, options.seed);
  const theta = flattenLayers(start);
  const sampler = new MinibatchSampler(matrix, settings.batchSize ?? 128, options.seed + 1);
  return {
    theta,
    nextBatchLoss() {
      const batch = sampler.draw();
      return async (parameters) =>
        crossEntropy(
          await runner.probabilities(unflattenLayers(start, parameters), batch.inputs, batch.rows),
          batch.labels,
          shape.classes,
        );
    },
    classifier: () => mlpClassifier(runner, unflattenLayers(start, theta)),
  };
}
