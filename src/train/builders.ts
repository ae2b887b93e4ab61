/**
 * Builders of teardown's own backprop networks as ONNX forward graphs. Nodes carry the
 * TorchScript exporter's scoped names (`/fc1/Gemm`, `/blocks/blocks.0/mlp/mlp.1/Relu`), so hooks
 * read the same whether PyTorch or teardown built the model; parameters are initializers named as
 * PyTorch names them (`fc1.weight`) and initialised as PyTorch does by default (init.ts).
 */
import { float, GraphBuilder, int, ints } from '../graph/builder.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { InputError } from '../errors.ts';
import type { InputShape } from '../data/tasks.ts';
import { Initializer } from './init.ts';
import type { Activation, ModelSpec } from './model-spec.ts';
import { buildTransformer } from './transformer.ts';
import { buildLstm } from './lstm.ts';

/** The shape of one example, as the data gives it (data/tasks.ts). */
export type { InputShape };

export interface BuiltModel {
  proto: ModelProto;
  inputName: string;
  outputName: string;
}

export function buildModel(
  spec: ModelSpec,
  input: InputShape,
  classes: number,
  seed: number,
): BuiltModel {
  const init = new Initializer(seed);
  switch (spec.kind) {
    case 'mlp':
      return buildMlp(spec.hidden, spec.act, input, classes, init);
    case 'cnn':
      return buildCnn(spec.channels, spec.fc, spec.act, input, classes, init);
    case 'transformer':
      return buildTransformer(spec, input, classes, init);
    case 'lstm':
      return buildLstm(spec, input, classes, init);
  }
}

export function inputDims(input: InputShape): (number | string)[] {
  switch (input.kind) {
    case 'features':
      return ['batch', input.features];
    case 'image':
      return ['batch', input.channels, input.height, input.width];
    case 'tokens':
      return ['batch', input.length];
  }
}

/** nn.Linear as the exporter writes it: Gemm(x, W, b, transB=1). */
export function linear(
  g: GraphBuilder,
  init: Initializer,
  module: string,
  x: string,
  inFeatures: number,
  outFeatures: number,
  outputName?: string,
): string {
  const { weight, bias } = init.linear([outFeatures, inFeatures]);
  return g.node(
    'Gemm',
    [x, g.initializer(`${module}.weight`, weight), g.initializer(`${module}.bias`, bias)],
    { alpha: float(1), beta: float(1), transB: int(1) },
    `/${module}/Gemm`,
    outputName,
  );
}

/** An activation module; GELU is written out as PyTorch's exporter does at opset 17: x·½·(1 + erf(x/√2)). */
export function activation(g: GraphBuilder, module: string, x: string, act: Activation): string {
  const scope = `/${module}`;
  switch (act) {
    case 'relu':
      return g.node('Relu', [x], {}, `${scope}/Relu`);
    case 'tanh':
      return g.node('Tanh', [x], {}, `${scope}/Tanh`);
    case 'sigmoid':
      return g.node('Sigmoid', [x], {}, `${scope}/Sigmoid`);
    case 'gelu': {
      const scalar = (name: string, value: number) =>
        g.node(
          'Constant',
          [],
          {
            value: {
              type: 'tensor',
              value: { dtype: 'float32', dims: [], data: Float32Array.of(value) },
            },
          },
          `${scope}/${name}`,
        );
      const erf = g.node(
        'Erf',
        [g.node('Div', [x, scalar('Constant', Math.SQRT2)], {}, `${scope}/Div`)],
        {},
        `${scope}/Erf`,
      );
      const half = g.node(
        'Mul',
        [
          g.node(
            'Mul',
            [x, g.node('Add', [erf, scalar('Constant_1', 1)], {}, `${scope}/Add`)],
            {},
            `${scope}/Mul`,
          ),
          scalar('Constant_2', 0.5),
        ],
        {},
        `${scope}/Mul_1`,
      );
      return half;
    }
  }
}

function buildMlp(
  hidden: number[],
  act: Activation,
  input: InputShape,
  classes: number,
  init: Initializer,
): BuiltModel {
  if (input.kind === 'tokens')
    throw new InputError(
      'An mlp needs feature or image inputs; token sequences need a transformer.',
    );
  const g = new GraphBuilder('mlp');
  let x = g.input('input', 'float32', inputDims(input));
  let width =
    input.kind === 'features' ? input.features : input.channels * input.height * input.width;
  if (input.kind === 'image') x = g.node('Flatten', [x], { axis: int(1) }, '/flatten/Flatten'); // [batch, c·h·w]
  hidden.forEach((size, layer) => {
    x = activation(g, `act${layer + 1}`, linear(g, init, `fc${layer + 1}`, x, width, size), act); // [batch, size]
    width = size;
  });
  return finish(g, linear(g, init, 'head', x, width, classes, 'logits')); // [batch, classes]
}

/** conv(3×3, pad 1) → act → maxpool(2) per channel count; then flatten → fc → act → head. */
function buildCnn(
  channels: number[],
  fc: number,
  act: Activation,
  input: InputShape,
  classes: number,
  init: Initializer,
): BuiltModel {
  if (input.kind !== 'image')
    throw new InputError(
      `A cnn needs image inputs [channels, height, width]; this task gives ${input.kind}.`,
    );
  const g = new GraphBuilder('cnn');
  let x = g.input('input', 'float32', inputDims(input));
  let [inChannels, height, width] = [input.channels, input.height, input.width];
  channels.forEach((outChannels, layer) => {
    const n = layer + 1;
    const { weight, bias } = init.linear([outChannels, inChannels, 3, 3]);
    x = g.node(
      'Conv',
      [x, g.initializer(`conv${n}.weight`, weight), g.initializer(`conv${n}.bias`, bias)],
      {
        kernel_shape: ints([3, 3]),
        pads: ints([1, 1, 1, 1]),
        strides: ints([1, 1]),
        dilations: ints([1, 1]),
        group: int(1),
      },
      `/conv${n}/Conv`,
    );
    x = activation(g, `act${n}`, x, act); // [batch, out, h, w]
    x = g.node(
      'MaxPool',
      [x],
      {
        kernel_shape: ints([2, 2]),
        strides: ints([2, 2]),
        pads: ints([0, 0, 0, 0]),
        ceil_mode: int(0),
      },
      `/pool${n}/MaxPool`,
    ); // [batch, out, h/2, w/2]
    [inChannels, height, width] = [outChannels, Math.floor(height / 2), Math.floor(width / 2)];
  });
  x = g.node('Flatten', [x], { axis: int(1) }, '/flatten/Flatten'); // [batch, c·h·w]
  const hiddenAct = channels.length + 1;
  x = activation(
    g,
    `act${hiddenAct}`,
    linear(g, init, 'fc', x, inChannels * height * width, fc),
    act,
  );
  return finish(g, linear(g, init, 'head', x, fc, classes, 'logits'));
}

function finish(g: GraphBuilder, logits: string): BuiltModel {
  g.output(logits, 'float32');
  return { proto: g.build(), inputName: 'input', outputName: logits };
}
