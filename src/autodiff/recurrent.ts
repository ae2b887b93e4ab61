/**
 * Gradient rules for ONNX's recurrent ops LSTM, GRU and RNN: X, W, R, B, initial_h, initial_c and
 * the LSTM peepholes P, from the gradients of any of Y, Y_h, Y_c; directions forward, reverse and
 * bidirectional; sequence_lens; layout 0 and 1; GRU's linear_before_reset 0 and 1.
 *
 * Per direction, with the sequence length free at run time:
 *   1. xw = X·Wᵀ + Wb (+ Rb for LSTM and RNN) for all steps at once: one MatMul, [T, batch, gates·H];
 *   2. a forward Scan recomputes the recurrence (recurrent-cells.ts) and emits, aligned with time,
 *      each step's states before the step and its gate activations;
 *   3. a backward Scan runs the other way in time, carrying dh and dc, and emits each step's
 *      gradients of the gate pre-activations dGatesW (w.r.t. xw) and dGatesR (w.r.t. h·Rᵀ + Rb);
 *   4. outside: dX = Σ_dirs dGatesW·W, dW = Σ_{t,b} dGatesWᵀ·X, dR = Σ_{t,b} dGatesRᵀ·h_prev,
 *      dB = [Σ dGatesW | Σ dGatesR], dh0 and dc0 the backward scan's final states.
 * The reverse direction runs its forward scan from the last step to the first
 * (scan_input_directions = 1) and its backward scan the other way.
 *
 * sequence_lens, as onnxruntime runs it: steps t ≥ len(b) of example b leave its state as it was
 * and write zeros to Y, so Y_h is the state after its last valid step (in the reverse direction,
 * the state after step 0, its first update at step len(b) − 1); an empty sequence (len(b) = 0) gets
 * Y_h = Y_c = 0, not its initial state. With the mask m = [t < len(b)]:
 *   state' = state + m⊙(cell(state) − state),  Yₜ = m⊙cell(state)
 *   backward: the cell sees gH = m⊙(dYₜ + dh), gC = m⊙dc; dh_prev = cell's dh + (1 − m)⊙dh.
 */
import { graph, int, ints } from '../graph/builder.ts';
import { codeOfDtype } from '../onnx/tensor-proto.ts';
import { DataType } from '../onnx/proto.ts';
import { tensor } from '../tensor.ts';
import type { Grad, GradContext } from './context.ts';
import { ScanBody } from './recurrent-body.ts';
import {
  gruCell,
  lstmCell,
  rnnCell,
  type Cell,
  type CellWeights,
  type StepConstants,
} from './recurrent-cells.ts';
import {
  readRecurrentConfig,
  type RecurrentConfig,
  type RecurrentKind,
} from './recurrent-config.ts';

/** Values shared by both directions, time-major (layout 0). */
interface Shared {
  x: string; // [T, batch, in]
  xRows: string; // [T·batch, in]
  mask?: string; // [T, batch, 1]
  nonEmpty?: string; // [batch, 1]: [sequence_lens[b] > 0]
  initialH?: string; // [dirs, batch, H]
  initialC?: string;
  gradY?: string; // [T, dirs, batch, H]
  gradYh?: string; // [dirs, batch, H]
  gradYc?: string;
  zeros: () => string; // [batch, H]
  constants: StepConstants;
}

interface DirectionGradients {
  dX?: string;
  dW?: string;
  dR?: string;
  dB?: string;
  dH0?: string;
  dC0?: string;
  dP?: string;
}

