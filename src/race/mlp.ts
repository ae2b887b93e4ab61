/**
 * The MLP of teardown's trainer (train/builders.ts: fc1 … fcL → act, then head), its parameters
 * held in JavaScript for learners that update them without backprop, and its forward pass run as
 * an ONNX graph on onnxruntime. The weights are graph inputs, so one session serves every
 * parameter vector a learner tries (an ES population, SPSA's two perturbations).
 * With no hidden layers it is multinomial logistic regression.
 */
import { float, GraphBuilder, int } from '../graph/builder.ts';
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { openSession, type Session } from '../runtime/session.ts';
import { Initializer } from '../train/init.ts';
import { tensor, type Feeds, type Tensor as TensorLike } from '../tensor.ts';
import { queryMatrix, type TrainedClassifier } from './contender.ts';

export type HiddenActivation = 'relu' | 'tanh';

export interface MlpShape {
  features: number;
  hidden: number[];
  classes: number;
  act: HiddenActivation;
}

/** One Gemm of the MLP, as nn.Linear holds it: weight [out, in], bias [out]. */
export interface LinearLayer {
  /** PyTorch's module name: fc1, fc2, …, head. */
  module: string;
  inFeatures: number;
  outFeatures: number;
  weight: Float32Array;
  bias: Float32Array;
}

export const layerWidths = (shape: MlpShape): number[] => [
  shape.features,
  ...shape.hidden,
  shape.classes,
];

/** PyTorch's default nn.Linear initialisation, drawn in the trainer's order (train/init.ts). */
export function initialLayers(shape: MlpShape, seed: number): LinearLayer[] {
  const init = new Initializer(seed);
  const widths = layerWidths(shape);
  return widths.slice(1).map((outFeatures, l) => {
    const inFeatures = widths[l];
    const { weight, bias } = init.linear([outFeatures, inFeatures]);
    const module = l === widths.length - 2 ? 'head' : `fc${l + 1}`;
    return {
      module,
      inFeatures,
      outFeatures,
      weight: weight.data as Float32Array,
      bias: bias.data as Float32Array,
    };
  });
}

export const parameterCount = (layers: readonly LinearLayer[]): number =>
  layers.reduce((count, layer) => count + layer.weight.length + layer.bias.length, 0);

/** All parameters as one vector (each layer's weight then bias), for perturbation methods. */
export function flattenLayers(layers: readonly LinearLayer[]): Float32Array {
  const flat = new Float32Array(parameterCount(layers));
  let offset = 0;
  for (const { weight, bias } of layers) {
    flat.set(weight, offset);
    flat.set(bias, offset + weight.length);
    offset += weight.length + bias.length;
  }
  return flat;
}

/** Layers of the same shapes as `like` over the values of `flat` (views, not copies). */
export function unflattenLayers(like: readonly LinearLayer[], flat: Float32Array): LinearLayer[] {
  let offset = 0;
  return like.map((layer) => {
    const weight = flat.subarray(offset, offset + layer.weight.length);
    const bias = flat.subarray(
      offset + layer.weight.length,
      offset + layer.weight.length + layer.bias.length,
    );
    offset += weight.length + bias.length;
    return { ...layer, weight, bias };
  });
}

/** The forward graph on onnxruntime, with the parameters fed at each run. */
export class MlpRunner {
  private constructor(
    private readonly session: Session,
    readonly shape: MlpShape,
  ) {}

  static async open(shape: MlpShape, threads: number): Promise<MlpRunner> {
    return new MlpRunner(
      await openSession(forwardGraph(shape), { threads }, 'the race MLP forward graph'),
      shape,
    );
  }

  /** Probabilities only (the ES and SPSA objective). */
  async probabilities(
    layers: readonly LinearLayer[],
    inputs: Float32Array,
    rows: number,
  ): Promise<Float32Array> {
    const { probabilities } = await this.session.run(this.feeds(layers, inputs, rows), [
      'probabilities',
    ]);
    return probabilities.data as Float32Array;
  }

  release(): Promise<void> {
    return this.session.release();
  }

  private feeds(layers: readonly LinearLayer[], inputs: Float32Array, rows: number): Feeds {
    const input = tensor('float32', [rows, this.shape.features], inputs);
    return { input, ...parameterFeeds(layers) };
  }
}

/** The values of the MLP's forward pass in a graph being built (race/dfa.ts extends it). */
export interface EmittedForward {
  input: string;
  /** a_l and h_l of each hidden layer, [batch, width_l]. */
  preActivations: string[];
  activations: string[];
  logits: string;
  probabilities: string;
}

/**
 * input [batch, features] → (Gemm → act) per hidden layer → head Gemm → logits, as
 * train/builders.ts builds teardown's MLP (the same node and parameter names). The parameters are
 * graph inputs, fed at each run, unless `trained` gives their values: then they are initializers
 * and every value is named as the builder names it, so hooks read the same on either model.
 */
