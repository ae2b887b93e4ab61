/**
 * LSTM, GRU and RNN gradients against central finite differences of onnxruntime's own forward
 * pass, in float32 (onnxruntime's CPU build runs these ops in float32 only). Each case is one
 * recurrent node; every float input is differentiated; the loss is MSE of the chosen outputs
 * (flattened and concatenated) against a fixed random target.
 *
 * onnxruntime refuses layout = 1 ("batchwise recurrent operations are not supported"), so those
 * cases run the rule's own nodes (recompute and backward scans, without the forward node) on a
 * given output gradient G, and compare with finite differences of Σ Y·G computed by the same
 * node at layout 0 between Transposes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  float,
  GraphBuilder,
  int,
  ints,
  string as str,
  type AttributeValue,
} from '../graph/builder.ts';
import { AttributeType, type AttributeProto } from '../onnx/proto.ts';
import { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { seededRandom } from '../random.ts';
import { tensor, type Feeds, type Tensor } from '../tensor.ts';
import { computeGradients, GradientProgram } from './gradients.ts';
import { GradContext } from './context.ts';
import { Emitter } from './emitter.ts';
import { RECURRENT_RULES } from './recurrent.ts';
import { codeOfDtype } from '../onnx/tensor-proto.ts';
import { relativeError } from '../tensor.ts';

type Kind = 'LSTM' | 'GRU' | 'RNN';
const GATES: Record<Kind, number> = { LSTM: 4, GRU: 3, RNN: 1 };

export interface RecurrentCase {
  name: string;
  op: Kind;
  direction?: 'forward' | 'reverse' | 'bidirectional';
  steps?: number;
  batch?: number;
  inputSize?: number;
  hidden?: number;
  bias?: boolean;
  initialH?: boolean;
  initialC?: boolean;
  peepholes?: boolean;
  /** Per-example lengths (sequence_lens), else every example runs all steps. */
  lengths?: number[];
  attrs?: Record<string, AttributeValue>;
  /** The `activations` attribute (a list of strings, which GraphBuilder's attribute values do not cover). */
  activations?: string[];
  /** Which outputs are scored (default all the op has). */
  scored?: number[];
}

/** The node's inputs in ONNX order (absent optional inputs as ''), their values, and which are differentiated. */
export function recurrentOperands(testCase: RecurrentCase, layout: 0 | 1 = 0) {
  const { op, steps = 4, batch = 3, inputSize = 2, hidden = 3 } = testCase;
  const dirs = testCase.direction === 'bidirectional' ? 2 : 1;
  const gates = GATES[op];
  const random = seededRandom(7);
  const uniform = (dims: number[], scale = 1) =>
    tensor(
      'float32',
      dims,
      Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => scale * (2 * random() - 1)),
    );
  const batchFirst = layout === 1;
  const slots: ({ name: string; value: Tensor } | undefined)[] = [
    {
      name: 'X',
      value: uniform(batchFirst ? [batch, steps, inputSize] : [steps, batch, inputSize]),
    },
    { name: 'W', value: uniform([dirs, gates * hidden, inputSize], 0.8) },
    { name: 'R', value: uniform([dirs, gates * hidden, hidden], 0.8) },
    testCase.bias ? { name: 'B', value: uniform([dirs, 2 * gates * hidden], 0.5) } : undefined,
    testCase.lengths
      ? { name: 'sequence_lens', value: tensor('int32', [batch], testCase.lengths) }
      : undefined,
    testCase.initialH
      ? {
          name: 'initial_h',
          value: uniform(batchFirst ? [batch, dirs, hidden] : [dirs, batch, hidden]),
        }
      : undefined,
    testCase.initialC
      ? {
          name: 'initial_c',
          value: uniform(batchFirst ? [batch, dirs, hidden] : [dirs, batch, hidden]),
        }
      : undefined,
    testCase.peepholes ? { name: 'P', value: uniform([dirs, 3 * hidden], 0.5) } : undefined,
  ];
  while (slots.length > 0 && !slots.at(-1)) slots.pop();
  const attrs: Record<string, AttributeValue> = {
    hidden_size: int(hidden),
    direction: str(testCase.direction ?? 'forward'),
    ...testCase.attrs,
  };
  return { slots, attrs, outputCount: op === 'LSTM' ? 3 : 2 };
}

