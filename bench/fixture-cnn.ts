/**
 * The gpt fixtures' CNN architecture (test/fixtures/cnn) built with teardown's
 * graph builder for the training benchmark: conv1(1→8)-relu-maxpool, conv2(8→16)-batchnorm-relu-
 * avgpool, flatten, fc(784→32)-sigmoid, head(32→10), initialised as PyTorch does.
 */
import { float, GraphBuilder, int, ints } from '../src/graph/builder.ts';
import type { ModelProto } from '../src/onnx/proto.ts';
import { Initializer } from '../src/train/init.ts';
import { linear } from '../src/train/builders.ts';

export function fixtureCnn(seed: number): ModelProto {
  const init = new Initializer(seed);
  const g = new GraphBuilder('fixture-cnn');
  const conv = (module: string, x: string, inChannels: number, outChannels: number) => {
    const { weight, bias } = init.linear([outChannels, inChannels, 3, 3]);
    return g.node(
      'Conv',
      [x, g.initializer(`${module}.weight`, weight), g.initializer(`${module}.bias`, bias)],
      { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) },
      `/${module}/Conv`,
    );
  };
  let x = g.input('input', 'float32', ['batch', 1, 28, 28]);
  x = g.node(
    'MaxPool',
    [g.node('Relu', [conv('conv1', x, 1, 8)], {}, '/act1/Relu')],
    { kernel_shape: ints([2, 2]), strides: ints([2, 2]) },
    '/pool1/MaxPool',
  );
  const bn = ['weight', 'bias', 'running_mean', 'running_var'].map((name) =>
    g.initializer(
      `bn2.${name}`,
      init.constantTensor([16], name === 'weight' || name === 'running_var' ? 1 : 0),
    ),
  );
  x = g.node(
    'BatchNormalization',
    [conv('conv2', x, 8, 16), ...bn],
    { epsilon: float(1e-5), momentum: float(0.9) },
    '/bn2/BatchNormalization',
  );
  x = g.node(
    'AveragePool',
    [g.node('Relu', [x], {}, '/act2/Relu')],
    { kernel_shape: ints([2, 2]), strides: ints([2, 2]) },
    '/pool2/AveragePool',
  );
  x = g.node(
    'Sigmoid',
    [linear(g, init, 'fc', g.node('Flatten', [x], { axis: int(1) }, '/flatten/Flatten'), 784, 32)],
    {},
    '/act3/Sigmoid',
  );
  g.output(linear(g, init, 'head', x, 32, 10, 'logits'), 'float32');
  return g.build();
}
