/**
 * Backprop networks with planted ground truth: hand-set weights make some hidden units compute
 * known boolean functions of binary inputs — AND, OR, NOT, threshold, and XOR (in a second layer,
 * from an OR and an AND unit) — hidden among distractor units with weak random weights. The label
 * is the majority vote of the planted functions, so each planted unit carries weight and the
 * distractors barely any. Tests measure how well inspect recovers the planted units (importance
 * ranking) and their input dependencies.
 *
 *   input [batch, F] ∈ {0,1} → fc1 → act1 (sigmoid) → fc2 → act2 (sigmoid) → head → logits [batch, 2]
 * A unit computing a boolean function b(x) is sigmoid(k·(w·x − θ)) with k large: ≈ b(x) ∈ {0, 1}.
 */
import { float, GraphBuilder, int } from '../graph/builder.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { seededRandom } from '../random.ts';
import { tensor, type Tensor } from '../tensor.ts';

export type PlantedFunction =
  | { kind: 'and' | 'or' | 'xor'; inputs: [number, number] }
  | { kind: 'not'; inputs: [number] }
  | { kind: 'threshold'; inputs: number[]; atLeast: number };

export interface PlantedUnit {
  hook: 'act1' | 'act2';
  unit: number;
  function: PlantedFunction | { kind: 'and' | 'or'; inputs: [number, number]; helperOf: number };
  /** Input features the unit depends on (ground truth). */
  inputs: number[];
}

export interface PlantedNetwork {
  proto: ModelProto;
  features: number;
  planted: PlantedUnit[];
  /** All 2^F binary inputs [2^F, F] and their labels [2^F]. */
  data: { inputs: Tensor; labels: Tensor };
}

const SHARPNESS = 12; // k: sigmoid(±k/2) is within 0.3% of 0 or 1

