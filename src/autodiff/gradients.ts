/**
 * Gradients of a loss with respect to inputs, parameters and hooks of any supported model:
 *
 *   const { loss, gradients } = await computeGradients(model, { input }, { loss: { kind: 'cross-entropy' }, target, wrt: ['params'] });
 *
 * The loss is appended to the graph (loss.ts), shapes are probed (onnxruntime reports only
 * output shapes), the walker builds one forward+backward graph (backward.ts), and one
 * onnxruntime run computes the loss and every gradient. A GradientProgram keeps the graph and
 * its session for repeated runs (training steps).
 */
import type { Dim } from '../graph/builder.ts';
import { builtByTeardown, InputError } from '../errors.ts';
import { DataType, toNumber, type ModelProto } from '../onnx/proto.ts';
import { Model } from '../runtime/model.ts';
import { probeHookShapes, probeValueShapes } from '../runtime/probe.ts';
import { openSession, sessionThreads, type Session } from '../runtime/session.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import { buildBackward } from './backward.ts';
import { gradientProto } from './opset.ts';
import { transposedCopies, underPyTorchNames, type TransposedCopy } from './parameter-names.ts';
import {
  recurrentPackings,
  underRecurrentNames,
  type RecurrentPacking,
} from './recurrent-names.ts';
import { GraphIndex } from '../graph/graph.ts';
import { appendLoss, checkClassTargets, TARGET_INPUT, type LossSpec } from './loss.ts';

export interface GradientRequest {
  loss: LossSpec;
  /** Values to differentiate with respect to: 'input' (every float graph input), 'params' (every parameter), hook names. */
  wrt: readonly string[];
}

export interface GradientResult {
  loss: number;
  /** By name: input names, parameter names (as in the model's initializers), hook names. */
  gradients: Map<string, Tensor>;
}

/**
 * The model's parameters: float initializers other than BatchNorm running
 * statistics, plus the names PyTorch recreated with Identity copies of merged initializers.
 */
export function parameterNames(model: Model): string[] {
  const graph = model.graph;
  const runningStatistics = new Set(
    graph.nodes
      .filter((node) => node.opType === 'BatchNormalization')
      .flatMap((node) => [node.input[3], node.input[4]]),
  );
  const initializers = model.proto.graph.initializer
    .filter(
      (t) =>
        (t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE) &&
        !runningStatistics.has(t.name),
    )
    .map((t) => t.name);
  const copies = graph.nodes
    .filter(
      (node) =>
        node.opType === 'Identity' &&
        graph.initializerNames.has(node.input[0]) &&
        graph.isFloat(node.output[0]),
    )
    .map((node) => node.output[0]);
  return [...initializers, ...copies];
}

export class GradientProgram {
  private constructor(
    private readonly session: Session,
    private readonly loss: string,
    private readonly gradientOf: Map<string, string>,
    private readonly names: Map<string, string>,
    private readonly shapes: Map<string, readonly Dim[]>,
    /** Cross-entropy: refuses targets that are not class indices of the scores (loss.ts checkClassTargets). */
    private readonly checkTargets: (target: Tensor, firstRow: number, source?: string) => void,
    /** Exporter-made transposed weights, whose gradients are reported under PyTorch's names (parameter-names.ts). */
    private readonly copies: readonly TransposedCopy[],
    /** Exporter-packed LSTM/GRU/RNN weights, whose gradients are reported as PyTorch's per-direction parameters (recurrent-names.ts). */
    private readonly packings: readonly RecurrentPacking[] = [],
  ) {}

  /** A gradient's dims, with 'batch' on the batch axis of per-example gradients. */
  gradientShape(name: string): readonly Dim[] {
    return this.shapes.get(name)!;
  }

  /** Gradients with a batch axis (inputs, hooks), as opposed to parameters. */
  perExampleNames(): string[] {
    return [...this.names.keys()].filter((name) =>
      String(this.gradientShape(name)[0]).startsWith('batch'),
    );
  }

  /** Builds the forward+backward graph for feeds shaped like `feeds` and targets like `target`. */
  static async build(
    model: Model,
    feeds: Feeds,
    target: Tensor,
    request: GradientRequest,
  ): Promise<GradientProgram> {
    const { lossModel, loss, shapes } = await lossModelWithShapes(
      model,
      feeds,
      target,
      request.loss,
    );
    const names = resolveWrt(model, request.wrt);
    const backward = buildBackward(lossModel.graph, shapes, {
      loss,
      wrt: [...new Set(names.values())],
      threads: sessionThreads(model.options),
    });
    const session = await openSession(
      backward.proto,
      model.options,
      `the gradient graph of '${model.path}'`,
    );
    await lossModel.release();
    const initializerDims = new Map(
      model.proto.graph.initializer.map((t) => [t.name, t.dims.map(toNumber)]),
    );
    const gradientShapes = new Map(
      [...names].map(([name, value]) => [
        name,
        shapes.get(value) ?? initializerDims.get(value) ?? [],
      ]),
    );
    const classes = Number(shapes.get(request.loss.output ?? model.outputNames[0])?.at(-1));
    const checkTargets =
      request.loss.kind === 'cross-entropy' && Number.isInteger(classes)
        ? (batch: Tensor, firstRow: number, source?: string) =>
            checkClassTargets(batch, classes, request.loss.ignoreIndex, firstRow, source)
        : () => undefined;
    const copies = request.wrt.includes('params')
      ? transposedCopies(model.graph, model.hooks.foldings)
      : [];
    const packings = request.wrt.includes('params') ? recurrentPackings(model.graph) : [];
    return new GradientProgram(
      session,
      loss,
      backward.gradientOf,
      names,
      gradientShapes,
      checkTargets,
      copies,
      packings,
    );
  }