/** One recurrent node; float operands are graph inputs, sequence_lens an initializer; the scored outputs flattened and concatenated. */
function buildCase(testCase: RecurrentCase): { model: Model; feeds: Feeds } {
  const { slots, attrs, outputCount } = recurrentOperands(testCase);
  const g = new GraphBuilder(testCase.name, 17);
  const feeds: Feeds = {};
  const inputs = slots.map((slot) => {
    if (!slot) return '';
    if (slot.value.dtype === 'int32') return g.initializer(slot.name, slot.value);
    feeds[slot.name] = slot.value;
    return g.input(slot.name, 'float32', slot.value.dims);
  });
  const outputs = g.nodeN(testCase.op, inputs, attrs, `/rnn/${testCase.op}`, outputCount);
  if (testCase.activations)
    g.nodes.at(-1)!.attribute.push(stringsAttribute('activations', testCase.activations));
  const scored = (testCase.scored ?? [...outputs.keys()]).map((k) =>
    g.node('Reshape', [outputs[k], g.initializer(`flat${k}`, tensor('int64', [1], [-1]))]),
  );
  g.output(scored.length === 1 ? scored[0] : g.node('Concat', scored, { axis: int(0) }), 'float32');
  return { model: Model.fromProto(g.build(), testCase.name, { threads: 1 }), feeds };
}

export function stringsAttribute(name: string, values: string[]): AttributeProto {
  return {
    name,
    type: AttributeType.STRINGS,
    strings: values.map((value) => new TextEncoder().encode(value)),
    floats: [],
    ints: [],
    tensors: [],
    graphs: [],
  } as unknown as AttributeProto;
}

const mse = (output: Tensor, target: Tensor) =>
  Array.from(output.data as Float32Array).reduce(
    (sum, value, k) => sum + (value - Number(target.data[k])) ** 2,
    0,
  ) / output.data.length;

/** max |analytic − numeric| / max |numeric| over every element of `value`. */
async function finiteDifferenceError(
  loss: (changed: Tensor) => Promise<number>,
  value: Tensor,
  analytic: Tensor,
  step: number,
): Promise<number> {
  let worst = 0;
  let scale = 1e-12;
  for (let k = 0; k < value.data.length; k++) {
    const at = (delta: number) => {
      const data = (value.data as Float32Array).slice();
      data[k] += delta;
      return loss({ ...value, data });
    };
    const numeric = ((await at(step)) - (await at(-step))) / (2 * step); // central difference
    worst = Math.max(worst, Math.abs(numeric - Number(analytic.data[k])));
    scale = Math.max(scale, Math.abs(numeric));
  }
  return worst / scale;
}

// float32 forward passes: at a step of 1e-2 the difference quotient's rounding (~1e-7·L/step) and
// truncation (~step²·L''') errors stay near 1e-4 of the gradient (the worst case measured: 1.4e-4).
const STEP = 1e-2;
const TOLERANCE = 1e-3;

async function checkCase(testCase: RecurrentCase): Promise<void> {
  const { model, feeds } = buildCase(testCase);
  try {
    const output = (await runWithCache(model, feeds, [])).outputs[model.outputNames[0]];
    const random = seededRandom(11);
    const target = tensor(
      'float32',
      output.dims,
      Array.from(output.data as Float32Array, () => 2 * random() - 1),
    );
    const { gradients } = await computeGradients(model, feeds, target, {
      loss: { kind: 'mse' },
      wrt: ['input'],
    });
    for (const [name, value] of Object.entries(feeds)) {
      const loss = async (changed: Tensor) =>
        mse(
          (await runWithCache(model, { ...feeds, [name]: changed }, [])).outputs[
            model.outputNames[0]
          ],
          target,
        );
      const error = await finiteDifferenceError(loss, value, gradients.get(name)!, STEP);
      assert.ok(
        error <= TOLERANCE,
        `${testCase.name}: d/d${name} differs from finite differences by ${error.toExponential(2)} (relative), tolerance ${TOLERANCE}`,
      );
    }
  } finally {
    await model.release();
  }
}

