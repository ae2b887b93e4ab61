/**
 * Direct feedback alignment (Nøkland 2016, "Direct Feedback Alignment Provides Learning in Deep
 * Neural Networks"): the output error e = ∂L/∂logits = (P − Y)/n reaches every hidden layer
 * through its own fixed random matrix B_l [width_l, classes], not back through the weights above:
 *   δ_l = (e B_lᵀ) ⊙ f'(a_l)                      [n, width_l]
 *   ΔW_l ∝ −δ_lᵀ h_{l−1},  Δb_l ∝ −Σ_n δ_l        (h_0 = x)
 *   ΔW_head ∝ −eᵀ h_L,     Δb_head ∝ −Σ_n e        (the head's own gradient: it is one layer)
 * With one hidden layer and B_1 = W_headᵀ this is exactly backprop's gradient, which the tests
 * check. The forward pass and these update directions are one graph on onnxruntime; Adam steps
 * in JavaScript.
 */
import { GraphBuilder, int } from '../graph/builder.ts';
import { openSession, type Session } from '../runtime/session.ts';
import { tensor, type Feeds } from '../tensor.ts';
import { featureMatrix, type Contender } from './contender.ts';
import {
  crossEntropy,
  emitActivationSlope,
  emitMlpForward,
  flattenLayers,
  initialLayers,
  mlpClassifier,
  MlpRunner,
  parameterFeeds,
  unflattenLayers,
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

/**
 * The fixed feedback matrices as the graph takes them, transposed: B_lᵀ [classes, width_l],
 * entries N(0, 1/classes), drawn once.
 */
export function randomFeedback(shape: MlpShape, seed: number): Float32Array[] {
  const gaussian = gaussianSource(seed);
  const scale = 1 / Math.sqrt(shape.classes);
  return shape.hidden.map((width) =>
    Float32Array.from({ length: shape.classes * width }, () => scale * gaussian()),
  );
}

/** The MLP forward graph extended by DFA's update directions, `<parameter>_grad`. */
function dfaGraph(shape: MlpShape) {
  const g = new GraphBuilder('race_dfa');
  const forward = emitMlpForward(g, shape);
  const targets = g.input('targets', 'float32', ['batch', shape.classes]); // one-hot Y
  const rowsAxis = g.initializer('rows_axis', tensor('int64', [1], [0]));
  const count = g.node('ReduceSum', [targets], { keepdims: int(0) }, '/dfa/Count'); // n = Σ Y
  const difference = g.node('Sub', [forward.probabilities, targets], {}, '/dfa/Sub');
  const error = g.node('Div', [difference, count], {}, '/dfa/Error'); // e = (P − Y)/n  [n, classes]
  const emitGradients = (module: string, delta: string, layerInput: string) => {
    // ∇W = δᵀ h [out, in],  ∇b = Σ_n δ [out]
    g.node(
      'Gemm',
      [delta, layerInput],
      { transA: int(1) },
      `/dfa/${module}/WeightGrad`,
      `${module}.weight_grad`,
    );
    g.node(
      'ReduceSum',
      [delta, rowsAxis],
      { keepdims: int(0) },
      `/dfa/${module}/BiasGrad`,
      `${module}.bias_grad`,
    );
    g.output(`${module}.weight_grad`, 'float32');
    g.output(`${module}.bias_grad`, 'float32');
  };
  const hiddenInput = (l: number) => (l === 0 ? forward.input : forward.activations[l - 1]);
  shape.hidden.forEach((width, l) => {
    const module = `fc${l + 1}`;
    const feedback = g.input(`${module}.feedback`, 'float32', [shape.classes, width]); // B_lᵀ
    const projected = g.node('MatMul', [error, feedback], {}, `/dfa/${module}/Project`); // e B_lᵀ
    const slope = emitActivationSlope(
      g,
      shape.act,
      forward.preActivations[l],
      forward.activations[l],
      `/dfa/${module}`,
    );
    emitGradients(
      module,
      g.node('Mul', [projected, slope], {}, `/dfa/${module}/Delta`),
      hiddenInput(l),
    );
  });
  emitGradients('head', error, hiddenInput(shape.hidden.length));
  g.output(forward.probabilities, 'float32');
  return g.build();
}

/** One session that returns the probabilities and every layer's DFA update direction. */
export class DfaRunner {
  private constructor(
    private readonly session: Session,
    readonly shape: MlpShape,
  ) {}

  static async open(shape: MlpShape, threads: number): Promise<DfaRunner> {
    const session = await openSession(dfaGraph(shape), { threads }, 'the DFA update graph');
    return new DfaRunner(session, shape);
  }

  /** `feedback`: B_lᵀ [classes, width_l] per hidden layer. */
  async directions(
    layers: readonly LinearLayer[],
    feedback: readonly Float32Array[],
    inputs: Float32Array,
    labels: ArrayLike<number>,
  ): Promise<{ gradients: LinearLayer[]; probabilities: Float32Array }> {
    const { features, classes, hidden } = this.shape;
    const rows = labels.length;
    const targets = new Float32Array(rows * classes);
    for (let r = 0; r < rows; r++) targets[r * classes + labels[r]] = 1;
    const feeds: Feeds = {
      input: tensor('float32', [rows, features], inputs),
      targets: tensor('float32', [rows, classes], targets),
      ...parameterFeeds(layers),
    };
    hidden.forEach((width, l) => {
      feeds[`fc${l + 1}.feedback`] = tensor('float32', [classes, width], feedback[l]);
    });
    const out = await this.session.run(feeds);
    const gradients = layers.map((layer) => ({
      ...layer,
      weight: out[`${layer.module}.weight_grad`].data as Float32Array,
      bias: out[`${layer.module}.bias_grad`].data as Float32Array,
    }));
    return { gradients, probabilities: out.probabilities.data as Float32Array };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export function directFeedbackAlignment(settings: DfaSettings = {}): Contender {
  return {
    name: 'direct feedback alignment',
    family: 'network',
    usesBackprop: false,
    async train(data, options) {
      const matrix = featureMatrix(data);
      const shape = mlpShapeOf(matrix, settings);
      const threads = options.threads ?? 1;
      const dfa = await DfaRunner.open(shape, threads);
      const start = initialLayers(shape, options.seed);
      const theta = flattenLayers(start);
      const layers = unflattenLayers(start, theta);
      const feedback = randomFeedback(shape, options.seed + 2);
      const adam = new Adam(theta.length, settings.learningRate ?? 0.003);
      const sampler = new MinibatchSampler(matrix, settings.batchSize ?? 128, options.seed + 1);
      try {
        await runSteps(options, settings.maxSteps ?? 100_000, async () => {
          const batch = sampler.draw();
          const step = await dfa.directions(layers, feedback, batch.inputs, batch.labels);
          adam.step(theta, flattenLayers(step.gradients));
          return crossEntropy(step.probabilities, batch.labels, shape.classes);
        });
      } finally {
        await dfa.release();
      }
      return mlpClassifier(await MlpRunner.open(shape, threads), layers);
    },
  };
}