  /** `firstRow` and `source`: where `target` starts in which file, for messages about a bad target. */
  async run(feeds: Feeds, target: Tensor, firstRow = 0, source?: string): Promise<GradientResult> {
    this.checkTargets(target, firstRow, source);
    const wanted = [this.loss, ...new Set(this.gradientOf.values())];
    const results = await this.session.run({ ...feeds, [TARGET_INPUT]: target }, wanted);
    const gradients = new Map<string, Tensor>();
    for (const [name, value] of this.names)
      gradients.set(name, results[this.gradientOf.get(value)!]);
    return {
      loss: Number(results[this.loss].data[0]),
      gradients: underRecurrentNames(underPyTorchNames(gradients, this.copies), this.packings),
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * The model with its loss appended (and `transform`ed, e.g. BatchNorm put in training mode), as a
 * Model, with the probed shape of every value: what the walker needs to build a backward graph.
 * The caller releases `lossModel`.
 */
export async function lossModelWithShapes(
  model: Model,
  feeds: Feeds,
  target: Tensor,
  spec: LossSpec,
  transform?: (proto: ModelProto) => Promise<ModelProto>,
) {
  const proto = gradientProto(model.proto); // opset 13–15 models import 17 from here on (autodiff/opset.ts)
  const graph = proto === model.proto ? model.graph : new GraphIndex(proto);
  const outputName = spec.output ?? model.outputNames[0];
  const outputShape = (
    await probeHookShapes(model, modelFeeds(model, feeds), [model.hooks.resolve(outputName)])
  ).get(outputName)!;
  const forwardShapes = spec.sliceEarly
    ? await probeValueShapes(model, modelFeeds(model, feeds))
    : undefined;
  const lossGraph = appendLoss(
    graph,
    spec,
    outputShape,
    forwardShapes && ((value) => forwardShapes.get(value) as Dim[] | undefined),
  );
  if (target.dtype !== lossGraph.targetDtype) {
    throw new InputError(
      `The target has dtype ${target.dtype} but ${spec.kind} needs ${lossGraph.targetDtype}${lossGraph.targetDtype === 'int64' ? ' class indices' : ' values shaped like the output'}: convert it.`,
    );
  }
  const withLoss = transform ? await transform(lossGraph.proto) : lossGraph.proto;
  const lossModel = builtByTeardown(`the loss graph of '${model.path}'`, () =>
    Model.fromProto(withLoss, model.path, model.options),
  );
  const shapes = (await probeValueShapes(lossModel, { ...feeds, [TARGET_INPUT]: target })) as Map<
    string,
    Dim[]
  >;
  return { lossModel, loss: lossGraph.loss, scores: lossGraph.scores, shapes };
}

/** The feeds without the loss's own inputs (target, weights, environments: named `teardown::…`). */
export function modelFeeds(model: Model, feeds: Feeds): Feeds {
  return Object.fromEntries(
    Object.entries(feeds).filter(
      ([name]) =>
        !name.startsWith('teardown::') || model.inputs.some((input) => input.name === name),
    ),
  );
}

export async function computeGradients(
  model: Model,
  feeds: Feeds,
  target: Tensor,
  request: GradientRequest,
): Promise<GradientResult> {
  model.checkFeeds(modelFeeds(model, feeds));
  const program = await GradientProgram.build(model, feeds, target, request);
  try {
    return await program.run(feeds, target);
  } finally {
    await program.release();
  }
}

/** Requested name → the raw value whose gradient it is. */
function resolveWrt(model: Model, wrt: readonly string[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const item of wrt) {
    if (item === 'input') {
      const floats = model.graph.inputs.filter((input) => model.graph.isFloat(input.name));
      if (floats.length === 0)
        throw new InputError(
          `The model has no float input to differentiate with respect to (its inputs are ${model.describeInputs()}): ask for params or hooks.`,
        );
      for (const input of floats) names.set(input.name, input.name);
    } else if (item === 'params') {
      for (const name of parameterNames(model)) names.set(name, name);
    } else {
      for (const hook of model.hooks.match([item])) {
        if (!model.graph.isFloat(hook.value))
          throw new InputError(
            `Hook '${hook.name}' holds ${hook.dtype}: gradients exist only for float values.`,
          );
        names.set(hook.name, hook.value);
      }
    }
  }
  return names;
}
