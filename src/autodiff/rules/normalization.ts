/** Normalisations: layer, instance and batch. */
import { float, int } from '../../graph/builder.ts';
import { AutodiffError } from '../errors.ts';
import { tensor } from '../../tensor.ts';
import { axisOf, type Grad, type GradContext } from '../context.ts';
import { castCode, dy, type GradientRule } from './shared.ts';

export const NORMALIZATION_RULES: Record<string, GradientRule> = {
  LayerNormalization: (c) => layerNormGradient(c),
  InstanceNormalization: (c) => instanceNormGradient(c),
  BatchNormalization: (c) => batchNormGradient(c),
  GroupNormalization: (c) => groupNormGradient(c),
  LpNormalization: (c) => [lpNormGradient(c)],
};

/**
 * LayerNormalization over axes [axis, rank): x̂ = (X − μ)·σ⁻¹, Y = x̂·scale + B.
 * dX = σ⁻¹·(g − mean(g) − x̂·mean(g·x̂)) with g = dY·scale; dscale = Σ dY·x̂; dB = Σ dY (over the leading axes).
 */
function layerNormGradient(c: GradContext): Grad[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const axis = axisOf(c.attrInt('axis', -1), rank);
  const axes = [...Array(rank - axis).keys()].map((k) => k + axis);
  const mean = (value: string) => c.reduce('ReduceMean', value, axes, true);
  const centred = c.sub(x, mean(x));
  const invStd = c.op('Reciprocal', [
    c.op('Sqrt', [c.add(mean(c.mul(centred, centred)), c.scalar(c.attrFloat('epsilon', 1e-5), x))]),
  ]);
  const normalised = c.mul(centred, invStd);
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const g = c.mul(dy(c), c.x(1));
    grads[0] = c.mul(
      invStd,
      c.sub(c.sub(g, mean(g)), c.mul(normalised, mean(c.mul(g, normalised)))),
    );
  }
  if (c.needs(1)) grads[1] = { grad: c.mul(dy(c), normalised), shape: c.shape(x) };
  if (c.needs(2)) grads[2] = { grad: dy(c), shape: c.shape(x) };
  return grads;
}

/**
 * InstanceNormalization: per example and channel, Y = scale·x̂ + B with x̂ = (X − μ)/σ over the
 * spatial axes — LayerNorm's gradient over those axes, with per-channel scale and bias:
 * dX = σ⁻¹·(g − mean(g) − x̂·mean(g·x̂)), g = dY·scale; dscale = Σ dY·x̂; dB = Σ dY.
 */
function instanceNormGradient(c: GradContext): Grad[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const spatial = [...Array(rank - 2).keys()].map((k) => k + 2);
  const mean = (value: string) => c.reduce('ReduceMean', value, spatial, true);
  const perChannel = (value: string) =>
    c.op('Reshape', [value, c.int64s([-1, ...Array(rank - 2).fill(1)])]); // [C] → [C, 1, ...]
  const centred = c.sub(x, mean(x));
  const invStd = c.op('Reciprocal', [
    c.op('Sqrt', [c.add(mean(c.mul(centred, centred)), c.scalar(c.attrFloat('epsilon', 1e-5), x))]),
  ]);
  const normalised = c.mul(centred, invStd);
  const sumOverBatchAndSpace = [0, ...spatial];
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const g = c.mul(dy(c), perChannel(c.x(1)));
    grads[0] = c.mul(
      invStd,
      c.sub(c.sub(g, mean(g)), c.mul(normalised, mean(c.mul(g, normalised)))),
    );
  }
  if (c.needs(1)) grads[1] = c.reduceSum(c.mul(dy(c), normalised), sumOverBatchAndSpace, false);
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), sumOverBatchAndSpace, false);
  return grads;
}

/**
 * GroupNormalization: X [N, C, …] viewed as [N, G, C/G·…], each group normalised over its own
 * values, x̂ = (X − μ)/σ, then Y = x̂·scale + bias — per channel from opset 21, per group at opset
 * 18 (each group's scale shared by its C/G channels). Within each group, LayerNorm's gradient:
 * dX = σ⁻¹·(g − mean(g) − x̂·mean(g·x̂)), g = dY·scale; dscale = Σ dY·x̂, dbias = Σ dY, summed over
 * the batch and positions (and at opset 18 over the group's channels too).
 */
