/**
 * Optimizer updates emitted as ONNX nodes, with PyTorch's semantics, so one onnxruntime run is
 * one whole step. Per-step scalars (learning rate and Adam's bias corrections) are fed as inputs;
 * constants (momentum, betas, ε, weight decay) are baked into the graph.
 *
 *   SGD:   g ← g + λ·p;  buf ← μ·buf + g;  p ← p − lr·buf                     (torch.optim.SGD, dampening 0)
 *   AdamW: p ← p·(1 − lr·λ);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
 *          p ← p − (lr / (1−β₁ᵗ))·m / (√v / √(1−β₂ᵗ) + ε)                     (torch.optim.AdamW)
 */
import type { Emitter } from '../autodiff/emitter.ts';
import { InputError } from '../errors.ts';

export interface OptimizerSpec {
  kind: 'sgd' | 'adamw';
  momentum: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
}

/** Graph inputs fed every step. */
export const STEP_SCALARS = {
  lr: 'teardown::lr',
  /** AdamW: lr / (1 − β₁ᵗ) */
  stepSize: 'teardown::step_size',
  /** AdamW: √(1 − β₂ᵗ) */
  biasCorrection2Sqrt: 'teardown::bias_correction2_sqrt',
  /** AdamW: 1 − lr·λ */
  decay: 'teardown::decay',
} as const;

export function stateNames(spec: OptimizerSpec, parameter: string): string[] {
  if (spec.kind === 'adamw') return [`${parameter}::exp_avg`, `${parameter}::exp_avg_sq`];
  return spec.momentum > 0 ? [`${parameter}::momentum_buffer`] : [];
}

export function stepScalars(spec: OptimizerSpec): string[] {
  return spec.kind === 'adamw'
    ? [STEP_SCALARS.stepSize, STEP_SCALARS.biasCorrection2Sqrt, STEP_SCALARS.decay]
    : [STEP_SCALARS.lr];
}

/** Values of the step scalars at step t (1-based) with learning rate lr. */
export function scalarValues(
  spec: OptimizerSpec,
  lr: number,
  step: number,
): Record<string, number> {
  if (spec.kind === 'sgd') return { [STEP_SCALARS.lr]: lr };
  const [beta1, beta2] = spec.betas;
  return {
    [STEP_SCALARS.stepSize]: lr / (1 - beta1 ** step),
    [STEP_SCALARS.biasCorrection2Sqrt]: Math.sqrt(1 - beta2 ** step),
    [STEP_SCALARS.decay]: 1 - lr * spec.weightDecay,
  };
}

/**
 * Makes state' = β·state + gradient in one fused op where the graph allows (step-graph.ts), else
 * returns undefined and the update is emitted as separate ops.
 */
export type Accumulate = (gradient: string, state: string, beta: number) => string | undefined;

/** Emits the update of one parameter (or of the flat vector of several, `name` naming the nodes); returns [new parameter, ...new state] value names. */
export function emitUpdate(
  emitter: Emitter,
  spec: OptimizerSpec,
  parameter: string,
  gradient: string,
  state: string[],
  accumulate?: Accumulate,
  name = parameter,
): string[] {
  const hint = `teardown/optimizer/${name}`;
  const op = (type: string, inputs: string[]) => emitter.op(type, inputs, {}, hint);
  const scalar = (value: number) => emitter.scalar(value, 'float32');
  if (spec.kind === 'sgd') {
    const decay = (value: string) =>
      spec.weightDecay
        ? op('Add', [value, op('Mul', [parameter, scalar(spec.weightDecay)])])
        : value;
    if (spec.momentum === 0)
      return [op('Sub', [parameter, op('Mul', [decay(gradient), STEP_SCALARS.lr])])];
    // buf ← (μ·buf + g) + λ·p, the bracket fused into g's Gemm where the graph allows
    const accumulated = accumulate?.(gradient, state[0], spec.momentum);
    const buffer = accumulated
      ? decay(accumulated)
      : op('Add', [op('Mul', [state[0], scalar(spec.momentum)]), decay(gradient)]);
    return [op('Sub', [parameter, op('Mul', [buffer, STEP_SCALARS.lr])]), buffer];
  }
  const [beta1, beta2] = spec.betas;
  const [expAvg, expAvgSq] = state;
  const decayed = op('Mul', [parameter, STEP_SCALARS.decay]);
  const m = op('Add', [
    op('Mul', [expAvg, scalar(beta1)]),
    op('Mul', [gradient, scalar(1 - beta1)]),
  ]);
  const v = op('Add', [
    op('Mul', [expAvgSq, scalar(beta2)]),
    op('Mul', [op('Mul', [gradient, gradient]), scalar(1 - beta2)]),
  ]);
  const denominator = op('Add', [
    op('Div', [op('Sqrt', [v]), STEP_SCALARS.biasCorrection2Sqrt]),
    scalar(spec.eps),
  ]);
  return [
    op('Sub', [decayed, op('Mul', [op('Div', [m, denominator]), STEP_SCALARS.stepSize])]),
    m,
    v,
  ];
}

export function checkOptimizer(spec: OptimizerSpec, lr: number): void {
  if (!(lr > 0) || !Number.isFinite(lr))
    throw new InputError(`The learning rate must be a positive number, got ${lr}.`);
  if (spec.momentum < 0 || spec.momentum >= 1)
    throw new InputError(`Momentum must lie in [0, 1), got ${spec.momentum}.`);
  if (spec.weightDecay < 0)
    throw new InputError(`Weight decay must be ≥ 0, got ${spec.weightDecay}.`);
  if (spec.betas.some((beta) => !(beta >= 0 && beta < 1)))
    throw new InputError(`Betas must lie in [0, 1), got ${spec.betas.join(', ')}.`);
  if (!(spec.eps > 0)) throw new InputError(`eps must be positive, got ${spec.eps}.`);
}
