/**
 * The forward-forward algorithm (Hinton 2022, "The Forward-Forward Algorithm: Some Preliminary
 * Investigations"), supervised: each hidden layer of teardown's MLP learns on its own to give
 * high goodness G = Σ_u h_u² to positive data (an example with its correct label embedded) and
 * low goodness to negative data (the same example with a wrong label drawn at random). With
 * s = +1 for a positive row and −1 for a negative one, layer l minimises over the batch
 *   L_l = mean_rows softplus(s (θ − G)),   p(positive) = σ(G − θ)
 * Each layer sees the previous layer's activities normalised to unit length, x̂ = x / ‖x‖, so it
 * cannot read the goodness of the layer below, only its direction. L_l's gradient reaches W_l
 * alone — dL/dG = −s σ(s (θ − G)) / rows, δ = dL/dG · 2h ⊙ f'(a), ∇W = δᵀ x̂, ∇b = Σ δ — and
 * nothing is passed back between layers. Prediction embeds every label in turn and picks the one
 * of highest total goodness; the probabilities given are the softmax of total goodness over
 * labels. Forward passes and the per-layer gradients are graphs on onnxruntime.
 *
 * The label is embedded by appending its one-hot vector (scaled to the mean length of the
 * examples) to the features: tables have no spare pixels to overwrite as the paper's MNIST did.
 */