export function recurrentRule(kind: RecurrentKind) {
  return (c: GradContext): Grad[] => {
    const config = readRecurrentConfig(c, kind);
    const shared = sharedValues(c, config);
    const perDirection = config.directions.map((reverse, d) =>
      directionGradients(c, config, shared, d, reverse),
    );
    const stack = (pick: (g: DirectionGradients) => string | undefined) => {
      const parts = perDirection.map((g) => c.unsqueeze(pick(g)!, [0]));
      return parts.length === 1 ? parts[0] : c.op('Concat', parts, { axis: int(0) });
    };
    const batchFirst = (value: string, perm: number[]) =>
      config.layout === 1 ? c.op('Transpose', [value], { perm: ints(perm) }) : value;
    let dX: string | undefined;
    if (c.needs(0)) {
      const sum =
        perDirection.length === 1
          ? perDirection[0].dX!
          : c.add(perDirection[0].dX!, perDirection[1].dX!); // [T, batch, in]
      dX = batchFirst(sum, [1, 0, 2]);
    }
    return [
      dX,
      c.needs(1) ? stack((g) => g.dW) : undefined,
      c.needs(2) ? stack((g) => g.dR) : undefined,
      c.needs(3) ? stack((g) => g.dB) : undefined,
      undefined, // sequence_lens
      c.needs(5)
        ? batchFirst(
            stack((g) => g.dH0),
            [1, 0, 2],
          )
        : undefined,
      c.needs(6) && kind === 'LSTM'
        ? batchFirst(
            stack((g) => g.dC0),
            [1, 0, 2],
          )
        : undefined,
      c.needs(7) && kind === 'LSTM' ? stack((g) => g.dP) : undefined,
    ];
  };
}

function sharedValues(c: GradContext, config: RecurrentConfig): Shared {
  const like = c.x(0);
  const dtype = c.dtype(like);
  const timeMajor = (value: string | undefined, perm: number[]) =>
    value && config.layout === 1
      ? c.op('Transpose', [value], { perm: ints(perm) })
      : value || undefined;
  const x = timeMajor(c.x(0), [1, 0, 2])!;
  let zeros: string | undefined;
  return {
    x,
    xRows: c.op('Reshape', [x, c.int64s([-1, config.inputSize])]),
    mask: c.x(4) ? stepMask(c, x, c.x(4)) : undefined,
    nonEmpty: c.x(4)
      ? c.unsqueeze(
          c.op(
            'Cast',
            [c.op('Greater', [c.op('Cast', [c.x(4)], { to: int(DataType.INT64) }), c.int64(0)])],
            { to: int(codeOfDtype(dtype)) },
          ),
          [1],
        )
      : undefined,
    initialH: timeMajor(c.x(5), [1, 0, 2]),
    initialC: config.kind === 'LSTM' ? timeMajor(c.x(6), [1, 0, 2]) : undefined,
    gradY: timeMajor(c.dy(0), [1, 2, 0, 3]),
    gradYh: timeMajor(c.dy(1), [1, 0, 2]),
    gradYc: config.kind === 'LSTM' ? timeMajor(c.dy(2), [1, 0, 2]) : undefined,
    zeros: () => {
      if (zeros) return zeros;
      const batch = c.op('Slice', [c.op('Shape', [x]), c.int64s([1]), c.int64s([2])]); // [1]
      zeros = c.op(
        'ConstantOfShape',
        [c.op('Concat', [batch, c.int64s([config.hidden])], { axis: int(0) })],
        { value: { type: 'tensor', value: tensor(dtype, [1], [0]) } },
      );
      return zeros;
    },
    constants: {
      zero: c.scalar(0, like),
      one: c.scalar(1, like),
      blocks: (...counts) => c.int64s(counts.map((count) => count * config.hidden)),
    },
  };
}

/** m [T, batch, 1] = [t < sequence_lens[b]] in X's float type. */
function stepMask(c: GradContext, x: string, lengths: string): string {
  const steps = c.op('Range', [
    c.int64(0),
    c.op('Gather', [c.op('Shape', [x]), c.int64(0)], { axis: int(0) }),
    c.int64(1),
  ]); // [T]
  const valid = c.op('Less', [
    c.unsqueeze(steps, [1]),
    c.unsqueeze(c.op('Cast', [lengths], { to: int(DataType.INT64) }), [0]),
  ]); // [T, batch]
  return c.unsqueeze(c.op('Cast', [valid], { to: int(codeOfDtype(c.dtype(x))) }), [2]);
}