const ALL = { bias: true, initialH: true, initialC: true };

const CASES: RecurrentCase[] = [
  { name: 'LSTM forward, bias and initial states, Y, Y_h and Y_c scored', op: 'LSTM', ...ALL },
  { name: 'LSTM forward, unequal sequence_lens', op: 'LSTM', ...ALL, lengths: [4, 2, 3] },
  {
    name: 'LSTM reverse, unequal sequence_lens',
    op: 'LSTM',
    direction: 'reverse',
    ...ALL,
    lengths: [2, 4, 1],
  },
  {
    name: 'LSTM bidirectional, unequal sequence_lens',
    op: 'LSTM',
    direction: 'bidirectional',
    ...ALL,
    lengths: [3, 4, 1],
  },
  {
    name: 'LSTM bidirectional, an empty sequence (onnxruntime: Y_h = Y_c = 0 there)',
    op: 'LSTM',
    direction: 'bidirectional',
    ...ALL,
    lengths: [3, 0, 4],
  },
  {
    name: 'GRU reverse, an empty sequence',
    op: 'GRU',
    direction: 'reverse',
    bias: true,
    initialH: true,
    lengths: [0, 2, 4],
    attrs: { linear_before_reset: int(1) },
  },
  {
    name: 'LSTM bidirectional with peepholes',
    op: 'LSTM',
    direction: 'bidirectional',
    ...ALL,
    peepholes: true,
    lengths: [4, 1, 3],
  },
  {
    name: 'LSTM bidirectional, no bias, zero initial states (defaults)',
    op: 'LSTM',
    direction: 'bidirectional',
  },
  {
    name: "LSTM, Y only (the exporter's use)",
    op: 'LSTM',
    direction: 'bidirectional',
    bias: true,
    scored: [0],
  },
  { name: 'LSTM, Y_h only', op: 'LSTM', ...ALL, scored: [1] },
  { name: 'LSTM, Y_c only', op: 'LSTM', direction: 'reverse', ...ALL, scored: [2] },
  {
    name: 'GRU forward, linear_before_reset 1',
    op: 'GRU',
    bias: true,
    initialH: true,
    attrs: { linear_before_reset: int(1) },
  },
  { name: 'GRU forward, linear_before_reset 0', op: 'GRU', bias: true, initialH: true },
  {
    name: 'GRU bidirectional, linear_before_reset 1, unequal sequence_lens',
    op: 'GRU',
    direction: 'bidirectional',
    bias: true,
    initialH: true,
    lengths: [2, 4, 3],
    attrs: { linear_before_reset: int(1) },
  },
  {
    name: 'GRU reverse, linear_before_reset 0, unequal sequence_lens',
    op: 'GRU',
    direction: 'reverse',
    bias: true,
    initialH: true,
    lengths: [3, 1, 4],
  },
  {
    name: 'GRU bidirectional, linear_before_reset 0, no bias, Y_h only',
    op: 'GRU',
    direction: 'bidirectional',
    initialH: true,
    scored: [1],
  },
  {
    name: 'RNN forward (Tanh), unequal sequence_lens',
    op: 'RNN',
    bias: true,
    initialH: true,
    lengths: [4, 2, 3],
  },
  {
    name: 'RNN bidirectional (Tanh)',
    op: 'RNN',
    direction: 'bidirectional',
    bias: true,
    initialH: true,
  },
  {
    name: 'RNN reverse, Sigmoid',
    op: 'RNN',
    direction: 'reverse',
    bias: true,
    initialH: true,
    lengths: [1, 4, 2],
    activations: ['Sigmoid'],
  },
  {
    name: 'RNN forward, Relu, bidirectional Relu and Tanh',
    op: 'RNN',
    direction: 'bidirectional',
    bias: true,
    initialH: true,
    activations: ['Relu', 'Tanh'],
  },
];

describe('recurrent gradient rules vs finite differences', () => {
  for (const testCase of CASES) it(testCase.name, () => checkCase(testCase));
});