export function buildPlantedNetwork(options: {
  features: number;
  functions: PlantedFunction[];
  distractors: number;
  seed: number;
}): PlantedNetwork {
  const { features, functions, distractors, seed } = options;
  if (functions.length % 2 === 0)
    throw new Error(
      'buildPlantedNetwork: an odd number of functions keeps the majority vote free of ties',
    );
  const random = seededRandom(seed);
  const weak = () => 0.1 * (2 * random() - 1);

  // Layer 1 rows: one per non-XOR function, two helpers (OR, AND) per XOR, then distractors; shuffled.
  type Row = {
    weights: number[];
    bias: number;
    planted?: PlantedUnit['function'];
    inputs?: number[];
    vote?: number;
  };
  const layer1: Row[] = [];
  const xorHelpers: { xor: number; or: number; and: number }[] = [];
  const unitRow = (inputs: number[], threshold: number, negate = false): Omit<Row, 'planted'> => {
    const weights = Array(features).fill(0);
    for (const input of inputs) weights[input] = negate ? -SHARPNESS : SHARPNESS;
    return { weights, bias: negate ? SHARPNESS * threshold : -SHARPNESS * threshold, inputs };
  };
  functions.forEach((fn, index) => {
    if (fn.kind === 'and') layer1.push({ ...unitRow(fn.inputs, 1.5), planted: fn, vote: index });
    else if (fn.kind === 'or')
      layer1.push({ ...unitRow(fn.inputs, 0.5), planted: fn, vote: index });
    else if (fn.kind === 'not')
      layer1.push({ ...unitRow(fn.inputs, 0.5, true), planted: fn, vote: index });
    else if (fn.kind === 'threshold')
      layer1.push({ ...unitRow(fn.inputs, fn.atLeast - 0.5), planted: fn, vote: index });
    else {
      xorHelpers.push({ xor: index, or: layer1.length, and: layer1.length + 1 });
      layer1.push({
        ...unitRow(fn.inputs, 0.5),
        planted: { kind: 'or', inputs: fn.inputs, helperOf: index },
      });
      layer1.push({
        ...unitRow(fn.inputs, 1.5),
        planted: { kind: 'and', inputs: fn.inputs, helperOf: index },
      });
    }
  });
  for (let d = 0; d < distractors; d++)
    layer1.push({ weights: Array.from({ length: features }, weak), bias: weak() });
  const order1 = shuffle(layer1.length, random); // order1[position] = row index
  const position1 = new Map(order1.map((row, position) => [row, position]));

  // Layer 2: identity-like carriers of the layer-1 votes are unnecessary: the head reads layer 1 directly for
  // non-XOR votes. Layer 2 holds the XOR units (OR − AND > ½) among distractors.
  const width1 = layer1.length;
  const layer2: { weights: number[]; bias: number; xor?: number }[] = [];
  for (const helper of xorHelpers) {
    const weights = Array(width1).fill(0);
    weights[position1.get(helper.or)!] = SHARPNESS;
    weights[position1.get(helper.and)!] = -SHARPNESS;
    layer2.push({ weights, bias: -0.5 * SHARPNESS, xor: helper.xor });
  }
  for (let d = 0; d < distractors; d++)
    layer2.push({ weights: Array.from({ length: width1 }, weak), bias: weak() });
  const order2 = shuffle(layer2.length, random);

  // Head: logit₁ − logit₀ = Σ_votes 4·(2·unit − 1) + weak distractor terms; logit₀ = 0.
  const width2 = layer2.length;
  const headWeights = Array(2 * (width1 + width2)).fill(0);
  let headBias = 0;
  const vote = (column: number, offset: number) => {
    headWeights[width1 + width2 + offset + column] = 8;
    headBias -= 4;
  };
  order1.forEach((row, position) => {
    if (layer1[row].vote !== undefined) vote(position, 0);
    else if (!layer1[row].planted) headWeights[width1 + width2 + position] = weak();
  });
  order2.forEach((row, position) => {
    if (layer2[row].xor !== undefined) vote(position, width1);
    else headWeights[width1 + width2 + width1 + position] = weak();
  });

  const g = new GraphBuilder('planted');
  const x = g.input('input', 'float32', ['batch', features]);
  const fc1 = matrix(
    order1.map((row) => layer1[row].weights),
    width1,
    features,
  );
  const h1 = g.node(
    'Sigmoid',
    [
      g.node(
        'Gemm',
        [
          x,
          g.initializer('fc1.weight', fc1),
          g.initializer(
            'fc1.bias',
            tensor(
              'float32',
              [width1],
              order1.map((row) => layer1[row].bias),
            ),
          ),
        ],
        { transB: int(1) },
        '/fc1/Gemm',
      ),
    ],
    {},
    '/act1/Sigmoid',
  );
  const fc2 = matrix(
    order2.map((row) => layer2[row].weights),
    width2,
    width1,
  );
  const h2 = g.node(
    'Sigmoid',
    [
      g.node(
        'Gemm',
        [
          h1,
          g.initializer('fc2.weight', fc2),
          g.initializer(
            'fc2.bias',
            tensor(
              'float32',
              [width2],
              order2.map((row) => layer2[row].bias),
            ),
          ),
        ],
        { transB: int(1) },
        '/fc2/Gemm',
      ),
    ],
    {},
    '/act2/Sigmoid',
  );
  const both = g.node('Concat', [h1, h2], { axis: int(1) }, '/head/Concat'); // [batch, width1 + width2]
  const head = tensor('float32', [2, width1 + width2], headWeights);
  g.output(
    g.node(
      'Gemm',
      [
        both,
        g.initializer('head.weight', head),
        g.initializer('head.bias', tensor('float32', [2], [0, headBias])),
      ],
      { transB: int(1), alpha: float(1) },
      '/head/Gemm',
      'logits',
    ),
    'float32',
  );

  const planted: PlantedUnit[] = [];
  order1.forEach((row, position) => {
    const planted1 = layer1[row].planted;
    if (planted1)
      planted.push({
        hook: 'act1',
        unit: position,
        function: planted1,
        inputs: [...layer1[row].inputs!].sort((a, b) => a - b),
      });
  });
  order2.forEach((row, position) => {
    const xor = layer2[row].xor;
    if (xor !== undefined)
      planted.push({
        hook: 'act2',
        unit: position,
        function: functions[xor],
        inputs: [...functions[xor].inputs].sort((a, b) => a - b),
      });
  });
  return { proto: g.build(), features, planted, data: allInputs(features, functions) };
}

/** Every binary input and its label: the majority vote of the planted functions. */
function allInputs(
  features: number,
  functions: PlantedFunction[],
): { inputs: Tensor; labels: Tensor } {
  const count = 2 ** features;
  const bits = (n: number) => Array.from({ length: features }, (_, i) => (n >> i) & 1);
  const evaluate = (fn: PlantedFunction, x: number[]) => {
    const values = fn.inputs.map((i) => x[i]);
    switch (fn.kind) {
      case 'and':
        return values[0] & values[1];
      case 'or':
        return values[0] | values[1];
      case 'xor':
        return values[0] ^ values[1];
      case 'not':
        return 1 - values[0];
      case 'threshold':
        return values.reduce((a, b) => a + b, 0) >= fn.atLeast ? 1 : 0;
    }
  };
  const rows = Array.from({ length: count }, (_, n) => bits(n));
  const labels = rows.map((x) =>
    functions.reduce((sum, fn) => sum + evaluate(fn, x), 0) * 2 > functions.length ? 1 : 0,
  );
  return {
    inputs: tensor('float32', [count, features], rows.flat()),
    labels: tensor('int64', [count], labels),
  };
}

function matrix(rows: number[][], height: number, width: number): Tensor {
  return tensor('float32', [height, width], rows.flat());
}

function shuffle(n: number, random: () => number): number[] {
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