function makeCell(
  config: RecurrentConfig,
  weights: CellWeights,
  constants: StepConstants,
  direction: number,
): Cell {
  if (config.kind === 'LSTM') return lstmCell(weights, constants);
  if (config.kind === 'GRU') return gruCell(weights, constants, config.linearBeforeReset);
  return rnnCell(weights, constants, config.rnnActivations[direction]);
}

/**
 * This direction's input projection xw = X·Wᵀ + Wb [T, batch, gates·H] and its cell. LSTM and RNN
 * add Rb to every gate's pre-activation as they add Wb, so Rb joins xw; GRU's h gate scales
 * h·Rhᵀ + Rbh by r (linear_before_reset) or adds Rbh after (r⊙h)·Rhᵀ, so its cell adds Rb inside.
 */
function projectInputs(
  c: GradContext,
  config: RecurrentConfig,
  shared: Shared,
  pick: (value: string) => string,
  direction: number,
) {
  const gatesH = config.gates * config.hidden;
  const W = pick(c.x(1)); // [gates·H, in]
  const R = pick(c.x(2)); // [gates·H, H]
  let xw = c.op('MatMul', [shared.x, c.op('Transpose', [W], { perm: ints([1, 0]) })]); // [T, batch, gates·H]
  let recurrenceBias: string | undefined;
  const biasInside = config.kind === 'GRU';
  if (c.x(3)) {
    const [inputBias, recurrentBias] = c.opN(
      'Split',
      [pick(c.x(3)), c.int64s([gatesH, gatesH])],
      { axis: int(0) },
      2,
    ); // Wb, Rb [gates·H]
    xw = c.add(xw, biasInside ? inputBias : c.add(inputBias, recurrentBias));
    if (biasInside) recurrenceBias = recurrentBias;
  }
  const peepholes = config.kind === 'LSTM' && c.x(7) ? pick(c.x(7)) : undefined; // [3H]
  const weights = {
    hidden: config.hidden,
    recurrence: R,
    recurrenceT: c.op('Transpose', [R], { perm: ints([1, 0]) }),
    recurrenceBias,
    peepholes,
  };
  return { W, xw, peepholes, cell: makeCell(config, weights, shared.constants, direction) };
}

