/**
 * The forward-forward algorithm (Hinton 2022, "The Forward-Forward Algorithm: Some Preliminary
 * Investigations"), supervised: each hidden layer of teardown's MLP learns on its own to give
 * high goodness G = Σ_u h_u² to positive data (an example with its correct label embedded) and
 * low goodness to negative data (the same example with a wrong label drawn at random):
 *   L_l = softplus(θ − G⁺) + softplus(G⁻ − θ),   p(positive) = σ(G − θ)
 * Each layer sees the previous layer's activities normalised to unit length, x̂ = x / ‖x‖, so it
 * cannot read the goodness of the layer below, only its direction. The gradient of L_l reaches
 * W_l alone (dL/dG · 2h ⊙ f'(a) · x̂ᵀ): nothing is passed back between layers. Prediction embeds
 * every label in turn and picks the one of highest total goodness; the probabilities given are
 * the softmax of total goodness over labels. The forward graph runs on onnxruntime.
 *
 * The label is embedded by appending its one-hot vector (scaled to the mean length of the
 * examples) to the features: tables have no spare pixels to overwrite as the paper's MNIST did.
 */
import { float, GraphBuilder, int, ints } from '../graph/builder.ts';
import { openSession, type Session } from '../runtime/session.ts';
import { seededRandom } from '../random.ts';
import { tensor, type Feeds } from '../tensor.ts';
import { featureMatrix, queryMatrix, type Contender, type TrainedClassifier } from './contender.ts';
import {
  activationDerivative,
  flattenLayers,
  initialLayers,
  parameterCount,
  unflattenLayers,
  type LinearLayer,
  type MlpShape,
} from './mlp.ts';
import {
  Adam,
  MinibatchSampler,
  mlpShapeOf,
  runSteps,
  type Minibatch,
  type NetworkSettings,
} from './network.ts';

export interface ForwardForwardSettings extends NetworkSettings {
  /** θ, the goodness that separates positive from negative (default 2). */
  threshold?: number;
  learningRate?: number;
}

/** Normalised inputs x̂_l and activities h_l of each layer, [rows, width] each. */
export interface LayerPasses {
  normalisedInputs: Float32Array[];
  preActivations: Float32Array[];
  activations: Float32Array[];
}

/** input [batch, features + classes] → per layer: x̂ = x/(‖x‖ + 10⁻⁶) → Gemm → act. */
function forwardForwardGraph(shape: MlpShape) {
  const g = new GraphBuilder('race_forward_forward');
  const widths = [shape.features + shape.classes, ...shape.hidden];
  let x = g.input('input', 'float32', ['batch', widths[0]]);
  const epsilon = g.initializer('epsilon', tensor('float32', [], [1e-6]));
  shape.hidden.forEach((width, l) => {
    const module = `fc${l + 1}`;
    const squares = g.node(
      'ReduceSumSquare',
      [x],
      { axes: ints([1]), keepdims: int(1) },
      `/${module}/SumSquares`,
    ); // [batch, 1]
    const length = g.node(
      'Add',
      [g.node('Sqrt', [squares], {}, `/${module}/Sqrt`), epsilon],
      {},
      `/${module}/Length`,
    );
    // [batch, in]
    const normalised = g.node('Div', [x, length], {}, `/${module}/Normalise`, `${module}_in`);
    const weight = g.input(`${module}.weight`, 'float32', [width, widths[l]]);
    const bias = g.input(`${module}.bias`, 'float32', [width]);
    const pre = g.node(
      'Gemm',
      [normalised, weight, bias],
      { alpha: float(1), beta: float(1), transB: int(1) },
      `/${module}/Gemm`,
      `${module}_pre`,
    );
    const op = shape.act === 'relu' ? 'Relu' : 'Tanh';
    x = g.node(op, [pre], {}, `/act${l + 1}/${op}`, `${module}_act`); // [batch, width]
    for (const value of [normalised, pre, x]) g.output(value, 'float32');
  });
  return g.build();
}

