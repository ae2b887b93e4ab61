/**
 * An LSTM classifier as ONNX, with PyTorch's parameters (nn.LSTM's `lstm.weight_ih_l0`, ...,
 * `lstm.bias_hh_l1_reverse`) as initializers in PyTorch's layout and gate order (i, f, g, o). Each
 * layer's ONNX LSTM node reads W, R and B packed from them in the graph (gate blocks reordered to
 * ONNX's i, o, f, c, directions stacked), so gradients reach PyTorch's parameters through Split and
 * Concat and a trained model keeps PyTorch's names.
 *
 *   tokens [batch, T] → embed (nn.Embedding) → LSTM layers → head on every position: [batch, T, classes]
 *   image [batch, C, H, W] → rows as steps (C·W features each) → LSTM layers → head on the last states: [batch, classes]
 *
 * nn.LSTM's initialisation: every weight and bias U(−1/√H, 1/√H).
 */
import { GraphBuilder, int, ints } from '../graph/builder.ts';
import { InputError } from '../errors.ts';
import type { BuiltModel, InputShape } from './builders.ts';
import { inputDims } from './builders.ts';
import type { Initializer } from './init.ts';

export interface LstmSpec {
  kind: 'lstm';
  hidden: number;
  layers: number;
  embed: number;
  bidirectional: boolean;
}

/** PyTorch's gate blocks (i, f, g, o) in ONNX's order (i, o, f, c). */
const ONNX_ORDER = [0, 3, 1, 2];

export function buildLstm(
  spec: LstmSpec,
  input: InputShape,
  classes: number,
  init: Initializer,
): BuiltModel {
  if (input.kind === 'features')
    throw new InputError(
      'An lstm needs sequences: token inputs, or images read row by row; this task gives feature vectors.',
    );
  const g = new GraphBuilder('lstm');
  const H = spec.hidden;
  const directions = spec.bidirectional ? 2 : 1;
  const int64s = int64Constants(g);
  const x = g.input('input', input.kind === 'tokens' ? 'int64' : 'float32', inputDims(input));
  let sequence: string; // [T, batch, features]
  let features: number;
  if (input.kind === 'tokens') {
    const embedded = g.node(
      'Gather',
      [g.initializer('embed.weight', init.normalTensor([input.vocab, spec.embed], 1)), x],
      {},
      '/embed/Gather',
    ); // [batch, T, embed]
    sequence = g.node('Transpose', [embedded], { perm: ints([1, 0, 2]) }, '/lstm/Transpose');
    features = spec.embed;
  } else {
    const rows = g.node('Transpose', [x], { perm: ints([2, 0, 1, 3]) }, '/lstm/Transpose'); // [H, batch, C, W]
    sequence = g.node('Reshape', [rows, int64s([0, 0, -1])], {}, '/lstm/Reshape'); // [H, batch, C·W]
    features = input.channels * input.width;
  }
  let lastStates = '';
  for (let layer = 0; layer < spec.layers; layer++) {
    const suffix = layer === 0 ? '' : `_${layer}`;
    // nn.LSTM's parameter `lstm.<kind>_l<layer>[_reverse]`, U(−1/√H, 1/√H), its gate blocks in ONNX's order
    const parameter = (kind: string, reverse: boolean, dims: number[]) =>
      reorderGates(
        g,
        int64s,
        g.initializer(
          `lstm.${kind}_l${layer}${reverse ? '_reverse' : ''}`,
          init.uniformTensor(dims, 1 / Math.sqrt(H)),
        ),
        H,
        `/lstm/${kind}${suffix}`,
      );
    const weightIh = stackDirections(g, int64s, directions, (reverse) =>
      parameter('weight_ih', reverse, [4 * H, features]),
    ); // [dirs, 4H, in]
    const weightHh = stackDirections(g, int64s, directions, (reverse) =>
      parameter('weight_hh', reverse, [4 * H, H]),
    ); // [dirs, 4H, H]
    const bias = stackDirections(g, int64s, directions, (reverse) =>
      g.node(
        'Concat',
        [parameter('bias_ih', reverse, [4 * H]), parameter('bias_hh', reverse, [4 * H])],
        { axis: int(0) },
        `/lstm/bias${suffix}/Concat`,
      ),
    ); // [dirs, 8H]
    const direction = {
      type: 'string' as const,
      value: spec.bidirectional ? 'bidirectional' : 'forward',
    };
    const [y, yh] = g.nodeN(
      'LSTM',
      [sequence, weightIh, weightHh, bias],
      { hidden_size: int(H), direction },
      `/lstm/LSTM${suffix}`,
      2,
    );
    // Y [T, dirs, batch, H] → [T, batch, dirs·H], the next layer's input
    sequence = g.node(
      'Reshape',
      [
        g.node('Transpose', [y], { perm: ints([0, 2, 1, 3]) }, `/lstm/Transpose${suffix}_1`),
        int64s([0, 0, -1]),
      ],
      {},
      `/lstm/Reshape${suffix}_1`,
    );
    features = directions * H;
    lastStates = yh; // [dirs, batch, H]
  }
  const head = init.linear([classes, features]);
  const weight = g.initializer('head.weight', head.weight);
  const biasName = g.initializer('head.bias', head.bias);
  let logits: string;
  if (input.kind === 'tokens') {
    const batchFirst = g.node('Transpose', [sequence], { perm: ints([1, 0, 2]) }, '/Transpose'); // [batch, T, dirs·H]
    const product = g.node(
      'MatMul',
      [batchFirst, g.node('Transpose', [weight], { perm: ints([1, 0]) }, '/head/Transpose')],
      {},
      '/head/MatMul',
    );
    logits = g.node('Add', [biasName, product], {}, '/head/Add', 'logits'); // [batch, T, classes]
  } else {
    const states = g.node(
      'Reshape',
      [g.node('Transpose', [lastStates], { perm: ints([1, 0, 2]) }, '/Transpose'), int64s([0, -1])],
      {},
      '/Reshape',
    ); // [batch, dirs·H]
    logits = g.node('Gemm', [states, weight, biasName], { transB: int(1) }, '/head/Gemm', 'logits'); // [batch, classes]
  }
  g.output(logits, 'float32');
  return { proto: g.build(), inputName: 'input', outputName: logits };
}