function directionGradients(
  c: GradContext,
  config: RecurrentConfig,
  shared: Shared,
  d: number,
  reverse: boolean,
): DirectionGradients {
  const H = config.hidden;
  const gatesH = config.gates * H;
  const pick = (value: string, axis = 0) =>
    c.op('Gather', [value, c.int64(d)], { axis: int(axis) });
  const { W, xw, peepholes, cell } = projectInputs(c, config, shared, pick, d);
  const h0 = shared.initialH ? pick(shared.initialH) : shared.zeros(); // [batch, H]
  const c0 = cell.hasCellState
    ? shared.initialC
      ? pick(shared.initialC)
      : shared.zeros()
    : undefined;
  const prefix = `${c.node.name || c.node.opType}/grad/${reverse ? 'reverse' : 'forward'}_${d}`;
  const forward = forwardScan(c, cell, `${prefix}/recompute`, {
    h0,
    c0,
    xw,
    mask: shared.mask,
    reverse,
  });
  const backward = backwardScan(c, cell, `${prefix}/backward`, forward, {
    gradY: shared.gradY && pick(shared.gradY, 1),
    gradH: shared.gradYh
      ? finalStateGradient(c, pick(shared.gradYh), shared.nonEmpty)
      : shared.zeros(),
    gradC: cell.hasCellState
      ? shared.gradYc
        ? finalStateGradient(c, pick(shared.gradYc), shared.nonEmpty)
        : shared.zeros()
      : undefined,
    mask: shared.mask,
    reverse,
  });

  const rows = (value: string, width: number) => c.op('Reshape', [value, c.int64s([-1, width])]); // [T·batch, width]
  const gatesW = rows(backward.dGatesW, gatesH);
  const gatesR = backward.dGatesR === backward.dGatesW ? gatesW : rows(backward.dGatesR, gatesH);
  const outer = (a: string, b: string) => c.op('Gemm', [a, b], { transA: int(1) }); // Σ_rows aᵀ·b
  const columnSums = (value: string) => c.reduceSum(value, [0], false);
  const result: DirectionGradients = {};
  if (c.needs(0)) result.dX = c.op('MatMul', [backward.dGatesW, W]); // [T, batch, in]
  if (c.needs(1)) result.dW = outer(gatesW, shared.xRows); // [gates·H, in]
  if (c.needs(2))
    result.dR = recurrenceGradient(
      c,
      cell,
      gatesR,
      rows(forward.hPrev, H),
      forward.saved.map((value) => rows(value, H)),
      H,
    );
  if (c.needs(3))
    result.dB = c.op('Concat', [columnSums(gatesW), columnSums(gatesR)], { axis: int(0) }); // [2·gates·H]
  if (c.needs(5)) result.dH0 = backward.dH0;
  if (c.needs(6)) result.dC0 = backward.dC0;
  if (c.needs(7) && peepholes) {
    // dPi = Σ da_i⊙c_prev, dPo = Σ da_o⊙c', dPf = Σ da_f⊙c_prev (order i, o, f)
    const [dai, dao, daf] = c.opN('Split', [gatesW, c.int64s([H, H, H, H])], { axis: int(1) }, 4);
    const cPrev = rows(forward.cPrev!, H);
    const cNext = rows(forward.saved[4], H);
    result.dP = c.op(
      'Concat',
      [columnSums(c.mul(dai, cPrev)), columnSums(c.mul(dao, cNext)), columnSums(c.mul(daf, cPrev))],
      { axis: int(0) },
    );
  }
  return result;
}

/** The gradient of Y_h (Y_c) as the backward scan's initial dh (dc): none for empty sequences, whose Y_h onnxruntime sets to 0. */
function finalStateGradient(c: GradContext, grad: string, nonEmpty: string | undefined): string {
  return nonEmpty ? c.mul(grad, nonEmpty) : grad;
}

/** dR = Σ dGatesRᵀ·h_prev, except GRU without linear_before_reset, whose h block multiplies r⊙h_prev. */
function recurrenceGradient(
  c: GradContext,
  cell: Cell,
  gatesR: string,
  hPrevRows: string,
  savedRows: string[],
  H: number,
): string {
  const outer = (a: string, b: string) => c.op('Gemm', [a, b], { transA: int(1) });
  if (cell.hBlockRecurrentInput === undefined) return outer(gatesR, hPrevRows);
  const [zr, h] = c.opN('Split', [gatesR, c.int64s([2 * H, H])], { axis: int(1) }, 2);
  return c.op('Concat', [outer(zr, hPrevRows), outer(h, savedRows[cell.hBlockRecurrentInput])], {
    axis: int(0),
  }); // [3H, H]
}

interface ForwardScan {
  hPrev: string;
  cPrev?: string;
  saved: string[];
}

/** Recomputes the recurrence; per step (aligned with time): the states before the step and the saved gate values. */
function forwardScan(
  c: GradContext,
  cell: Cell,
  prefix: string,
  inputs: { h0: string; c0?: string; xw: string; mask?: string; reverse: boolean },
): ForwardScan {
  const body = new ScanBody(prefix, c.dtype(c.x(0)));
  const h = body.input('h');
  const cellState = cell.hasCellState ? body.input('c') : undefined;
  const xw = body.input('xw');
  const mask = inputs.mask ? body.input('mask') : undefined;
  const step = cell.forward(body, xw, h, cellState);
  const hold = (before: string, after: string) =>
    mask ? body.add(before, body.mul(mask, body.sub(after, before))) : after; // s + m⊙(s' − s)
  body.output(hold(h, step.h));
  if (cellState) body.output(hold(cellState, step.c!));
  const perStep = [h, ...(cellState ? [cellState] : []), ...step.saved];
  for (const value of perStep) body.output(value);
  const states = cellState ? 2 : 1;
  const outputs = scan(
    c,
    body,
    [
      inputs.h0,
      ...(inputs.c0 ? [inputs.c0] : []),
      inputs.xw,
      ...(inputs.mask ? [inputs.mask] : []),
    ],
    states,
    perStep.length,
    inputs.reverse,
  );
  const each = outputs.slice(states);
  return { hPrev: each[0], cPrev: cellState ? each[1] : undefined, saved: each.slice(states) };
}

