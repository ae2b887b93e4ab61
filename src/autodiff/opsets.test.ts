/**
 * Gradients at opsets 18–23 (22 and 23 changed only the types ops accept), where ops changed signature: Reduce* take their axes as an input
 * (18), Pad an `axes` input (18), Split `num_outputs` (18), Resize `axes`,
 * `keep_aspect_ratio_policy` and `antialias` (18) and half_pixel_symmetric (19), GroupNormalization
 * per-group (18) then per-channel (21) scale and bias, AveragePool `dilations` (19), Gelu (20).
 * Each model is built with the project's GraphBuilder at every opset from 18 to 23 (or from the
 * opset that introduced the form), read by the rules in that form, and its backward graph is
 * emitted in the form valid there (onnxruntime loads it); the gradients are checked against
 * central finite differences.
 */
import { describe, it } from 'node:test';
import { float, GraphBuilder, int, ints, string as str } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { seededRandom } from '../random.ts';
import { tensor, type DType, type Feeds } from '../tensor.ts';
import { checkAgainstFiniteDifferences } from '../../test/finite-differences.ts';

interface OpsetCase {
  name: string;
  /** The first opset the case's form exists at (18 unless later). */
  since?: number;
  dtype: DType;
  inputDims: number[];
  /** Builds the graph from input x at `opset`; returns the scored output. */
  build: (g: GraphBuilder, x: string, opset: number) => string;
}

const int64s = (g: GraphBuilder, name: string, values: number[]) =>
  g.initializer(name, tensor('int64', [values.length], values));
const floats32 = (g: GraphBuilder, name: string, values: number[]) =>
  g.initializer(name, tensor('float32', [values.length], values));
const parameter = (g: GraphBuilder, name: string, dtype: DType, dims: number[], seed: number) => {
  const random = seededRandom(seed);
  return g.initializer(
    name,
    tensor(
      dtype,
      dims,
      Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => 0.5 + random()),
    ),
  );
};

const REDUCERS = [
  'ReduceMean',
  'ReduceSum',
  'ReduceMax',
  'ReduceMin',
  'ReduceL2',
  'ReduceLogSumExp',
  'ReduceSumSquare',
  'ReduceProd',
];

