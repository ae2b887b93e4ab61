/**
 * A trained forward-forward network as one plain ONNX model with the scores of its own
 * prediction: the example with every label embedded at once, each layer run on all of them, and
 * the total goodness per label as the output,
 *   logits[b, c] = Σ_l G_l(x_b with label c) = Σ_l Σ_u h_{l,u}²
 * so softmax(logits) is the classifier's predictProba, and Model, inspect and the audit read its
 * hidden units (`act1` …, [batch, classes, width]: unit u under each embedded label) as they read
 * any network's.
 *
 * The label is embedded as in training (ff.ts embedLabels): the features padded with `classes`
 * zeros, plus scale · one-hot(c) in the padding, for every c at once: [batch, classes, in].
 */
import { GraphBuilder, int, ints } from '../graph/builder.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { tensor } from '../tensor.ts';
import type { LinearLayer, MlpShape } from './mlp.ts';

export function forwardForwardModelProto(
  shape: MlpShape,
  layers: readonly LinearLayer[],
  scale: number,
): ModelProto {
  const g = new GraphBuilder('forward_forward');
  const input = g.input('input', 'float32', ['batch', shape.features]);
  let x = emitEmbeddedLabels(g, input, shape, scale); // [batch, classes, features + classes]
  const lastAxis = { axes: ints([-1]) };
  const epsilon = g.initializer('epsilon', tensor('float32', [], [1e-6]));
  const goodness = layers.map((layer, l) => {
    const module = layer.module;
    const [scope, dims] = [`/${module}`, [layer.outFeatures, layer.inFeatures]];
    const squares = g.node(
      'ReduceSumSquare',
      [x],
      { ...lastAxis, keepdims: int(1) },
      `${scope}/SumSquares`,
    );
    const root = g.node('Sqrt', [squares], {}, `${scope}/Sqrt`);
    const length = g.node('Add', [root, epsilon], {}, `${scope}/Length`); // ‖x‖ + 10⁻⁶ [b, c, 1]
    const normalised = g.node('Div', [x, length], {}, `${scope}/Normalise`); // x̂ [b, c, in]
    const weight = g.initializer(`${module}.weight`, tensor('float32', dims, layer.weight));
    const bias = g.initializer(
      `${module}.bias`,
      tensor('float32', [layer.outFeatures], layer.bias),
    );
    const weightT = g.node('Transpose', [weight], { perm: ints([1, 0]) }, `${scope}/Transpose`);
    const product = g.node('MatMul', [normalised, weightT], {}, `${scope}/MatMul`); // [b, c, out]
    const pre = g.node('Add', [product, bias], {}, `${scope}/Add`);
    const op = shape.act === 'relu' ? 'Relu' : 'Tanh';
    x = g.node(op, [pre], {}, `/act${l + 1}/${op}`); // h [b, c, out]
    // G_l [b, c]: in a scope of its own, so that act<l>'s hook stays h.
    return g.node(
      'ReduceSumSquare',
      [x],
      { ...lastAxis, keepdims: int(0) },
      `/goodness${l + 1}/Sum`,
    );
  });
  g.node('Sum', goodness, {}, '/goodness/Total', 'logits'); // Σ_l G_l [b, c]
  g.output('logits', 'float32', ['batch', shape.classes]);
  return g.build();
}

/**
 * input [batch, features] → [batch, classes, features + classes]: row c is the example with
 * scale · one-hot(c) appended (the padding of zeros plus a constant block).
 */
function emitEmbeddedLabels(g: GraphBuilder, input: string, shape: MlpShape, scale: number) {
  const { features, classes } = shape;
  const width = features + classes;
  const pads = g.initializer('embed.pads', tensor('int64', [4], [0, 0, 0, classes]));
  const padded = g.node('Pad', [input, pads], {}, '/embed/Pad'); // [b, width]
  const axes = g.initializer('embed.axes', tensor('int64', [1], [1]));
  const row = g.node('Unsqueeze', [padded, axes], {}, '/embed/Unsqueeze'); // [b, 1, width]
  const labels = new Float32Array(classes * width);
  for (let c = 0; c < classes; c++) labels[c * width + features + c] = scale;
  const block = g.initializer('embed.labels', tensor('float32', [1, classes, width], labels));
  return g.node('Add', [row, block], {}, '/embed/Add'); // [b, classes, width]
}
