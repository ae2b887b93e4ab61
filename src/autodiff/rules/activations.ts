/** Activations: pointwise nonlinearities and the softmaxes over an axis. */
import { float } from '../../graph/builder.ts';
import { axisOf, type GradContext } from '../context.ts';
import { dy, type GradientRule } from './shared.ts';

export const ACTIVATION_RULES: Record<string, GradientRule> = {
  Tanh: (c) => [c.mul(dy(c), c.sub(c.scalar(1, c.x(0)), c.mul(c.y(0), c.y(0))))], // dX = dY·(1 − Y²)
  Sigmoid: (c) => [c.mul(dy(c), c.mul(c.y(0), c.sub(c.scalar(1, c.x(0)), c.y(0))))], // dX = dY·Y·(1 − Y)
  // dX = dY·[X > 0], read off the output (Y > 0 exactly when X > 0): a value read only by the Relu lets onnxruntime fuse it into its producer (Gemm, Conv)
  Relu: (c) => [
    c.op('Where', [c.op('Greater', [c.y(0), c.scalar(0, c.y(0))]), dy(c), c.scalar(0, c.y(0))]),
  ],
  LeakyRelu: (c) => [
    c.op('Where', [
      c.op('Greater', [c.x(0), c.scalar(0, c.x(0))]),
      dy(c),
      c.mul(dy(c), c.scalar(c.attrFloat('alpha', 0.01), c.x(0))),
    ]),
  ], // dX = dY·(X > 0 ? 1 : α)
  Gelu: (c) => [geluGradient(c)],
  Softplus: (c) => [c.mul(dy(c), c.op('Sigmoid', [c.x(0)]))], // dX = dY·σ(X)
  Softsign: (c) => {
    const denominator = c.add(c.scalar(1, c.x(0)), c.op('Abs', [c.x(0)]));
    return [c.div(dy(c), c.mul(denominator, denominator))];
  }, // dX = dY / (1 + |X|)²
  // X ≤ 0: Y = α(eˣ − 1), so dY/dX = αeˣ = Y + α
  Elu: (c) => [
    c.mul(
      dy(c),
      positivePart(
        c,
        c.scalar(1, c.x(0)),
        c.add(c.y(0), c.scalar(c.attrFloat('alpha', 1), c.x(0))),
      ),
    ),
  ],
  // X ≤ 0: Y = γα(eˣ − 1), dY/dX = Y + γα; X > 0: γ
  Selu: (c) => {
    const gamma = c.attrFloat('gamma', 1.0507009873554805);
    return [
      c.mul(
        dy(c),
        positivePart(
          c,
          c.scalar(gamma, c.x(0)),
          c.add(c.y(0), c.scalar(gamma * c.attrFloat('alpha', 1.6732632423543772), c.x(0))),
        ),
      ),
    ];
  },
  // X ≤ 0: Y = α(e^(X/α) − 1), dY/dX = Y/α + 1
  Celu: (c) => [
    c.mul(
      dy(c),
      positivePart(
        c,
        c.scalar(1, c.x(0)),
        c.add(c.div(c.y(0), c.scalar(c.attrFloat('alpha', 1), c.x(0))), c.scalar(1, c.x(0))),
      ),
    ),
  ],
  HardSigmoid: (c) => [hardSigmoidGradient(c, c.attrFloat('alpha', 0.2), c.attrFloat('beta', 0.5))], // dX = dY·α·[0 < αX + β < 1]
  // Y = X·h(X), h = HardSigmoid(α = 1/6, β = 1/2): dX = dY·(h(X) + X·h'(X))
  HardSwish: (c) => {
    const x = c.x(0);
    const h = c.op('HardSigmoid', [x], { alpha: float(1 / 6), beta: float(0.5) });
    const inside = c.op('And', [
      c.op('Greater', [x, c.scalar(-3, x)]),
      c.op('Less', [x, c.scalar(3, x)]),
    ]);
    const slope = c.op('Where', [inside, c.div(x, c.scalar(6, x)), c.scalar(0, x)]);
    return [c.mul(dy(c), c.add(h, slope))];
  },
  // Y = X·tanh(s), s = softplus(X): dX = dY·(tanh s + X·(1 − tanh² s)·σ(X))
  Mish: (c) => {
    const x = c.x(0);
    const t = c.op('Tanh', [c.op('Softplus', [x])]);
    return [
      c.mul(
        dy(c),
        c.add(t, c.mul(x, c.mul(c.sub(c.scalar(1, x), c.mul(t, t)), c.op('Sigmoid', [x])))),
      ),
    ];
  },
  ThresholdedRelu: (c) => [
    c.op('Where', [
      c.op('Greater', [c.x(0), c.scalar(c.attrFloat('alpha', 1), c.x(0))]),
      dy(c),
      c.scalar(0, c.x(0)),
    ]),
  ], // dX = dY·[X > α]
  // Y = X ∓ bias outside [−λ, λ], 0 inside (Hardshrink, Softshrink): dX = dY·[|X| > λ]
  Shrink: (c) => [
    c.op('Where', [
      c.op('Greater', [c.op('Abs', [c.x(0)]), c.scalar(c.attrFloat('lambd', 0.5), c.x(0))]),
      dy(c),
      c.scalar(0, c.x(0)),
    ]),
  ],
  PRelu: (c) => {
    // dX = dY·(X > 0 ? 1 : slope), dSlope = dY·(X > 0 ? 0 : X)
    const positive = c.op('Greater', [c.x(0), c.scalar(0, c.x(0))]);
    return [
      c.needs(0) ? c.broadcast(c.op('Where', [positive, dy(c), c.mul(dy(c), c.x(1))])) : undefined,
      c.needs(1)
        ? c.broadcast(c.op('Where', [positive, c.scalar(0, c.x(0)), c.mul(dy(c), c.x(0))]))
        : undefined,
    ];
  },
  Softmax: (c) => {
    // dX = Y·(dY − Σ_axis dY·Y)
    const axis = axisOf(c.attrInt('axis', -1), c.rank(c.x(0)));
    return [c.mul(c.y(0), c.sub(dy(c), c.reduceSum(c.mul(dy(c), c.y(0)), [axis], true)))];
  },
  LogSoftmax: (c) => {
    // dX = dY − e^Y·Σ_axis dY
    const axis = axisOf(c.attrInt('axis', -1), c.rank(c.x(0)));
    return [c.sub(dy(c), c.mul(c.op('Exp', [c.y(0)]), c.reduceSum(dy(c), [axis], true)))];
  },
};