const CASES: OpsetCase[] = [
  {
    name: 'every Reduce* with its axes as an input, keepdims 0 and 1',
    dtype: 'float64',
    inputDims: [2, 3, 4],
    build: (g, x) => {
      const axes = int64s(g, 'axes', [1]);
      const kept = REDUCERS.map((op) => g.node(op, [x, axes], { keepdims: int(1) }, `/${op}/kept`)); // [2, 1, 4]
      const dropped = REDUCERS.map((op) =>
        g.node(op, [x, axes], { keepdims: int(0) }, `/${op}/dropped`),
      ); // [2, 4]
      const sum = (values: string[], name: string) => g.node('Sum', values, {}, name);
      return g.node('Add', [
        g.node('Squeeze', [sum(kept, '/kept/Sum'), axes]),
        sum(dropped, '/dropped/Sum'),
      ]);
    },
  },
  {
    name: 'ReduceMean with no axes and noop_with_empty_axes (the identity), ReduceMax over every axis',
    dtype: 'float64',
    inputDims: [2, 3],
    build: (g, x) =>
      g.node('Mul', [
        g.node('ReduceMean', [x], { noop_with_empty_axes: int(1) }),
        g.node('ReduceMax', [x], { keepdims: int(0) }),
      ]),
  },
  {
    name: "LpNormalization (its gradient emits ReduceSumSquare in the opset's form), ReduceL1 and ReduceLogSum with axes as an input",
    dtype: 'float64',
    inputDims: [2, 3, 4],
    build: (g, x) => {
      const axes = int64s(g, 'axes', [1]);
      const reduced = g.node('Add', [
        g.node('ReduceL1', [x, axes]),
        g.node('ReduceLogSum', [g.node('Exp', [x]), axes]),
      ]); // [2, 1, 4]
      return g.node('Add', [g.node('LpNormalization', [x], { axis: int(1) }), reduced]);
    },
  },
  {
    name: 'Pad with an axes input',
    dtype: 'float64',
    inputDims: [2, 3, 4],
    build: (g, x) =>
      g.node('Pad', [x, int64s(g, 'pads', [1, 0, 2, 1]), '', int64s(g, 'axes', [1, 2])], {
        mode: str('constant'),
      }),
  },
  {
    name: 'Split by num_outputs',
    dtype: 'float64',
    inputDims: [2, 6],
    build: (g, x) => {
      const [a, b, c] = g.nodeN('Split', [x], { axis: int(1), num_outputs: int(3) }, '/Split', 3);
      return g.node('Concat', [g.node('Mul', [a, b]), c], { axis: int(1) });
    },
  },
  {
    name: "LayerNormalization and InstanceNormalization (their gradients emit ReduceMean in the opset's form)",
    dtype: 'float32',
    inputDims: [2, 3, 4],
    build: (g, x) => {
      const layer = g.node(
        'LayerNormalization',
        [
          x,
          parameter(g, 'ln_scale', 'float32', [4], 1),
          parameter(g, 'ln_bias', 'float32', [4], 2),
        ],
        { axis: int(-1) },
      );
      return g.node(
        'InstanceNormalization',
        [
          layer,
          parameter(g, 'in_scale', 'float32', [3], 3),
          parameter(g, 'in_bias', 'float32', [3], 4),
        ],
        { epsilon: float(1e-3) },
      );
    },
  },
  {
    name: 'GroupNormalization (scale and bias per group before 21, per channel from 21)',
    dtype: 'float32',
    inputDims: [2, 4, 3, 2],
    build: (g, x, opset) => {
      const size = opset >= 21 ? 4 : 2;
      return g.node(
        'GroupNormalization',
        [
          x,
          parameter(g, 'scale', 'float32', [size], 5),
          parameter(g, 'bias', 'float32', [size], 6),
        ],
        { num_groups: int(2), epsilon: float(1e-3) },
      );
    },
  },
  {
    name: 'Resize linear with axes and keep_aspect_ratio_policy not_smaller, sizes',
    dtype: 'float32',
    inputDims: [1, 2, 3, 4],
    build: (g, x) =>
      g.node('Resize', [x, '', '', int64s(g, 'sizes', [5, 5])], {
        mode: str('linear'),
        axes: ints([2, 3]),
        keep_aspect_ratio_policy: str('not_smaller'),
      }),
  },
  {
    name: 'Resize nearest with axes, scales',
    dtype: 'float32',
    inputDims: [1, 2, 3, 4],
    build: (g, x) =>
      g.node('Resize', [x, '', floats32(g, 'scales', [1.5, 0.75])], {
        mode: str('nearest'),
        axes: ints([3, 2]),
      }),
  },
  {
    name: 'Resize linear, half_pixel_symmetric',
    since: 19,
    dtype: 'float32',
    inputDims: [1, 1, 3, 4],
    build: (g, x) =>
      g.node('Resize', [x, '', floats32(g, 'scales', [1, 1, 1.6, 0.7])], {
        mode: str('linear'),
        coordinate_transformation_mode: str('half_pixel_symmetric'),
      }),
  },
  {
    name: 'ScatterElements with reduction max',
    dtype: 'float64',
    inputDims: [3, 4],
    build: (g, x) => {
      const updates = g.initializer(
        'updates',
        tensor('float64', [2, 4], [0.3, -0.2, 0.9, 0.1, -0.5, 0.6, 0.2, 0.4]),
      );
      return g.node(
        'ScatterElements',
        [x, g.initializer('indices', tensor('int64', [2, 4], [0, 2, 1, 2, 0, 0, 1, 2])), updates],
        { axis: int(0), reduction: str('max') },
      );
    },
  },
  {
    name: 'AveragePool with dilations, padded, excluding pads',
    since: 19,
    dtype: 'float32',
    inputDims: [1, 2, 6, 6],
    build: (g, x) =>
      g.node('AveragePool', [x], {
        kernel_shape: ints([2, 2]),
        dilations: ints([2, 2]),
        strides: ints([2, 1]),
        pads: ints([1, 1, 1, 0]),
        count_include_pad: int(0),
      }),
  },
  {
    name: 'Gelu, exact and tanh',
    since: 20,
    dtype: 'float32',
    inputDims: [2, 5],
    build: (g, x) =>
      g.node('Mul', [
        g.node('Gelu', [x]),
        g.node('Gelu', [x], { approximate: str('tanh') }, '/Gelu/tanh'),
      ]),
  },
  {
    name: 'Mish',
    dtype: 'float32',
    inputDims: [2, 5],
    build: (g, x) => g.node('Mish', [x]),
  },
];

const OPSETS = [18, 19, 20, 21, 22, 23];

function buildModel(testCase: OpsetCase, opset: number): { model: Model; feeds: Feeds } {
  const g = new GraphBuilder(`${testCase.name} (opset ${opset})`, opset);
  const x = g.input('x', testCase.dtype, testCase.inputDims);
  g.output(testCase.build(g, x, opset), testCase.dtype);
  const random = seededRandom(7);
  const count = testCase.inputDims.reduce((a, b) => a * b, 1);
  const feeds = {
    x: tensor(
      testCase.dtype,
      testCase.inputDims,
      Array.from({ length: count }, () => 2 * random() - 1),
    ),
  };
  return { model: Model.fromProto(g.build(), g.name, { threads: 1 }), feeds };
}

describe('gradients of models built at opsets 18–23 vs finite differences', () => {
  for (const testCase of CASES) {
    for (const opset of OPSETS.filter((version) => version >= (testCase.since ?? 18))) {
      it(`${testCase.name}, opset ${opset}`, async () => {
        const { model, feeds } = buildModel(testCase, opset);
        try {
          await checkAgainstFiniteDifferences(`${testCase.name}, opset ${opset}`, model, feeds);
        } finally {
          await model.release();
        }
      });
    }
  }
});