import { GraphBuilder, int, ints } from '../graph/builder.ts';
import { DataType } from '../onnx/proto.ts';
import { openSession, type Session } from '../runtime/session.ts';
import { seededRandom } from '../random.ts';
import { tensor } from '../tensor.ts';
import { featureMatrix, queryMatrix, type Contender, type TrainedClassifier } from './contender.ts';
import { forwardForwardModelProto } from './ff-model.ts';
import {
  emitActivationSlope,
  flattenLayers,
  initialLayers,
  parameterCount,
  parameterFeeds,
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

/**
 * input [batch, features + classes] → per layer: x̂ = x/(‖x‖ + 10⁻⁶) → Gemm → act, with each
 * layer's goodness `fc<l>_goodness` [batch, 1]; with `threshold`, also each layer's loss
 * `fc<l>_loss` and gradients `fc<l>.weight_grad`, `fc<l>.bias_grad` for the row signs `signs`.
 */
function forwardForwardGraph(shape: MlpShape, threshold?: number) {
  const g = new GraphBuilder('race_forward_forward');
  const widths = [shape.features + shape.classes, ...shape.hidden];
  let x = g.input('input', 'float32', ['batch', widths[0]]);
  const signs = threshold === undefined ? '' : g.input('signs', 'float32', ['batch', 1]);
  const epsilon = g.initializer('epsilon', tensor('float32', [], [1e-6]));
  const featureAxis = { axes: ints([1]), keepdims: int(1) };
  shape.hidden.forEach((width, l) => {
    const module = `fc${l + 1}`;
    const scope = `/${module}`;
    const squares = g.node('ReduceSumSquare', [x], featureAxis, `${scope}/SumSquares`); // [b, 1]
    const root = g.node('Sqrt', [squares], {}, `${scope}/Sqrt`);
    const length = g.node('Add', [root, epsilon], {}, `${scope}/Length`);
    const normalised = g.node('Div', [x, length], {}, `${scope}/Normalise`); // x̂ [b, in]
    const weight = g.input(`${module}.weight`, 'float32', [width, widths[l]]);
    const bias = g.input(`${module}.bias`, 'float32', [width]);
    const pre = g.node('Gemm', [normalised, weight, bias], { transB: int(1) }, `${scope}/Gemm`);
    const op = shape.act === 'relu' ? 'Relu' : 'Tanh';
    x = g.node(op, [pre], {}, `/act${l + 1}/${op}`); // h [b, width]
    const goodness = `${module}_goodness`;
    g.node('ReduceSumSquare', [x], featureAxis, `${scope}/Goodness`, goodness); // G [b, 1]
    g.output(goodness, 'float32');
    if (threshold !== undefined) {
      const values = { normalised, pre, activations: x, goodness, signs };
      emitLayerLearning(g, shape, module, values, threshold);
    }
  });
  return g.build();
}

/**
 * Layer `module`'s loss and the gradient of that loss in its own parameters:
 *   margin = s (θ − G),  L = mean softplus(margin),  dL/dG = −s σ(margin) / rows
 *   δ = dL/dG · 2h ⊙ f'(a) [b, width],  ∇W = δᵀ x̂,  ∇b = Σ_rows δ
 */
function emitLayerLearning(
  g: GraphBuilder,
  shape: MlpShape,
  module: string,
  values: { normalised: string; pre: string; activations: string; goodness: string; signs: string },
  threshold: number,
): void {
  const scope = `/${module}`;
  const { normalised, pre, activations, goodness, signs } = values;
  const constant = (name: string, value: number) =>
    g.initializer(`${module}.${name}`, tensor('float32', [], [value]));
  const gap = g.node('Sub', [constant('threshold', threshold), goodness], {}, `${scope}/Gap`);
  const margin = g.node('Mul', [signs, gap], {}, `${scope}/Margin`);
  const loss = g.node('Softplus', [margin], {}, `${scope}/Softplus`);
  g.node('ReduceMean', [loss], { keepdims: int(0) }, `${scope}/Loss`, `${module}_loss`);
  const rows = g.node('Size', [signs], {}, `${scope}/Rows`);
  const rowCount = g.node('Cast', [rows], { to: int(DataType.FLOAT) }, `${scope}/RowCount`);
  const sigmoid = g.node('Sigmoid', [margin], {}, `${scope}/Sigmoid`);
  const pull = g.node('Mul', [signs, sigmoid], {}, `${scope}/Pull`);
  const perRow = g.node('Div', [pull, rowCount], {}, `${scope}/PerRow`);
  const dLossdGoodness = g.node('Neg', [perRow], {}, `${scope}/dLdG`);
  const twoH = g.node('Mul', [activations, constant('two', 2)], {}, `${scope}/TwoH`);
  const slope = emitActivationSlope(g, shape.act, pre, activations, scope);
  const dGoodness = g.node('Mul', [twoH, slope], {}, `${scope}/dGda`);
  const delta = g.node('Mul', [dLossdGoodness, dGoodness], {}, `${scope}/Delta`);
  const weightGrad = `${module}.weight_grad`;
  const biasGrad = `${module}.bias_grad`;
  g.node('Gemm', [delta, normalised], { transA: int(1) }, `${scope}/WeightGrad`, weightGrad);
  const rowsAxis = g.initializer(`${module}.rows_axis`, tensor('int64', [1], [0]));
  g.node('ReduceSum', [delta, rowsAxis], { keepdims: int(0) }, `${scope}/BiasGrad`, biasGrad);
  for (const output of [`${module}_loss`, weightGrad, biasGrad]) g.output(output, 'float32');
}

/** Forward-forward's graphs on onnxruntime: one learns (threshold given), one only measures. */
export class ForwardForwardRunner {
  private constructor(
    private readonly session: Session,
    readonly shape: MlpShape,
  ) {}

  /** Without `threshold`, the runner gives goodness only (prediction). */
  static async open(
    shape: MlpShape,
    threads: number,
    threshold?: number,
  ): Promise<ForwardForwardRunner> {
    const graph = forwardForwardGraph(shape, threshold);
    return new ForwardForwardRunner(
      await openSession(graph, { threads }, 'the forward-forward graph'),
      shape,
    );
  }

  /** Each layer's goodness [rows] of `inputs` that already carry their label. */
  async goodness(
    layers: readonly LinearLayer[],
    inputs: Float32Array,
    rows: number,
  ): Promise<Float32Array[]> {
    const input = tensor('float32', [rows, this.shape.features + this.shape.classes], inputs);
    const wanted = layers.map(({ module }) => `${module}_goodness`);
    const out = await this.session.run({ input, ...parameterFeeds(layers) }, wanted);
    return wanted.map((name) => out[name].data as Float32Array);
  }

  /** Each layer's gradient of its own loss, and the losses' sum, for rows of sign ±1. */
  async gradients(layers: readonly LinearLayer[], inputs: Float32Array, signs: Float32Array) {
    const rows = signs.length;
    const out = await this.session.run({
      input: tensor('float32', [rows, this.shape.features + this.shape.classes], inputs),
      signs: tensor('float32', [rows, 1], signs),
      ...parameterFeeds(layers),
    });
    const gradients = layers.map((layer) => ({
      ...layer,
      weight: out[`${layer.module}.weight_grad`].data as Float32Array,
      bias: out[`${layer.module}.bias_grad`].data as Float32Array,
    }));
    const loss = layers.reduce((sum, { module }) => sum + Number(out[`${module}_loss`].data[0]), 0);
    return { gradients, loss };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Examples [rows, features] with label `labels[r]` appended as scale · one-hot. */
export function embedLabels(
  inputs: Float32Array,
  features: number,
  classes: number,
  labels: ArrayLike<number>,
  scale: number,
): Float32Array {
  const rows = labels.length;
  const width = features + classes;
  const embedded = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    embedded.set(inputs.subarray(r * features, (r + 1) * features), r * width);
    embedded[r * width + features + labels[r]] = scale;
  }
  return embedded;
}

/** Wrong labels, uniform over the classes other than each row's own. */
function wrongLabels(labels: Int32Array, classes: number, uniform: () => number): Int32Array {
  return labels.map((label) => (label + 1 + Math.floor(uniform() * (classes - 1))) % classes);
}

/** A minibatch twice: with its labels (sign +1), then with wrong ones (sign −1). */
function positivesAndNegatives(batch: Minibatch, classes: number, uniform: () => number) {
  const labels = new Int32Array(2 * batch.rows);
  labels.set(batch.labels);
  labels.set(wrongLabels(batch.labels, classes, uniform), batch.rows);
  const inputs = new Float32Array(2 * batch.inputs.length);
  inputs.set(batch.inputs);
  inputs.set(batch.inputs, batch.inputs.length);
  const signs = Float32Array.from(labels, (_, r) => (r < batch.rows ? 1 : -1));
  return { inputs, labels, signs };
}

export function forwardForward(settings: ForwardForwardSettings = {}): Contender {
  const threshold = settings.threshold ?? 2;
  return {
    name: 'forward-forward',
    family: 'network',
    usesBackprop: false,
    async train(data, options) {
      const matrix = featureMatrix(data);
      const { features, classes } = matrix;
      const shape = mlpShapeOf(matrix, settings);
      // fc1 … fcL of the MLP whose input is the example and its label; no head.
      const withLabel = { ...shape, features: features + classes, classes: 1 };
      const layers = initialLayers(withLabel, options.seed).slice(0, -1);
      const theta = flattenLayers(layers);
      const live = unflattenLayers(layers, theta);
      const scale = meanLength(matrix.values, matrix.rows, features);
      const threads = options.threads ?? 1;
      const learner = await ForwardForwardRunner.open(shape, threads, threshold);
      const adam = new Adam(theta.length, settings.learningRate ?? 0.01);
      const sampler = new MinibatchSampler(matrix, settings.batchSize ?? 128, options.seed + 1);
      const uniform = seededRandom(options.seed + 2);
      try {
        await runSteps(options, settings.maxSteps ?? 100_000, async () => {
          const both = positivesAndNegatives(sampler.draw(), classes, uniform);
          const embedded = embedLabels(both.inputs, features, classes, both.labels, scale);
          const { gradients, loss } = await learner.gradients(live, embedded, both.signs);
          adam.step(theta, flattenLayers(gradients));
          return loss;
        });
      } finally {
        await learner.release();
      }
      const measurer = await ForwardForwardRunner.open(shape, threads);
      return forwardForwardClassifier(measurer, live, scale);
    },
  };
}

function meanLength(values: Float32Array, rows: number, features: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let squares = 0;
    for (let f = 0; f < features; f++) squares += values[r * features + f] ** 2;
    total += Math.sqrt(squares);
  }
  return total / rows || 1;
}

/** Probabilities = softmax over labels of the total goodness with that label embedded. */
function forwardForwardClassifier(
  runner: ForwardForwardRunner,
  layers: readonly LinearLayer[],
  scale: number,
): TrainedClassifier {
  const { features, classes } = runner.shape;
  const frozen = layers.map((l) => ({ ...l, weight: l.weight.slice(), bias: l.bias.slice() }));
  return {
    classes,
    size: { kind: 'parameters', count: parameterCount(frozen) },
    model: () => forwardForwardModelProto(runner.shape, frozen, scale),
    async predictProba(inputs) {
      const { values, rows } = queryMatrix(inputs, features);
      const total = new Float64Array(rows * classes); // [rows, classes]
      for (let c = 0; c < classes; c++) {
        const labels = new Int32Array(rows).fill(c);
        const embedded = embedLabels(values, features, classes, labels, scale);
        for (const goodness of await runner.goodness(frozen, embedded, rows)) {
          goodness.forEach((g, r) => (total[r * classes + c] += g));
        }
      }
      return tensor('float32', [rows, classes], softmaxRows(total, classes));
    },
    release: () => runner.release(),
  };
}

function softmaxRows(scores: Float64Array, classes: number): Float32Array {
  const probabilities = new Float32Array(scores.length);
  for (let start = 0; start < scores.length; start += classes) {
    const row = scores.subarray(start, start + classes);
    const largest = row.reduce((most, s) => Math.max(most, s), -Infinity);
    const sum = row.reduce((total, s) => total + Math.exp(s - largest), 0);
    row.forEach((s, c) => (probabilities[start + c] = Math.exp(s - largest) / sum));
  }
  return probabilities;
}