describe('recurrent configurations the rules do not make exact are refused by node and attribute', () => {
  const REFUSED: { testCase: RecurrentCase; message: RegExp }[] = [
    {
      testCase: { name: 'clip', op: 'LSTM', attrs: { clip: float(3) } },
      message: /node '\/rnn\/LSTM' \(LSTM, opset 17\) is not built for clip = 3/,
    },
    {
      testCase: { name: 'input_forget', op: 'LSTM', attrs: { input_forget: int(1) } },
      message:
        /node '\/rnn\/LSTM' \(LSTM, opset 17\) is not built for input_forget = 1: coupled input and forget gates/,
    },
    {
      testCase: { name: 'LSTM activations', op: 'LSTM', activations: ['Sigmoid', 'Relu', 'Tanh'] },
      message:
        /not built for activations = \['Sigmoid', 'Relu', 'Tanh'\]: LSTM gradients cover the default activations \(Sigmoid, Tanh, Tanh per direction\)/,
    },
    {
      testCase: { name: 'GRU activations', op: 'GRU', activations: ['HardSigmoid', 'Tanh'] },
      message: /node '\/rnn\/GRU' \(GRU, opset 17\) is not built for activations/,
    },
    {
      testCase: { name: 'RNN activations', op: 'RNN', activations: ['Elu'] },
      message:
        /node '\/rnn\/RNN' \(RNN, opset 17\) is not built for activations = \['Elu'\]: RNN gradients cover Tanh, Sigmoid, Relu/,
    },
  ];
  for (const { testCase, message } of REFUSED) {
    it(testCase.name, async () => {
      const { model, feeds } = buildCase(testCase);
      try {
        const output = (await runWithCache(model, feeds, [])).outputs[model.outputNames[0]];
        await assert.rejects(
          computeGradients(model, feeds, output, { loss: { kind: 'mse' }, wrt: ['input'] }),
          message,
        );
      } finally {
        await model.release();
      }
    });
  }
});

describe('LSTM/GRU/RNN activations spelled out as their defaults are accepted', () => {
  it('LSTM bidirectional with activations [Sigmoid, Tanh, Tanh] × 2', () =>
    checkCase({
      name: 'explicit defaults',
      op: 'LSTM',
      direction: 'bidirectional',
      bias: true,
      activations: ['Sigmoid', 'Tanh', 'Tanh', 'sigmoid', 'tanh', 'tanh'],
    }));
});

/**
 * The rule's nodes alone for a layout-1 node, as a graph from (operands, output gradients G) to the
 * operands' gradients: the forward node is not in it (onnxruntime cannot run it), the rule recomputes.
 */
function vectorJacobianModel(
  testCase: RecurrentCase,
  slots: ReturnType<typeof recurrentOperands>['slots'],
  attrs: Record<string, AttributeValue>,
  outputDims: number[][],
): Model {
  const g = new GraphBuilder(`${testCase.name} (rule only)`, 17);
  const inputs = slots.map((slot) =>
    !slot
      ? ''
      : slot.value.dtype === 'int32'
        ? g.initializer(slot.name, slot.value)
        : g.input(slot.name, 'float32', slot.value.dims),
  );
  const outputs = outputDims.map((_, k) => `Y${k}`);
  const gradOutputs = outputDims.map((dims, k) => g.input(`dY${k}`, 'float32', dims));
  const g2 = new GraphBuilder('node', 17); // the node, for the rule to read (never run)
  g2.nodeN(
    testCase.op,
    inputs,
    { ...attrs, layout: int(1) },
    `/rnn/${testCase.op}`,
    outputs.length,
    outputs,
  );
  const node = g2.nodes[0];
  const shapes = new Map<string, number[]>(
    slots.flatMap((slot) => (slot ? [[slot.name, slot.value.dims] as [string, number[]]] : [])),
  );
  const types = new Map<string, number>(
    [...inputs, ...gradOutputs]
      .filter(Boolean)
      .map((name) => [name, codeOfDtype(name === 'sequence_lens' ? 'int32' : 'float32')]),
  );
  const emitter = new Emitter(new Set([...inputs, ...gradOutputs, ...outputs, node.name]), types);
  const facts = {
    opset: 17,
    shape: (value: string) => shapes.get(value),
    dtype: (value: string) =>
      value === 'sequence_lens' ? ('int32' as const) : ('float32' as const),
    constant: () => undefined,
  };
  const needs = inputs.map((name) => !!name && name !== 'sequence_lens');
  const context = new GradContext(node, gradOutputs, needs, facts, emitter, () => {
    throw new Error('the rule asked for a forward output');
  });
  const grads = RECURRENT_RULES[testCase.op](context);
  g.nodes.push(...emitter.nodes);
  g.initializers.push(...emitter.initializers);
  needs.forEach((needed, k) => {
    if (needed) g.output(grads[k] as string, 'float32');
  });
  return Model.fromProto(g.build(), testCase.name, { threads: 1 });
}

