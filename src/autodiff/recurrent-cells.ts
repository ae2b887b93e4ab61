/**
 * One time step of ONNX's LSTM, GRU and RNN cells, forward and backward, as Scan body ops.
 *
 * Notation (ONNX): xw = Xₜ·Wᵀ + Wb, the input projection computed for all steps at once outside
 * the scan, [batch, gates·H]; h, c the states before the step; R [gates·H, H], Rb [gates·H] the
 * recurrence weight and bias; σ the logistic function. Gate blocks are stacked in ONNX order:
 * LSTM i, o, f, c; GRU z, r, h; RNN one block. A backward step gets gH and gC, the gradients of
 * the loss with respect to the step's new h and c, and returns dh, dc (with respect to the states
 * before the step) and the gradients of the gate pre-activations:
 *   dGatesW with respect to the input projection xw, from which dX, dW and dWb follow outside;
 *   dGatesR with respect to the recurrence term h·Rᵀ + Rb (the same as dGatesW except for GRU with
 *   linear_before_reset = 1, where r scales it), from which dR and dRb follow.
 */
import { DataType } from '../onnx/proto.ts';
import type { ScanBody } from './recurrent-body.ts';

export interface CellWeights {
  hidden: number;
  /** R of this direction, [gates·H, H]. */
  recurrence: string;
  /** Rᵀ, [H, gates·H]. */
  recurrenceT: string;
  /** Rb [gates·H], when the cell adds it inside the step (GRU); LSTM and RNN add it to xw outside. */
  recurrenceBias?: string;
  /** LSTM peepholes P = [Pi, Po, Pf] of this direction, [3H]. */
  peepholes?: string;
}

/** Outer-graph constants a step reads: 0 and 1 in the cell's float type, and split sizes. */
export interface StepConstants {
  zero: string;
  one: string;
  /** int64 split sizes [n₁·H, n₂·H, ...] for blocks of n₁, n₂, ... gates. */
  blocks(...gateCounts: number[]): string;
}

export interface ForwardStep {
  h: string;
  c?: string;
  saved: string[];
}
export interface BackwardStep {
  dh: string;
  dc?: string;
  dGatesW: string;
  dGatesR: string;
}

export interface Cell {
  hasCellState: boolean;
  forward(body: ScanBody, xw: string, h: string, c?: string): ForwardStep;
  backward(
    body: ScanBody,
    saved: string[],
    hPrev: string,
    cPrev: string | undefined,
    gradH: string,
    gradC?: string,
  ): BackwardStep;
  /**
   * When dR is not Σₜ dGatesRᵀ·hPrev (GRU without linear_before_reset, whose h block multiplies
   * r⊙hPrev): which saved value (by index) is the h block's recurrent input instead.
   */
  hBlockRecurrentInput?: number;
}

/** σ'(a) from s = σ(a): s·(1 − s). */
const sigmoidSlope = (b: ScanBody, k: StepConstants, s: string) => b.mul(s, b.sub(k.one, s));
/** tanh'(a) from t = tanh(a): 1 − t². */
const tanhSlope = (b: ScanBody, k: StepConstants, t: string) => b.sub(k.one, b.mul(t, t));
/** Splits `value` along `axis` into blocks of the given gate counts. */
const split = (b: ScanBody, k: StepConstants, value: string, gateCounts: number[], axis = 1) =>
  b.opN(
    'Split',
    [value, k.blocks(...gateCounts)],
    { axis: { type: 'int', value: axis } },
    gateCounts.length,
  );
const concat = (b: ScanBody, values: string[]) =>
  b.op('Concat', values, { axis: { type: 'int', value: 1 } });

/**
 * LSTM (ONNX, default activations σ, tanh, tanh; optional peepholes P):
 *   i = σ(a_i + Pi⊙c),  f = σ(a_f + Pf⊙c),  g = tanh(a_c),  c' = f⊙c + i⊙g,
 *   o = σ(a_o + Po⊙c'),  h' = o⊙tanh(c'),  where a = xw + h·Rᵀ (Rb folded into xw).
 * Backward, with τ = tanh(c'):
 *   da_o = gH⊙τ⊙σ'(o);  dc' = gC + gH⊙o⊙(1 − τ²) + da_o⊙Po
 *   da_i = dc'⊙g⊙σ'(i);  da_f = dc'⊙c⊙σ'(f);  da_c = dc'⊙i⊙(1 − g²)
 *   dc = dc'⊙f + da_i⊙Pi + da_f⊙Pf;  dh = [da_i, da_o, da_f, da_c]·R
 */