function groupNormGradient(c: GradContext): Grad[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const channels = Number(c.shape(x)[1]);
  const groups = c.attrInt('num_groups', 0);
  if (!Number.isInteger(channels) || groups <= 0 || channels % groups !== 0)
    throw new AutodiffError(
      `GroupNormalization ${c.describe()} with ${groups} groups over ${String(c.shape(x)[1])} channels has no gradient rule: the channels must be static and a multiple of num_groups.`,
    );
  const perChannelParameters = c.opset >= 21;
  const grouped = (value: string) => c.op('Reshape', [value, c.int64s([0, groups, -1])]); // [N, G, C/G·…]
  const mean = (value: string) => c.reduce('ReduceMean', value, [2], true); // [N, G, 1]
  const centred = c.sub(grouped(x), mean(grouped(x)));
  const invStd = c.op('Reciprocal', [
    c.op('Sqrt', [c.add(mean(c.mul(centred, centred)), c.scalar(c.attrFloat('epsilon', 1e-5), x))]),
  ]);
  const normalised = c.mul(centred, invStd); // x̂ [N, G, C/G·…]
  const asChannels = (value: string) =>
    c.op('Reshape', [value, c.int64s([channels, ...Array(rank - 2).fill(1)])]); // [C] → [C, 1, …]
  const scalePerChannel = perChannelParameters
    ? c.x(1)
    : c.op('Expand', [
        c.op('Reshape', [c.x(1), c.int64s([groups, 1])]),
        c.int64s([groups, channels / groups]),
      ]); // [G] → [G, C/G]
  // Σ over everything but the parameter's own axis: the channel (opset 21) or the group (opset 18)
  const perParameter = (value: string) =>
    perChannelParameters
      ? c.reduceSum(
          c.reshapeLike(value, x),
          [0, ...[...Array(rank - 2).keys()].map((k) => k + 2)],
          false,
        ) // [C]
      : c.reduceSum(value, [0, 2], false); // [G]
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const g = grouped(c.mul(dy(c), asChannels(scalePerChannel)));
    grads[0] = c.reshapeLike(
      c.mul(invStd, c.sub(c.sub(g, mean(g)), c.mul(normalised, mean(c.mul(g, normalised))))),
      x,
    );
  }
  if (c.needs(1)) grads[1] = perParameter(c.mul(grouped(dy(c)), normalised));
  if (c.needs(2)) grads[2] = perParameter(grouped(dy(c)));
  return grads;
}

/** BatchNormalization in inference mode: Y = (X − mean)·(var + ε)^−½·scale + B, per channel (axis 1). */
function batchNormGradient(c: GradContext): Grad[] {
  if (c.attrInt('training_mode', 0) !== 0) return batchNormTrainingGradient(c);
  if (c.node.output.filter(Boolean).length > 1)
    throw new AutodiffError(
      `BatchNormalization with running-statistics outputs (${c.describe()}) has no gradient rule in inference mode.`,
    );
  const x = c.x(0);
  const rank = c.rank(x);
  const perChannel = (value: string) =>
    c.op('Reshape', [value, c.int64s([-1, ...Array(rank - 2).fill(1)])]); // [C] → [C, 1, 1]
  const invStd = c.op('Reciprocal', [
    c.op('Sqrt', [c.add(c.x(4), c.scalar(c.attrFloat('epsilon', 1e-5), x))]),
  ]);
  const reduceAxes = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)];
  return [
    c.needs(0) ? c.mul(dy(c), perChannel(c.mul(c.x(1), invStd))) : undefined, // dX = dY·scale·σ⁻¹
    c.needs(1)
      ? c.reduceSum(
          c.mul(dy(c), c.mul(c.sub(x, perChannel(c.x(3))), perChannel(invStd))),
          reduceAxes,
          false,
        )
      : undefined, // dscale = Σ dY·x̂
    c.needs(2) ? c.reduceSum(dy(c), reduceAxes, false) : undefined, // dB = Σ dY
    undefined,
    undefined, // running statistics are not parameters
  ];
}