/** The same node at layout 0 between Transposes: X, initial_h, initial_c and the outputs batch-first. */
function batchFirstModel(
  testCase: RecurrentCase,
  slots: ReturnType<typeof recurrentOperands>['slots'],
  attrs: Record<string, AttributeValue>,
  outputCount: number,
): Model {
  const g = new GraphBuilder(`${testCase.name} (layout 0 between Transposes)`, 17);
  const swap = (value: string) => g.node('Transpose', [value], { perm: ints([1, 0, 2]) });
  const inputs = slots.map((slot, k) => {
    if (!slot) return '';
    if (slot.value.dtype === 'int32') return g.initializer(slot.name, slot.value);
    const input = g.input(slot.name, 'float32', slot.value.dims);
    return k === 0 || k === 5 || k === 6 ? swap(input) : input;
  });
  const outputs = g.nodeN(testCase.op, inputs, attrs, `/rnn/${testCase.op}`, outputCount);
  outputs.forEach((output, k) =>
    g.output(
      k === 0 ? g.node('Transpose', [output], { perm: ints([2, 0, 1, 3]) }) : swap(output),
      'float32',
    ),
  );
  return Model.fromProto(g.build(), testCase.name, { threads: 1 });
}

async function checkBatchFirstCase(testCase: RecurrentCase): Promise<void> {
  const { slots, attrs, outputCount } = recurrentOperands(testCase, 1);
  const reference = batchFirstModel(testCase, slots, attrs, outputCount);
  const feeds: Feeds = Object.fromEntries(
    slots.flatMap((slot) =>
      slot && slot.value.dtype === 'float32' ? [[slot.name, slot.value]] : [],
    ),
  );
  const outputs = Object.values((await runWithCache(reference, feeds, [])).outputs);
  const random = seededRandom(13);
  const gradOutputs = outputs.map((output) =>
    tensor(
      'float32',
      output.dims,
      Array.from(output.data as Float32Array, () => 2 * random() - 1),
    ),
  );
  const rule = vectorJacobianModel(
    testCase,
    slots,
    attrs,
    outputs.map((output) => output.dims),
  );
  try {
    const results = await runWithCache(
      rule,
      { ...feeds, ...Object.fromEntries(gradOutputs.map((value, k) => [`dY${k}`, value])) },
      [],
    );
    const analytic = rule.outputNames.map((name) => results.outputs[name]);
    // L = Σ_k ⟨Y_k, G_k⟩, whose gradient is the vector–Jacobian product the rule computes
    const loss = async (name: string, changed: Tensor) => {
      const changedOutputs = Object.values(
        (await runWithCache(reference, { ...feeds, [name]: changed }, [])).outputs,
      );
      return changedOutputs.reduce(
        (sum, output, k) =>
          sum +
          Array.from(output.data as Float32Array).reduce(
            (total, value, i) => total + value * Number(gradOutputs[k].data[i]),
            0,
          ),
        0,
      );
    };
    const names = Object.keys(feeds);
    for (const [k, name] of names.entries()) {
      const error = await finiteDifferenceError(
        (changed) => loss(name, changed),
        feeds[name],
        analytic[k],
        STEP,
      );
      assert.ok(
        error <= TOLERANCE,
        `${testCase.name}: d/d${name} differs from finite differences by ${error.toExponential(2)} (relative), tolerance ${TOLERANCE}`,
      );
    }
  } finally {
    await rule.release();
    await reference.release();
  }
}