export function lstmCell(weights: CellWeights, k: StepConstants): Cell {
  return {
    hasCellState: true,
    forward(b, xw, h, c) {
      const [ai, ao, af, ac] = split(
        b,
        k,
        b.add(xw, b.op('MatMul', [h, weights.recurrenceT])),
        [1, 1, 1, 1],
      ); // each [batch, H]
      const p = weights.peepholes ? peepholeBlocks(b, k, weights.peepholes) : undefined;
      const i = b.op('Sigmoid', [p ? b.add(ai, b.mul(p.i, c!)) : ai]);
      const f = b.op('Sigmoid', [p ? b.add(af, b.mul(p.f, c!)) : af]);
      const g = b.op('Tanh', [ac]);
      const cNext = b.add(b.mul(f, c!), b.mul(i, g));
      const o = b.op('Sigmoid', [p ? b.add(ao, b.mul(p.o, cNext)) : ao]);
      const tanhC = b.op('Tanh', [cNext]);
      return { h: b.mul(o, tanhC), c: cNext, saved: [i, o, f, g, cNext, tanhC] };
    },
    backward(b, [i, o, f, g, , tanhC], _hPrev, cPrev, gradH, gradC) {
      const p = weights.peepholes ? peepholeBlocks(b, k, weights.peepholes) : undefined;
      const dao = b.mul(b.mul(gradH, tanhC), sigmoidSlope(b, k, o));
      let dcNext = b.add(gradC!, b.mul(b.mul(gradH, o), tanhSlope(b, k, tanhC)));
      if (p) dcNext = b.add(dcNext, b.mul(dao, p.o));
      const dai = b.mul(b.mul(dcNext, g), sigmoidSlope(b, k, i));
      const daf = b.mul(b.mul(dcNext, cPrev!), sigmoidSlope(b, k, f));
      const dac = b.mul(b.mul(dcNext, i), tanhSlope(b, k, g));
      let dc = b.mul(dcNext, f);
      if (p) dc = b.add(dc, b.add(b.mul(dai, p.i), b.mul(daf, p.f)));
      const dGates = concat(b, [dai, dao, daf, dac]); // [batch, 4H]
      return {
        dh: b.op('MatMul', [dGates, weights.recurrence]),
        dc,
        dGatesW: dGates,
        dGatesR: dGates,
      };
    },
  };
}

function peepholeBlocks(b: ScanBody, k: StepConstants, peepholes: string) {
  const [i, o, f] = split(b, k, peepholes, [1, 1, 1], 0); // each [H]
  return { i, o, f };
}

/**
 * GRU (ONNX, default activations σ, tanh), a = xw (input part) and h·Rᵀ + Rb (recurrent part):
 *   z = σ(xw_z + h·Rzᵀ + Rbz),  r = σ(xw_r + h·Rrᵀ + Rbr)
 *   linear_before_reset = 1:  q = h·Rhᵀ + Rbh,  n = tanh(xw_h + r⊙q)
 *   linear_before_reset = 0:  n = tanh(xw_h + (r⊙h)·Rhᵀ + Rbh)
 *   h' = (1 − z)⊙n + z⊙h
 * Backward: da_z = gH⊙(h − n)⊙σ'(z),  da_n = gH⊙(1 − z)⊙(1 − n²)
 *   lbr = 1: da_r = da_n⊙q⊙σ'(r), dq = da_n⊙r; dh = gH⊙z + [da_z, da_r, dq]·R
 *   lbr = 0: d(r⊙h) = da_n·Rh, da_r = d(r⊙h)⊙h⊙σ'(r); dh = gH⊙z + [da_z, da_r]·R_zr + d(r⊙h)⊙r
 */