function emitMlpLogits(g: GraphBuilder, shape: MlpShape, trained?: readonly LinearLayer[]) {
  const input = g.input('input', 'float32', ['batch', shape.features]);
  const widths = layerWidths(shape);
  const parameter = (name: string, dims: number[], values: Float32Array | undefined) =>
    values ? g.initializer(name, tensor('float32', dims, values)) : g.input(name, 'float32', dims);
  const gemm = (module: string, x: string, l: number, outputName: string | undefined) => {
    const [out, inputs] = [widths[l + 1], widths[l]];
    const weight = parameter(`${module}.weight`, [out, inputs], trained?.[l].weight);
    const bias = parameter(`${module}.bias`, [out], trained?.[l].bias);
    const attributes = { alpha: float(1), beta: float(1), transB: int(1) };
    // [batch, out]
    return g.node('Gemm', [x, weight, bias], attributes, `/${module}/Gemm`, outputName);
  };
  const named = (name: string) => (trained ? undefined : name);
  const preActivations: string[] = [];
  const activations: string[] = [];
  let x = input;
  shape.hidden.forEach((_, l) => {
    preActivations.push(gemm(`fc${l + 1}`, x, l, named(`fc${l + 1}_pre`)));
    const op = shape.act === 'relu' ? 'Relu' : 'Tanh';
    x = g.node(op, [preActivations[l]], {}, `/act${l + 1}/${op}`, named(`fc${l + 1}_act`));
    activations.push(x);
  });
  const logits = gemm('head', x, shape.hidden.length, 'logits');
  return { input, preActivations, activations, logits };
}

/** The forward pass with parameters fed at each run, and the Softmax of its logits. */
export function emitMlpForward(g: GraphBuilder, shape: MlpShape): EmittedForward {
  const emitted = emitMlpLogits(g, shape);
  const probabilities = g.node(
    'Softmax',
    [emitted.logits],
    { axis: int(-1) },
    '/Softmax',
    'probabilities',
  );
  return { ...emitted, probabilities };
}

/**
 * The trained MLP as a plain ONNX model, node for node what train/builders.ts builds for
 * `mlp:hidden=…,act=…` (logits out), so teardown's Model, inspect and audit take it apart as
 * they do a backprop network.
 */
export function mlpModelProto(shape: MlpShape, trained: readonly LinearLayer[]): ModelProto {
  const g = new GraphBuilder('mlp');
  g.output(emitMlpLogits(g, shape, trained).logits, 'float32');
  return g.build();
}

function forwardGraph(shape: MlpShape) {
  const g = new GraphBuilder('race_mlp');
  g.output(emitMlpForward(g, shape).probabilities, 'float32');
  return g.build();
}

/** Each layer's weight [out, in] and bias [out], fed under its parameter's name. */
export function parameterFeeds(layers: readonly LinearLayer[]): Feeds {
  const feeds: Feeds = {};
  for (const { module, inFeatures, outFeatures, weight, bias } of layers) {
    feeds[`${module}.weight`] = tensor('float32', [outFeatures, inFeatures], weight);
    feeds[`${module}.bias`] = tensor('float32', [outFeatures], bias);
  }
  return feeds;
}

/**
 * f'(a) [batch, width] in a graph, from a and h = f(a): relu' = [a > 0], tanh' = 1 − h². Its
 * constants are named after `scope`, so each layer of a graph gets its own.
 */
export function emitActivationSlope(
  g: GraphBuilder,
  act: HiddenActivation,
  pre: string,
  post: string,
  scope: string,
): string {
  if (act === 'relu') {
    const zero = g.initializer(`${scope}/zero`, tensor('float32', [], [0]));
    const positive = g.node('Greater', [pre, zero], {}, `${scope}/Positive`);
    return g.node('Cast', [positive], { to: int(DataType.FLOAT) }, `${scope}/Slope`);
  }
  const one = g.initializer(`${scope}/one`, tensor('float32', [], [1]));
  const square = g.node('Mul', [post, post], {}, `${scope}/Square`);
  return g.node('Sub', [one, square], {}, `${scope}/Slope`);
}

/** Mean cross-entropy −(1/n) Σ log p_{y}, from probabilities [rows, classes]. */
export function crossEntropy(
  probabilities: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
): number {
  let sum = 0;
  for (let r = 0; r < labels.length; r++)
    sum -= Math.log(Math.max(probabilities[r * classes + labels[r]], 1e-12));
  return sum / labels.length;
}

/** A trained MLP as the race's classifier: its forward graph with the final parameters. */
export function mlpClassifier(
  runner: MlpRunner,
  layers: readonly LinearLayer[],
): TrainedClassifier {
  const frozen = layers.map((layer) => ({
    ...layer,
    weight: layer.weight.slice(),
    bias: layer.bias.slice(),
  }));
  return {
    classes: runner.shape.classes,
    size: { kind: 'parameters', count: parameterCount(frozen) },
    model: () => mlpModelProto(runner.shape, frozen),
    async predictProba(inputs: TensorLike) {
      const { values, rows } = queryMatrix(inputs, runner.shape.features);
      return tensor(
        'float32',
        [rows, runner.shape.classes],
        await runner.probabilities(frozen, values, rows),
      );
    },
    release: () => runner.release(),
  };
}