describe('layout 1 (batch-first X, initial states and outputs) vs finite differences of the same node at layout 0 between Transposes', () => {
  const BATCH_FIRST: RecurrentCase[] = [
    {
      name: 'LSTM bidirectional, layout 1, peepholes, unequal sequence_lens',
      op: 'LSTM',
      direction: 'bidirectional',
      ...ALL,
      peepholes: true,
      lengths: [3, 4, 2],
    },
    {
      name: 'GRU reverse, layout 1, linear_before_reset 1',
      op: 'GRU',
      direction: 'reverse',
      bias: true,
      initialH: true,
      attrs: { linear_before_reset: int(1) },
    },
    {
      name: 'RNN bidirectional, layout 1, unequal sequence_lens',
      op: 'RNN',
      direction: 'bidirectional',
      bias: true,
      initialH: true,
      lengths: [1, 4, 3],
    },
  ];
  for (const testCase of BATCH_FIRST) it(testCase.name, () => checkBatchFirstCase(testCase));
});

describe('the sequence length is free at run time', () => {
  it('a gradient program built at 4 steps gives, at 7 steps, the gradients built for 7 steps', async () => {
    const build = (steps: number) => {
      const testCase: RecurrentCase = {
        name: `LSTM bidirectional, ${steps} steps`,
        op: 'LSTM',
        direction: 'bidirectional',
        ...ALL,
        steps,
      };
      const { slots, attrs } = recurrentOperands(testCase);
      const g = new GraphBuilder('free-length', 17);
      const feeds: Feeds = {};
      const inputs = slots.map((slot, k) => {
        if (!slot) return '';
        feeds[slot.name] = slot.value;
        return g.input(
          slot.name,
          'float32',
          k === 0 ? ['steps', ...slot.value.dims.slice(1)] : slot.value.dims,
        );
      });
      const [, hidden] = g.nodeN('LSTM', inputs, attrs, '/rnn/LSTM', 2);
      g.output(hidden, 'float32');
      return { model: Model.fromProto(g.build(), 'free-length', { threads: 1 }), feeds };
    };
    const short = build(4);
    const long = build(7);
    const target = tensor(
      'float32',
      [2, 3, 3],
      Array.from({ length: 18 }, (_, k) => Math.sin(k)),
    );
    const program = await GradientProgram.build(short.model, short.feeds, target, {
      loss: { kind: 'mse' },
      wrt: ['input'],
    });
    try {
      const fromShort = (await program.run(long.feeds, target)).gradients;
      const direct = (
        await computeGradients(long.model, long.feeds, target, {
          loss: { kind: 'mse' },
          wrt: ['input'],
        })
      ).gradients;
      assert.deepEqual(fromShort.get('X')!.dims, [7, 3, 2]);
      for (const [name, value] of direct)
        assert.ok(relativeError(fromShort.get(name)!, value) <= 1e-6, `d/d${name}`);
    } finally {
      await program.release();
      await short.model.release();
      await long.model.release();
    }
  });
});

describe('the spec check', () => {
  it('looks inside Scan bodies: an op gradients may not emit is refused there too', async () => {
    const { checkGradientGraph } = await import('./spec.ts');
    const body = new GraphBuilder('body', 17);
    const state = body.input('state', 'float32', [2]);
    body.output(body.node('LpNormalization', [state], {}, '/body/LpNormalization'), 'float32');
    const g = new GraphBuilder('outer', 17);
    const initial = g.input('initial', 'float32', [2]);
    const [scan] = g.nodeN(
      'Scan',
      [initial],
      { body: { type: 'graph', value: body.build().graph }, num_scan_inputs: int(0) },
      '/grad/Scan',
      1,
    );
    g.output(scan, 'float32');
    assert.throws(
      () => checkGradientGraph(g.build(), g.nodes),
      /gradient node '\/body\/LpNormalization' uses 'LpNormalization', which is not in the standard ai\.onnx ops/,
    );
  });
});