export function gruCell(weights: CellWeights, k: StepConstants, linearBeforeReset: boolean): Cell {
  const withBias = (b: ScanBody, value: string, bias: string | undefined) =>
    bias ? b.add(value, bias) : value;
  if (linearBeforeReset) {
    return {
      hasCellState: false,
      forward(b, xw, h) {
        const [xz, xr, xh] = split(b, k, xw, [1, 1, 1]);
        const [hz, hr, q] = split(
          b,
          k,
          withBias(b, b.op('MatMul', [h, weights.recurrenceT]), weights.recurrenceBias),
          [1, 1, 1],
        );
        const z = b.op('Sigmoid', [b.add(xz, hz)]);
        const r = b.op('Sigmoid', [b.add(xr, hr)]);
        const n = b.op('Tanh', [b.add(xh, b.mul(r, q))]);
        return { h: b.add(n, b.mul(z, b.sub(h, n))), saved: [z, r, n, q] };
      },
      backward(b, [z, r, n, q], hPrev, _cPrev, gradH) {
        const daz = b.mul(b.mul(gradH, b.sub(hPrev, n)), sigmoidSlope(b, k, z));
        const dan = b.mul(b.mul(gradH, b.sub(k.one, z)), tanhSlope(b, k, n));
        const dar = b.mul(b.mul(dan, q), sigmoidSlope(b, k, r));
        const dGatesR = concat(b, [daz, dar, b.mul(dan, r)]);
        return {
          dh: b.add(b.mul(gradH, z), b.op('MatMul', [dGatesR, weights.recurrence])),
          dGatesW: concat(b, [daz, dar, dan]),
          dGatesR,
        };
      },
    };
  }
  return {
    hasCellState: false,
    hBlockRecurrentInput: 3,
    forward(b, xw, h) {
      const [xz, xr, xh] = split(b, k, xw, [1, 1, 1]);
      const [rtZr, rtH] = split(b, k, weights.recurrenceT, [2, 1]); // [H, 2H], [H, H]
      const [bZr, bH] = weights.recurrenceBias
        ? split(b, k, weights.recurrenceBias, [2, 1], 0)
        : [];
      const [hz, hr] = split(b, k, withBias(b, b.op('MatMul', [h, rtZr]), bZr), [1, 1]);
      const z = b.op('Sigmoid', [b.add(xz, hz)]);
      const r = b.op('Sigmoid', [b.add(xr, hr)]);
      const resetH = b.mul(r, h);
      const n = b.op('Tanh', [withBias(b, b.add(xh, b.op('MatMul', [resetH, rtH])), bH)]);
      return { h: b.add(n, b.mul(z, b.sub(h, n))), saved: [z, r, n, resetH] };
    },
    backward(b, [z, r, n], hPrev, _cPrev, gradH) {
      const [rZr, rH] = split(b, k, weights.recurrence, [2, 1], 0); // [2H, H], [H, H]
      const daz = b.mul(b.mul(gradH, b.sub(hPrev, n)), sigmoidSlope(b, k, z));
      const dan = b.mul(b.mul(gradH, b.sub(k.one, z)), tanhSlope(b, k, n));
      const dResetH = b.op('MatMul', [dan, rH]);
      const dar = b.mul(b.mul(dResetH, hPrev), sigmoidSlope(b, k, r));
      const dh = b.add(
        b.add(b.mul(gradH, z), b.op('MatMul', [concat(b, [daz, dar]), rZr])),
        b.mul(dResetH, r),
      );
      const dGates = concat(b, [daz, dar, dan]);
      return { dh, dGatesW: dGates, dGatesR: dGates };
    },
  };
}

/** RNN activations with their slope read off the output y. */
const RNN_ACTIVATIONS: Record<string, (b: ScanBody, k: StepConstants, y: string) => string> = {
  Tanh: (b, k, y) => tanhSlope(b, k, y), // 1 − y²
  Sigmoid: (b, k, y) => sigmoidSlope(b, k, y), // y·(1 − y)
  Relu: (b, k, y) =>
    b.op('Cast', [b.op('Greater', [y, k.zero])], { to: { type: 'int', value: castCode(b.dtype) } }), // [y > 0]
};
export const RNN_ACTIVATION_NAMES = Object.keys(RNN_ACTIVATIONS);

const castCode = (dtype: string) =>
  dtype === 'float64' ? DataType.DOUBLE : dtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;

/** RNN: h' = f(xw + h·Rᵀ) (Rb folded into xw); backward: da = gH⊙f'(a), dh = da·R. */
export function rnnCell(weights: CellWeights, k: StepConstants, activation: string): Cell {
  return {
    hasCellState: false,
    forward(b, xw, h) {
      const hNext = b.op(activation, [b.add(xw, b.op('MatMul', [h, weights.recurrenceT]))]);
      return { h: hNext, saved: [hNext] };
    },
    backward(b, [hNext], _hPrev, _cPrev, gradH) {
      const da = b.mul(gradH, RNN_ACTIVATIONS[activation](b, k, hNext));
      return { dh: b.op('MatMul', [da, weights.recurrence]), dGatesW: da, dGatesR: da };
    },
  };
}