/**
 * BatchNormalization in training mode, normalising by the batch's own statistics μ and σ² (its
 * outputs 1 and 2 when momentum is 0, as train/batch-norm.ts emits it; otherwise those are running
 * averages, and μ and σ² (biased) are computed again here). With x̂ = (X − μ)/√(σ² + ε)
 * and m values per channel:
 *   dB = Σ dY,   dscale = Σ dY·x̂,   dX = scale/√(σ² + ε) · (dY − dB/m − x̂·dscale/m),
 * the sums over every axis but the channel one. No gradient flows into the statistics outputs.
 */
function batchNormTrainingGradient(c: GradContext): Grad[] {
  if (c.dy(1) || c.dy(2))
    throw new AutodiffError(
      `BatchNormalization ${c.describe()}: its batch statistics outputs are not differentiated.`,
    );
  const x = c.x(0);
  const rank = c.rank(x);
  const reduceAxes = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)];
  const [mean, variance] =
    c.attrFloat('momentum', 0.9) === 0 ? [c.y(1), c.y(2)] : batchStatistics(c, reduceAxes); // [C]
  const perChannel = (value: string) =>
    c.op('Reshape', [value, c.int64s([-1, ...Array(rank - 2).fill(1)])]); // [C] → [C, 1, 1]
  const epsilon = c.attrFloat('epsilon', 1e-5);
  // x̂ by onnxruntime's own inference-mode kernel: scale 1, bias 0, the batch statistics
  const channels = c.op('Shape', [mean]);
  const ones = c.op('ConstantOfShape', [channels], {
    value: { type: 'tensor', value: tensor(c.dtype(x), [1], [1]) },
  });
  const zeros = c.op('ConstantOfShape', [channels], {
    value: { type: 'tensor', value: tensor(c.dtype(x), [1], [0]) },
  });
  const normalised = c.op('BatchNormalization', [x, ones, zeros, mean, variance], {
    epsilon: float(epsilon),
  });
  const dBias = c.reduceSum(dy(c), reduceAxes, false);
  const dScale = c.reduceSum(c.mul(dy(c), normalised), reduceAxes, false);
  const grads: Grad[] = [
    undefined,
    c.needs(1) ? dScale : undefined,
    c.needs(2) ? dBias : undefined,
    undefined,
    undefined,
  ];
  if (c.needs(0)) {
    const count = c.op('Cast', [c.op('Div', [c.op('Size', [x]), c.op('Size', [mean])])], {
      to: int(castCode(c.dtype(x))),
    });
    const gain = perChannel(c.div(c.x(1), c.op('Sqrt', [c.add(variance, c.scalar(epsilon, x))]))); // scale/√(σ² + ε)
    const centred = c.sub(dy(c), perChannel(c.div(dBias, count)));
    grads[0] = c.mul(gain, c.sub(centred, c.mul(normalised, perChannel(c.div(dScale, count)))));
  }
  return grads;
}

/** The batch's mean and biased variance per channel [C], over every axis but the channel one. */
function batchStatistics(c: GradContext, reduceAxes: number[]): [string, string] {
  const x = c.x(0);
  const mean = c.reduce('ReduceMean', x, reduceAxes, true); // [1, C, 1, …]
  const centred = c.sub(x, mean);
  const squeeze = (value: string) => c.op('Squeeze', [value, c.int64s(reduceAxes)]);
  return [
    squeeze(mean),
    squeeze(c.reduce('ReduceMean', c.mul(centred, centred), reduceAxes, true)),
  ];
}

/**
 * LpNormalization along an axis, Y = X / n with n = ‖X‖ₚ (p = 1 or 2, the only ones ONNX defines). With s = ∂n/∂X, which is Y (p = 2)
 * or sign X (p = 1): dX = (dY − s·Σ dY·Y) / n, the sum along the axis.
 */
function lpNormGradient(c: GradContext): string {
  const x = c.x(0);
  const axis = axisOf(c.attrInt('axis', -1), c.rank(x));
  const p = c.attrInt('p', 2);
  const norm =
    p === 2
      ? c.op('Sqrt', [c.reduce('ReduceSumSquare', x, [axis], true)])
      : c.reduceSum(c.op('Abs', [x]), [axis], true);
  const slope = p === 2 ? c.y(0) : c.op('Sign', [x]);
  return c.div(c.sub(dy(c), c.mul(slope, c.reduceSum(c.mul(dy(c), c.y(0)), [axis], true))), norm);
}
