/**
 * Gradient rules, one row per op (a table, not a class hierarchy), kept in files by
 * family and assembled here. A rule gets the gradients of its node's outputs and returns one per
 * input, emitting only standard ai.onnx ops (spec.ts). Elementwise rules return output-shaped
 * gradients via `broadcast`; the walker reduces them to each input's shape and accumulates
 * fan-out, once for every rule.
 *
 * Notation: X, A, B inputs; Y output; dY its gradient; dX what the rule returns.
 */
import { ACTIVATION_RULES } from './activations.ts';
import { CONVOLUTION_RULES } from './convolution.ts';
import { ELEMENTWISE_RULES } from './elementwise.ts';
import { INDEXING_RULES } from './indexing.ts';
import { LINEAR_ALGEBRA_RULES } from './linear-algebra.ts';
import { LOSS_RULES } from './losses.ts';
import { NORMALIZATION_RULES } from './normalization.ts';
import { POOLING_RULES } from './pooling.ts';
import { REDUCTION_RULES } from './reductions.ts';
import { RECURRENT_RULES } from '../recurrent.ts';
import { GRID_SAMPLE_RULES } from './grid-sample.ts';
import { RESIZE_RULES } from './resize.ts';
import { SHAPE_RULES } from './shape.ts';
import type { GradientRule } from './shared.ts';

export type { GradientRule } from './shared.ts';
export { reluMaxPoolGradient, unpoolable } from './pooling.ts';

/** Ops through which no gradient flows: shapes, indices, masks, comparisons, random draws. */
export const NO_GRADIENT = new Set([
  'Shape',
  'Size',
  'Constant',
  'ConstantOfShape',
  'Range',
  'NonZero',
  'ArgMax',
  'ArgMin',
  'TopK_indices',
  'Equal',
  'Less',
  'LessOrEqual',
  'Greater',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'EyeLike',
  'RandomNormal',
  'RandomUniform',
  'RandomNormalLike',
  'RandomUniformLike',
  'Bernoulli',
  'Multinomial',
  'OneHot',
  'Hardmax',
  'BitShift',
  'BitwiseAnd',
  'BitwiseOr',
  'BitwiseXor',
  'BitwiseNot',
]);

/** Every family's rows; an op belongs to one family only (rules.test.ts checks). */
export const RULE_FAMILIES: Record<string, Record<string, GradientRule>> = {
  elementwise: ELEMENTWISE_RULES,
  activations: ACTIVATION_RULES,
  'linear algebra': LINEAR_ALGEBRA_RULES,
  convolution: CONVOLUTION_RULES,
  pooling: POOLING_RULES,
  normalization: NORMALIZATION_RULES,
  losses: LOSS_RULES,
  reductions: REDUCTION_RULES,
  'shape and layout': SHAPE_RULES,
  indexing: INDEXING_RULES,
  resize: RESIZE_RULES,
  sampling: GRID_SAMPLE_RULES,
  recurrent: RECURRENT_RULES,
};

export const RULES: Record<string, GradientRule> = {
  ...ELEMENTWISE_RULES,
  ...ACTIVATION_RULES,
  ...LINEAR_ALGEBRA_RULES,
  ...CONVOLUTION_RULES,
  ...POOLING_RULES,
  ...NORMALIZATION_RULES,
  ...LOSS_RULES,
  ...REDUCTION_RULES,
  ...SHAPE_RULES,
  ...INDEXING_RULES,
  ...RESIZE_RULES,
  ...GRID_SAMPLE_RULES,
  ...RECURRENT_RULES,
};