interface BackwardScan {
  dH0: string;
  dC0?: string;
  dGatesW: string;
  dGatesR: string;
}

/** Runs the steps the other way, carrying dh (and dc); per step: dGatesW and dGatesR. */
function backwardScan(
  c: GradContext,
  cell: Cell,
  prefix: string,
  forward: ForwardScan,
  inputs: { gradY?: string; gradH: string; gradC?: string; mask?: string; reverse: boolean },
): BackwardScan {
  const body = new ScanBody(prefix, c.dtype(c.x(0)));
  const dh = body.input('dh');
  const dc = inputs.gradC ? body.input('dc') : undefined;
  const saved = forward.saved.map(() => body.input('saved'));
  const hPrev = body.input('h_prev');
  const cPrev = forward.cPrev ? body.input('c_prev') : undefined;
  const gradY = inputs.gradY ? body.input('dY') : undefined;
  const mask = inputs.mask ? body.input('mask') : undefined;
  const masked = (value: string) => (mask ? body.mul(mask, value) : value);
  const gradH = masked(gradY ? body.add(gradY, dh) : dh);
  const step = cell.backward(body, saved, hPrev, cPrev, gradH, dc && masked(dc));
  const unmasked = mask && body.sub(c.scalar(1, c.x(0)), mask);
  const passOn = (stepGrad: string, carried: string) =>
    unmasked ? body.add(stepGrad, body.mul(unmasked, carried)) : stepGrad; // + (1 − m)⊙carried
  body.output(passOn(step.dh, dh));
  if (dc) body.output(passOn(step.dc!, dc));
  const distinctR = step.dGatesR !== step.dGatesW;
  body.output(step.dGatesW);
  if (distinctR) body.output(step.dGatesR);
  const states = dc ? 2 : 1;
  const scanInputs = [
    ...forward.saved,
    forward.hPrev,
    ...(forward.cPrev ? [forward.cPrev] : []),
    ...(inputs.gradY ? [inputs.gradY] : []),
    ...(inputs.mask ? [inputs.mask] : []),
  ];
  const outputs = scan(
    c,
    body,
    [inputs.gradH, ...(inputs.gradC ? [inputs.gradC] : []), ...scanInputs],
    states,
    distinctR ? 2 : 1,
    !inputs.reverse,
  );
  return {
    dH0: outputs[0],
    dC0: dc ? outputs[1] : undefined,
    dGatesW: outputs[states],
    dGatesR: outputs[distinctR ? states + 1 : states],
  };
}

/** A Scan over axis 0 of its scan inputs, last step first when `reverse`; per-step outputs stay aligned with time. */
function scan(
  c: GradContext,
  body: ScanBody,
  inputs: string[],
  states: number,
  scanOutputs: number,
  reverse: boolean,
): string[] {
  const scanInputs = inputs.length - states;
  const direction = reverse ? 1 : 0;
  return c.opN(
    'Scan',
    inputs,
    {
      body: graph(body.build()),
      num_scan_inputs: int(scanInputs),
      scan_input_directions: ints(Array(scanInputs).fill(direction)),
      scan_output_directions: ints(Array(scanOutputs).fill(direction)),
    },
    states + scanOutputs,
  );
}

/** The rows of the rule table. */
export const RECURRENT_RULES = {
  LSTM: recurrentRule('LSTM'),
  GRU: recurrentRule('GRU'),
  RNN: recurrentRule('RNN'),
};