type Int64s = (values: number[]) => string;

/** int64 constant initializers, one per distinct value list. */
function int64Constants(g: GraphBuilder): Int64s {
  const made = new Map<string, string>();
  return (values) => {
    const key = values.join(',');
    if (!made.has(key))
      made.set(
        key,
        g.initializer(`lstm_constant_${made.size}`, {
          dtype: 'int64',
          dims: [values.length],
          data: BigInt64Array.from(values, BigInt),
        }),
      );
    return made.get(key)!;
  };
}

/** PyTorch's [4H, ...] gate blocks i, f, g, o reordered to ONNX's i, o, f, c. */
function reorderGates(
  g: GraphBuilder,
  int64s: Int64s,
  value: string,
  H: number,
  scope: string,
): string {
  const blocks = g.nodeN(
    'Split',
    [value, int64s([H, H, H, H])],
    { axis: int(0) },
    `${scope}/Split`,
    4,
  );
  return g.node(
    'Concat',
    ONNX_ORDER.map((k) => blocks[k]),
    { axis: int(0) },
    `${scope}/Concat`,
  );
}

/** One tensor per direction (forward, then reverse), stacked on a new axis 0. */
function stackDirections(
  g: GraphBuilder,
  int64s: Int64s,
  directions: number,
  make: (reverse: boolean) => string,
): string {
  const parts = Array.from({ length: directions }, (_, d) =>
    g.node('Unsqueeze', [make(d === 1), int64s([0])], {}, '/lstm/Unsqueeze'),
  );
  return parts.length === 1 ? parts[0] : g.node('Concat', parts, { axis: int(0) }, '/lstm/Concat');
}