/** X > 0 ? whenPositive : otherwise, elementwise. */
function positivePart(c: GradContext, whenPositive: string, otherwise: string): string {
  return c.op('Where', [c.op('Greater', [c.x(0), c.scalar(0, c.x(0))]), whenPositive, otherwise]);
}

/** dX = dY·α·[0 < αX + β < 1]: the gradient of max(0, min(1, αX + β)). */
function hardSigmoidGradient(c: GradContext, alpha: number, beta: number): string {
  const x = c.x(0);
  const z = c.add(c.mul(x, c.scalar(alpha, x)), c.scalar(beta, x));
  const inside = c.op('And', [
    c.op('Greater', [z, c.scalar(0, x)]),
    c.op('Less', [z, c.scalar(1, x)]),
  ]);
  return c.op('Where', [inside, c.mul(dy(c), c.scalar(alpha, x)), c.scalar(0, x)]);
}

/** Gelu (opset 20): exact dX = dY·(Φ(X) + X·φ(X)); tanh approximation differentiated as written. */
function geluGradient(c: GradContext): string {
  const x = c.x(0);
  const s = (v: number) => c.scalar(v, x);
  if (c.attrString('approximate', 'none') === 'tanh') {
    // Y = ½X(1 + tanh u), u = √(2/π)(X + 0.044715X³); dY/dX = ½(1 + tanh u) + ½X(1 − tanh²u)·√(2/π)(1 + 3·0.044715X²)
    const k = Math.sqrt(2 / Math.PI);
    const x2 = c.mul(x, x);
    const t = c.op('Tanh', [c.mul(s(k), c.add(x, c.mul(s(0.044715), c.mul(x2, x))))]);
    const du = c.mul(s(k), c.add(s(1), c.mul(s(3 * 0.044715), x2)));
    const derivative = c.add(
      c.mul(s(0.5), c.add(s(1), t)),
      c.mul(c.mul(s(0.5), x), c.mul(c.sub(s(1), c.mul(t, t)), du)),
    );
    return c.mul(dy(c), derivative);
  }
  const cdf = c.mul(s(0.5), c.add(s(1), c.op('Erf', [c.mul(x, s(Math.SQRT1_2))])));
  const pdf = c.mul(s(1 / Math.sqrt(2 * Math.PI)), c.op('Exp', [c.mul(s(-0.5), c.mul(x, x))]));
  return c.mul(dy(c), c.add(cdf, c.mul(x, pdf)));
}