export class ForwardForwardRunner {
  private constructor(
    private readonly session: Session,
    readonly shape: MlpShape,
  ) {}

  static async open(shape: MlpShape, threads: number): Promise<ForwardForwardRunner> {
    return new ForwardForwardRunner(
      await openSession(forwardForwardGraph(shape), { threads }, 'the forward-forward graph'),
      shape,
    );
  }

  /** `inputs` already carry their embedded label: [rows, features + classes]. */
  async run(
    layers: readonly LinearLayer[],
    inputs: Float32Array,
    rows: number,
  ): Promise<LayerPasses> {
    const feeds: Feeds = {
      input: tensor('float32', [rows, this.shape.features + this.shape.classes], inputs),
    };
    for (const { module, inFeatures, outFeatures, weight, bias } of layers) {
      feeds[`${module}.weight`] = tensor('float32', [outFeatures, inFeatures], weight);
      feeds[`${module}.bias`] = tensor('float32', [outFeatures], bias);
    }
    const out = await this.session.run(feeds);
    const modules = layers.map(({ module }) => module);
    return {
      normalisedInputs: modules.map((m) => out[`${m}_in`].data as Float32Array),
      preActivations: modules.map((m) => out[`${m}_pre`].data as Float32Array),
      activations: modules.map((m) => out[`${m}_act`].data as Float32Array),
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Examples [rows, features] with label `labels[r]` appended as scale · one-hot. */
export function embedLabels(
  inputs: Float32Array,
  rows: number,
  features: number,
  classes: number,
  labels: ArrayLike<number>,
  scale: number,
): Float32Array {
  const width = features + classes;
  const embedded = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    embedded.set(inputs.subarray(r * features, (r + 1) * features), r * width);
    embedded[r * width + features + labels[r]] = scale;
  }
  return embedded;
}

/** G = Σ_u h_u² per row of h [rows, width]. */
export function goodness(activations: Float32Array, rows: number): Float64Array {
  const width = activations.length / rows;
  return Float64Array.from({ length: rows }, (_, r) => {
    let sum = 0;
    for (let u = 0; u < width; u++) sum += activations[r * width + u] ** 2;
    return sum;
  });
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const softplus = (z: number) => (z > 30 ? z : Math.log1p(Math.exp(z)));

/**
 * Each layer's gradient of its own mean loss over a positive and a negative pass (the same rows):
 *   dL/dG⁺ = −σ(θ − G⁺),  dL/dG⁻ = σ(G⁻ − θ),  δ = dL/dG · 2h ⊙ f'(a),  ∇W = δᵀ x̂,  ∇b = Σ δ
 * Returns the layers' gradients and the summed mean loss.
 */
export function forwardForwardGradients(
  shape: MlpShape,
  layers: readonly LinearLayer[],
  positive: LayerPasses,
  negative: LayerPasses,
  rows: number,
  threshold: number,
) {
  let loss = 0;
  const gradients = layers.map((layer, l) => {
    const weight = new Float32Array(layer.weight.length);
    const bias = new Float32Array(layer.bias.length);
    for (const [pass, sign] of [
      [positive, 1],
      [negative, -1],
    ] as const) {
      const h = pass.activations[l];
      const x = pass.normalisedInputs[l];
      goodness(h, rows).forEach((g, r) => {
        // softplus(θ − G) for positive data, softplus(G − θ) for negative
        const margin = sign * (threshold - g);
        loss += softplus(margin) / rows;
        const dLossdGoodness = (-sign * sigmoid(margin)) / rows;
        for (let u = 0; u < layer.outFeatures; u++) {
          const at = r * layer.outFeatures + u;
          const delta =
            dLossdGoodness *
            2 *
            h[at] *
            activationDerivative(shape.act, pass.preActivations[l][at], h[at]);
          if (delta === 0) continue;
          bias[u] += delta;
          for (let i = 0; i < layer.inFeatures; i++)
            weight[u * layer.inFeatures + i] += delta * x[r * layer.inFeatures + i];
        }
      });
    }
    return { ...layer, weight, bias };
  });
  return { gradients, loss };
}

/** Wrong labels, uniform over the classes other than each row's own. */
function wrongLabels(labels: Int32Array, classes: number, uniform: () => number): Int32Array {
  return labels.map((label) => (label + 1 + Math.floor(uniform() * (classes - 1))) % classes);
}

export function forwardForward(settings: ForwardForwardSettings = {}): Contender {
  const threshold = settings.threshold ?? 2;
  return {
    name: 'forward-forward',
    family: 'network',
    usesBackprop: false,
    async train(data, options) {
      const matrix = featureMatrix(data);
      const shape = mlpShapeOf(matrix, settings);
      const layers = initialLayers(
        { ...shape, features: matrix.features + matrix.classes, classes: 1 },
        options.seed,
      ).slice(0, -1);
      const theta = flattenLayers(layers);
      const live = unflattenLayers(layers, theta);
      const scale = meanLength(matrix.values, matrix.rows, matrix.features);
      const runner = await ForwardForwardRunner.open(shape, options.threads ?? 1);
      const adam = new Adam(theta.length, settings.learningRate ?? 0.01);
      const sampler = new MinibatchSampler(matrix, settings.batchSize ?? 128, options.seed + 1);
      const uniform = seededRandom(options.seed + 2);
      const embed = (batch: Minibatch, labels: Int32Array) =>
        embedLabels(batch.inputs, batch.rows, matrix.features, matrix.classes, labels, scale);
      await runSteps(options, settings.maxSteps ?? 100_000, async () => {
        const batch = sampler.draw();
        const positive = await runner.run(live, embed(batch, batch.labels), batch.rows);
        const negative = await runner.run(
          live,
          embed(batch, wrongLabels(batch.labels, matrix.classes, uniform)),
          batch.rows,
        );
        const { gradients, loss } = forwardForwardGradients(
          shape,
          live,
          positive,
          negative,
          batch.rows,
          threshold,
        );
        adam.step(theta, flattenLayers(gradients));
        return loss;
      });
      return forwardForwardClassifier(
        runner,
        live.map((l) => ({ ...l, weight: l.weight.slice(), bias: l.bias.slice() })),
        scale,
      );
    },
  };
}

function meanLength(values: Float32Array, rows: number, features: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++)
    total += Math.hypot(...values.subarray(r * features, (r + 1) * features));
  return total / rows || 1;
}

/** Probabilities = softmax over labels of the total goodness with that label embedded. */
function forwardForwardClassifier(
  runner: ForwardForwardRunner,
  layers: LinearLayer[],
  scale: number,
): TrainedClassifier {
  const { features, classes } = runner.shape;
  return {
    classes,
    size: { kind: 'parameters', count: parameterCount(layers) },
    async predictProba(inputs) {
      const { values, rows } = queryMatrix(inputs, features);
      const total = new Float64Array(rows * classes); // [rows, classes]
      for (let c = 0; c < classes; c++) {
        const passes = await runner.run(
          layers,
          embedLabels(values, rows, features, classes, new Int32Array(rows).fill(c), scale),
          rows,
        );
        for (const activations of passes.activations)
          goodness(activations, rows).forEach((g, r) => {
            total[r * classes + c] += g;
          });
      }
      const probabilities = new Float32Array(rows * classes);
      for (let r = 0; r < rows; r++) {
        const row = total.subarray(r * classes, (r + 1) * classes);
        const largest = Math.max(...row);
        const sum = row.reduce((s, g) => s + Math.exp(g - largest), 0);
        row.forEach((g, c) => {
          probabilities[r * classes + c] = Math.exp(g - largest) / sum;
        });
      }
      return tensor('float32', [rows, classes], probabilities);
    },
    release: () => runner.release(),
  };
}
