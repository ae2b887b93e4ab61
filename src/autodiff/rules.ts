/**
 * Gradient rules, one row per op (STYLE.md: the table, not a class hierarchy). A rule gets the
 * gradients of its node's outputs and returns one per input, emitting only standard ai.onnx ops.
 * Elementwise rules return output-shaped gradients via `broadcast`; the walker reduces them to
 * each input's shape and accumulates fan-out, once for every rule.
 *
 * Notation: X, A, B inputs; Y output; dY its gradient; dX what the rule returns.
 */
import { float, int, ints, string as str } from '../graph/builder.ts';
import { AutodiffError } from './errors.ts';
import { tensor } from '../tensor.ts';
import { axisOf, type Grad, type GradContext } from './context.ts';

export type GradientRule = (ctx: GradContext) => Grad[];

const dy = (ctx: GradContext) => ctx.dy(0)!;

/** Ops through which no gradient flows: shapes, indices, masks, comparisons, random draws. */
export const NO_GRADIENT = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'NonZero', 'ArgMax', 'ArgMin', 'TopK_indices',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf',
  'Floor', 'Ceil', 'Round', 'Sign', 'EyeLike', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike',
  'Bernoulli', 'Multinomial', 'OneHot',
]);

export const RULES: Record<string, GradientRule> = {
  // --- elementwise arithmetic (broadcast gradients reduced by the walker) ---
  Add: (c) => [c.broadcast(dy(c)), c.broadcast(dy(c))], // dA = dY, dB = dY
  Sub: (c) => [c.broadcast(dy(c)), c.needs(1) ? c.broadcast(c.neg(dy(c))) : undefined], // dB = −dY
  Mul: (c) => [c.needs(0) ? c.broadcast(c.mul(dy(c), c.x(1))) : undefined, c.needs(1) ? c.broadcast(c.mul(dy(c), c.x(0))) : undefined], // dA = dY·B
  Div: (c) => [
    c.needs(0) ? c.broadcast(c.div(dy(c), c.x(1))) : undefined, // dA = dY / B
    c.needs(1) ? c.broadcast(c.neg(c.div(c.mul(dy(c), c.y(0)), c.x(1)))) : undefined, // dB = −dY·Y / B
  ],
  Neg: (c) => [c.neg(dy(c))],
  Pow: (c) => [
    // dA = dY·B·A^(B−1)
    c.needs(0) ? c.broadcast(c.mul(dy(c), c.mul(c.x(1), c.op('Pow', [c.x(0), c.sub(c.x(1), c.scalar(1, c.x(1)))])))) : undefined,
    // dB = dY·Y·ln A
    c.needs(1) ? c.broadcast(c.mul(dy(c), c.mul(c.y(0), c.op('Log', [c.x(0)])))) : undefined,
  ],
  Sqrt: (c) => [c.div(c.mul(dy(c), c.scalar(0.5, c.x(0))), c.y(0))], // dX = dY / (2Y)
  Exp: (c) => [c.mul(dy(c), c.y(0))], // dX = dY·Y
  Log: (c) => [c.div(dy(c), c.x(0))], // dX = dY / X
  Erf: (c) => [c.mul(dy(c), c.mul(c.scalar(2 / Math.sqrt(Math.PI), c.x(0)), c.op('Exp', [c.neg(c.mul(c.x(0), c.x(0)))])))], // dX = dY·2/√π·e^(−X²)
  Tanh: (c) => [c.mul(dy(c), c.sub(c.scalar(1, c.x(0)), c.mul(c.y(0), c.y(0))))], // dX = dY·(1 − Y²)
  Sigmoid: (c) => [c.mul(dy(c), c.mul(c.y(0), c.sub(c.scalar(1, c.x(0)), c.y(0))))], // dX = dY·Y·(1 − Y)
  // dX = dY·[X > 0], read off the output (Y > 0 exactly when X > 0): a value read only by the Relu lets onnxruntime fuse it into its producer (Gemm, Conv)
  Relu: (c) => [c.op('Where', [c.op('Greater', [c.y(0), c.scalar(0, c.y(0))]), dy(c), c.scalar(0, c.y(0))])],
  LeakyRelu: (c) => [c.op('Where', [c.op('Greater', [c.x(0), c.scalar(0, c.x(0))]), dy(c), c.mul(dy(c), c.scalar(c.attrFloat('alpha', 0.01), c.x(0)))])], // dX = dY·(X > 0 ? 1 : α)
  Gelu: (c) => [geluGradient(c)],
  Clip: (c) => { // dX = dY·[min ≤ X ≤ max]; min and max get none
    let pass = dy(c);
    if (c.x(1)) pass = c.op('Where', [c.op('Less', [c.x(0), c.x(1)]), c.scalar(0, c.x(0)), pass]);
    if (c.x(2)) pass = c.op('Where', [c.op('Greater', [c.x(0), c.x(2)]), c.scalar(0, c.x(0)), pass]);
    return [pass];
  },
  Where: (c) => [undefined, // dA = dY where C, dB = dY elsewhere
    c.needs(1) ? c.broadcast(c.op('Where', [c.x(0), dy(c), c.scalar(0, dy(c))])) : undefined,
    c.needs(2) ? c.broadcast(c.op('Where', [c.x(0), c.scalar(0, dy(c)), dy(c)])) : undefined],
  Abs: (c) => [c.mul(dy(c), c.op('Sign', [c.x(0)]))], // dX = dY·sign(X)
  Reciprocal: (c) => [c.neg(c.mul(dy(c), c.mul(c.y(0), c.y(0))))], // dX = −dY·Y²
  Sin: (c) => [c.mul(dy(c), c.op('Cos', [c.x(0)]))], // dX = dY·cos X
  Cos: (c) => [c.neg(c.mul(dy(c), c.op('Sin', [c.x(0)])))], // dX = −dY·sin X
  Softplus: (c) => [c.mul(dy(c), c.op('Sigmoid', [c.x(0)]))], // dX = dY·σ(X)
  Softsign: (c) => { const denominator = c.add(c.scalar(1, c.x(0)), c.op('Abs', [c.x(0)])); return [c.div(dy(c), c.mul(denominator, denominator))]; }, // dX = dY / (1 + |X|)²
  // X ≤ 0: Y = α(eˣ − 1), so dY/dX = αeˣ = Y + α
  Elu: (c) => [c.mul(dy(c), positivePart(c, c.scalar(1, c.x(0)), c.add(c.y(0), c.scalar(c.attrFloat('alpha', 1), c.x(0)))))],
  // X ≤ 0: Y = γα(eˣ − 1), dY/dX = Y + γα; X > 0: γ
  Selu: (c) => {
    const gamma = c.attrFloat('gamma', 1.0507009873554805);
    return [c.mul(dy(c), positivePart(c, c.scalar(gamma, c.x(0)), c.add(c.y(0), c.scalar(gamma * c.attrFloat('alpha', 1.6732632423543772), c.x(0)))))];
  },
  // X ≤ 0: Y = α(e^(X/α) − 1), dY/dX = Y/α + 1
  Celu: (c) => [c.mul(dy(c), positivePart(c, c.scalar(1, c.x(0)), c.add(c.div(c.y(0), c.scalar(c.attrFloat('alpha', 1), c.x(0))), c.scalar(1, c.x(0)))))],
  HardSigmoid: (c) => [hardSigmoidGradient(c, c.attrFloat('alpha', 0.2), c.attrFloat('beta', 0.5))], // dX = dY·α·[0 < αX + β < 1]
  // Y = X·h(X), h = HardSigmoid(α = 1/6, β = 1/2): dX = dY·(h(X) + X·h'(X))
  HardSwish: (c) => {
    const x = c.x(0);
    const h = c.op('HardSigmoid', [x], { alpha: float(1 / 6), beta: float(0.5) });
    const inside = c.op('And', [c.op('Greater', [x, c.scalar(-3, x)]), c.op('Less', [x, c.scalar(3, x)])]);
    const slope = c.op('Where', [inside, c.div(x, c.scalar(6, x)), c.scalar(0, x)]);
    return [c.mul(dy(c), c.add(h, slope))];
  },
  // Y = X·tanh(s), s = softplus(X): dX = dY·(tanh s + X·(1 − tanh² s)·σ(X))
  Mish: (c) => {
    const x = c.x(0);
    const t = c.op('Tanh', [c.op('Softplus', [x])]);
    return [c.mul(dy(c), c.add(t, c.mul(x, c.mul(c.sub(c.scalar(1, x), c.mul(t, t)), c.op('Sigmoid', [x])))))];
  },
  PRelu: (c) => { // dX = dY·(X > 0 ? 1 : slope), dSlope = dY·(X > 0 ? 0 : X)
    const positive = c.op('Greater', [c.x(0), c.scalar(0, c.x(0))]);
    return [
      c.needs(0) ? c.broadcast(c.op('Where', [positive, dy(c), c.mul(dy(c), c.x(1))])) : undefined,
      c.needs(1) ? c.broadcast(c.op('Where', [positive, c.scalar(0, c.x(0)), c.mul(dy(c), c.x(0))])) : undefined,
    ];
  },
  Sum: (c) => c.node.input.map((_, k) => (c.needs(k) ? c.broadcast(dy(c)) : undefined)), // dXᵢ = dY
  Mean: (c) => c.node.input.map((_, k) => (c.needs(k) ? c.broadcast(c.div(dy(c), c.scalar(c.inputCount(), c.x(k)))) : undefined)), // dXᵢ = dY / n
  Max: (c) => extremumGradient(c),
  Min: (c) => extremumGradient(c),
  Identity: (c) => [dy(c)],
  Dropout: (c) => [dy(c)], // inference: Y = X
  Cast: (c) => [c.op('Cast', [dy(c)], { to: int(castCode(c.dtype(c.x(0)))) })],
  Expand: (c) => [c.broadcast(dy(c))], // dX = Σ over the expanded axes

  // --- normalisations and activations over an axis ---
  Softmax: (c) => { // dX = Y·(dY − Σ_axis dY·Y)
    const axis = axisOf(c.attrInt('axis', -1), c.rank(c.x(0)));
    return [c.mul(c.y(0), c.sub(dy(c), c.reduceSum(c.mul(dy(c), c.y(0)), [axis], true)))];
  },
  LogSoftmax: (c) => { // dX = dY − e^Y·Σ_axis dY
    const axis = axisOf(c.attrInt('axis', -1), c.rank(c.x(0)));
    return [c.sub(dy(c), c.mul(c.op('Exp', [c.y(0)]), c.reduceSum(dy(c), [axis], true)))];
  },
  LayerNormalization: (c) => layerNormGradient(c),
  InstanceNormalization: (c) => instanceNormGradient(c),
  BatchNormalization: (c) => batchNormGradient(c),
  SoftmaxCrossEntropyLoss: (c) => [softmaxCrossEntropyGradient(c), undefined, undefined],

  // --- linear algebra ---
  MatMul: (c) => matMulGradient(c),
  Gemm: (c) => gemmGradient(c),
  Conv: (c) => convGradient(c),
  ConvTranspose: (c) => convTransposeGradient(c),
  Einsum: (c) => einsumGradient(c),

  // --- pooling ---
  MaxPool: (c) => [maxPoolGradient(c)],
  AveragePool: (c) => [averagePoolGradient(c)],
  GlobalAveragePool: (c) => { // dX = dY / (H·W), spread over every position
    const spatial = c.shape(c.x(0)).slice(2).map(Number).reduce((a, b) => a * b, 1);
    return [c.div(c.op('Expand', [dy(c), c.op('Shape', [c.x(0)])]), c.scalar(spatial, c.x(0)))];
  },
  ReduceMean: (c) => reduceGradient(c, true),
  ReduceSum: (c) => reduceGradient(c, false),
  ReduceMax: (c) => [extremeReduceGradient(c)],
  ReduceMin: (c) => [extremeReduceGradient(c)],
  ReduceL2: (c) => [c.mul(reducedLike(c, c.div(dy(c), c.y(0))), c.x(0))], // dX = dY·X / Y
  ReduceLogSumExp: (c) => [c.mul(reducedLike(c, dy(c)), c.op('Exp', [c.sub(c.x(0), reducedLike(c, c.y(0)))]))], // dX = dY·e^(X − Y)
  ReduceSumSquare: (c) => [c.mul(reducedLike(c, dy(c)), c.mul(c.x(0), c.scalar(2, c.x(0))))], // dX = dY·2X

  // --- shape and layout ---
  Reshape: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Flatten: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Squeeze: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Unsqueeze: (c) => [c.reshapeLike(dy(c), c.x(0))],
  Transpose: (c) => { // dX = Transpose(dY, perm⁻¹)
    const perm = c.attrInts('perm') ?? [...Array(c.rank(c.x(0))).keys()].reverse();
    const inverse = perm.map((_, axis) => perm.indexOf(axis));
    return [c.op('Transpose', [dy(c)], { perm: ints(inverse) })];
  },
  Concat: (c) => { // dXᵢ = the slice of dY that Xᵢ filled
    const axis = axisOf(c.attrInt('axis', 0), c.rank(c.x(0)));
    const sizes = c.op('Concat', c.node.input.map((input) => c.op('Gather', [c.op('Shape', [input]), c.int64s([axis])])), { axis: int(0) });
    return c.opN('Split', [dy(c), sizes], { axis: int(axis) }, c.inputCount());
  },
  Split: (c) => { // dX = Concat of the dYᵢ (zeros where an output has no gradient)
    const axis = axisOf(c.attrInt('axis', 0), c.rank(c.x(0)));
    const parts = c.node.output.map((_, index) => c.dy(index) ?? c.zerosLike(c.y(index)));
    return [c.op('Concat', parts, { axis: int(axis) })];
  },
  Slice: (c) => [sliceGradient(c)],
  Pad: (c) => [padGradient(c)],
  Gather: (c) => [gatherGradient(c)],
  GatherElements: (c) => { // dData = scatter-add dY at the gathered indices
    const axis = axisOf(c.attrInt('axis', 0), c.rank(c.x(0)));
    return [c.op('ScatterElements', [c.zerosLike(c.x(0)), c.x(1), dy(c)], { axis: int(axis), reduction: str('add') })];
  },
  GatherND: (c) => { // dData = scatter-add dY at the gathered slices
    if (c.attrInt('batch_dims', 0) !== 0) throw new AutodiffError(`GatherND with batch_dims (${c.describe()}) has no gradient rule.`);
    return [c.op('ScatterND', [c.zerosLike(c.x(0)), c.x(1), dy(c)], { reduction: str('add') }), undefined];
  },
  ScatterElements: (c) => scatterGradient(c, 'GatherElements'),
  ScatterND: (c) => scatterGradient(c, 'GatherND'),
  // TopK: dX = dY scattered to the positions the values came from (distinct along the axis); indices get none
  TopK: (c) => [c.dy(0) ? c.op('ScatterElements', [c.zerosLike(c.x(0)), c.y(1), dy(c)], { axis: int(axisOf(c.attrInt('axis', -1), c.rank(c.x(0)))) }) : undefined, undefined],
  ReduceProd: (c) => [c.mul(reducedLike(c, dy(c)), c.div(reducedLike(c, c.y(0)), c.x(0)))], // dX = dY·Y / X (X without zeros)
  Tile: (c) => [tileGradient(c), undefined],
  CumSum: (c) => [cumSumGradient(c), undefined],
  Resize: (c) => [resizeNearestGradient(c)],
  Trilu: (c) => [c.op('Trilu', c.x(1) ? [dy(c), c.x(1)] : [dy(c)], { upper: int(c.attrInt('upper', 1)) })], // dX = Trilu(dY): the kept triangle passes through
};

/** X > 0 ? whenPositive : otherwise, elementwise. */
function positivePart(c: GradContext, whenPositive: string, otherwise: string): string {
  return c.op('Where', [c.op('Greater', [c.x(0), c.scalar(0, c.x(0))]), whenPositive, otherwise]);
}

/** dX = dY·α·[0 < αX + β < 1]: the gradient of max(0, min(1, αX + β)). */
function hardSigmoidGradient(c: GradContext, alpha: number, beta: number): string {
  const x = c.x(0);
  const z = c.add(c.mul(x, c.scalar(alpha, x)), c.scalar(beta, x));
  const inside = c.op('And', [c.op('Greater', [z, c.scalar(0, x)]), c.op('Less', [z, c.scalar(1, x)])]);
  return c.op('Where', [inside, c.mul(dy(c), c.scalar(alpha, x)), c.scalar(0, x)]);
}

/**
 * Max/Min of n broadcast inputs: dXᵢ = dY where Xᵢ is the first input equal to Y (ties go to the
 * earliest input, so the gradient is counted once), 0 elsewhere.
 */
function extremumGradient(c: GradContext): Grad[] {
  let taken: string | undefined;
  return c.node.input.map((input, k) => {
    const equal = c.op('Equal', [input, c.y(0)]);
    const mine = taken ? c.op('And', [equal, c.op('Not', [taken])]) : equal;
    taken = taken ? c.op('Or', [taken, equal]) : equal;
    return c.needs(k) ? c.broadcast(c.op('Where', [mine, dy(c), c.scalar(0, dy(c))])) : undefined;
  });
}

function castCode(dtype: string): number {
  return { float32: 1, float64: 11 }[dtype] ?? 1;
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
    const derivative = c.add(c.mul(s(0.5), c.add(s(1), t)), c.mul(c.mul(s(0.5), x), c.mul(c.sub(s(1), c.mul(t, t)), du)));
    return c.mul(dy(c), derivative);
  }
  const cdf = c.mul(s(0.5), c.add(s(1), c.op('Erf', [c.mul(x, s(Math.SQRT1_2))])));
  const pdf = c.mul(s(1 / Math.sqrt(2 * Math.PI)), c.op('Exp', [c.mul(s(-0.5), c.mul(x, x))]));
  return c.mul(dy(c), c.add(cdf, c.mul(x, pdf)));
}

/** Y = A·B with NumPy batching: dA = dY·Bᵀ, dB = Aᵀ·dY (batched shapes; the walker sums broadcast batch axes). */
function matMulGradient(c: GradContext): Grad[] {
  const [a, b] = [c.x(0), c.x(1)];
  const [rankA, rankB] = [c.rank(a), c.rank(b)];
  if (rankA < 2 || rankB < 2) throw new AutodiffError(`MatMul with a rank-1 operand (${c.describe()}) has no gradient rule yet.`);
  const swapLast = (value: string, rank: number) => c.op('Transpose', [value], { perm: ints([...Array(rank - 2).keys(), rank - 1, rank - 2]) });
  const outShape = c.shape(c.y(0));
  const batch = outShape.slice(0, -2);
  const grads: Grad[] = [undefined, undefined];
  if (c.needs(0)) grads[0] = { grad: c.op('MatMul', [dy(c), swapLast(b, rankB)]), shape: [...batch, ...c.shape(a).slice(-2)] };
  if (c.needs(1) && rankB === 2 && rankA > 2) {
    // A weight shared by every batch row: dB = Σ_rows Aᵀ·dY as one [K, rows]·[rows, N] product, not a
    // batched product summed afterwards (which materialises one K×N matrix per row).
    const rows = (value: string) => c.op('Reshape', [value, c.op('Concat', [c.int64s([-1]), c.op('Slice', [c.op('Shape', [value]), c.int64s([-1]), c.int64s([rankA])])], { axis: int(0) })]);
    grads[1] = c.op('Gemm', [rows(a), rows(dy(c))], { transA: int(1) });
  } else if (c.needs(1)) grads[1] = { grad: c.op('MatMul', [swapLast(a, rankA), dy(c)]), shape: [...batch, ...c.shape(b).slice(-2)] };
  return grads;
}

/** Y = α·op(A)·op(B) + β·C. */
function gemmGradient(c: GradContext): Grad[] {
  const alpha = c.attrFloat('alpha', 1);
  const beta = c.attrFloat('beta', 1);
  const transA = c.attrInt('transA', 0);
  const transB = c.attrInt('transB', 0);
  const [a, b] = [c.x(0), c.x(1)];
  const gemm = (p: string, q: string, tA: number, tB: number) => c.op('Gemm', [p, q], { alpha: float(alpha), transA: int(tA), transB: int(tB) });
  return [
    // dA = α·dY·op(B)ᵀ, or its transpose when A was transposed
    c.needs(0) ? (transA ? gemm(b, dy(c), transB, 1) : gemm(dy(c), b, 0, transB ? 0 : 1)) : undefined,
    // dB = α·op(A)ᵀ·dY, or its transpose when B was transposed
    c.needs(1) ? (transB ? gemm(dy(c), a, 1, transA) : gemm(a, dy(c), transA ? 0 : 1, 0)) : undefined,
    c.needs(2) ? c.broadcast(beta === 1 ? dy(c) : c.mul(dy(c), c.scalar(beta, a))) : undefined, // dC = β·dY
  ];
}

/**
 * LayerNormalization over axes [axis, rank): x̂ = (X − μ)·σ⁻¹, Y = x̂·scale + B.
 * dX = σ⁻¹·(g − mean(g) − x̂·mean(g·x̂)) with g = dY·scale; dscale = Σ dY·x̂; dB = Σ dY (over the leading axes).
 */
function layerNormGradient(c: GradContext): Grad[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const axis = axisOf(c.attrInt('axis', -1), rank);
  const axes = [...Array(rank - axis).keys()].map((k) => k + axis);
  const mean = (value: string) => c.op('ReduceMean', c.opset >= 18 ? [value, c.int64s(axes)] : [value], c.opset >= 18 ? { keepdims: int(1) } : { axes: ints(axes), keepdims: int(1) });
  const centred = c.sub(x, mean(x));
  const invStd = c.op('Reciprocal', [c.op('Sqrt', [c.add(mean(c.mul(centred, centred)), c.scalar(c.attrFloat('epsilon', 1e-5), x))])]);
  const normalised = c.mul(centred, invStd);
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const g = c.mul(dy(c), c.x(1));
    grads[0] = c.mul(invStd, c.sub(c.sub(g, mean(g)), c.mul(normalised, mean(c.mul(g, normalised)))));
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
  const mean = (value: string) => c.op('ReduceMean', c.opset >= 18 ? [value, c.int64s(spatial)] : [value], c.opset >= 18 ? { keepdims: int(1) } : { axes: ints(spatial), keepdims: int(1) });
  const perChannel = (value: string) => c.op('Reshape', [value, c.int64s([-1, ...Array(rank - 2).fill(1)])]); // [C] → [C, 1, ...]
  const centred = c.sub(x, mean(x));
  const invStd = c.op('Reciprocal', [c.op('Sqrt', [c.add(mean(c.mul(centred, centred)), c.scalar(c.attrFloat('epsilon', 1e-5), x))])]);
  const normalised = c.mul(centred, invStd);
  const sumOverBatchAndSpace = [0, ...spatial];
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const g = c.mul(dy(c), perChannel(c.x(1)));
    grads[0] = c.mul(invStd, c.sub(c.sub(g, mean(g)), c.mul(normalised, mean(c.mul(g, normalised)))));
  }
  if (c.needs(1)) grads[1] = c.reduceSum(c.mul(dy(c), normalised), sumOverBatchAndSpace, false);
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), sumOverBatchAndSpace, false);
  return grads;
}

/** BatchNormalization in inference mode: Y = (X − mean)·(var + ε)^−½·scale + B, per channel (axis 1). */
function batchNormGradient(c: GradContext): Grad[] {
  if (c.attrInt('training_mode', 0) !== 0) return batchNormTrainingGradient(c);
  if (c.node.output.filter(Boolean).length > 1) throw new AutodiffError(`BatchNormalization with running-statistics outputs (${c.describe()}) has no gradient rule in inference mode.`);
  const x = c.x(0);
  const rank = c.rank(x);
  const perChannel = (value: string) => c.op('Reshape', [value, c.int64s([-1, ...Array(rank - 2).fill(1)])]); // [C] → [C, 1, 1]
  const invStd = c.op('Reciprocal', [c.op('Sqrt', [c.add(c.x(4), c.scalar(c.attrFloat('epsilon', 1e-5), x))])]);
  const reduceAxes = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)];
  return [
    c.needs(0) ? c.mul(dy(c), perChannel(c.mul(c.x(1), invStd))) : undefined, // dX = dY·scale·σ⁻¹
    c.needs(1) ? c.reduceSum(c.mul(dy(c), c.mul(c.sub(x, perChannel(c.x(3))), perChannel(invStd))), reduceAxes, false) : undefined, // dscale = Σ dY·x̂
    c.needs(2) ? c.reduceSum(dy(c), reduceAxes, false) : undefined, // dB = Σ dY
    undefined, undefined, // running statistics are not parameters
  ];
}

/**
 * BatchNormalization in training mode, normalising by the batch's own statistics μ and σ² (its
 * outputs 1 and 2 when momentum is 0, as train/batch-norm.ts emits it). With x̂ = (X − μ)/√(σ² + ε)
 * and m values per channel:
 *   dB = Σ dY,   dscale = Σ dY·x̂,   dX = scale/√(σ² + ε) · (dY − dB/m − x̂·dscale/m),
 * the sums over every axis but the channel one. No gradient flows into the statistics outputs.
 */
function batchNormTrainingGradient(c: GradContext): Grad[] {
  if (c.dy(1) || c.dy(2)) throw new AutodiffError(`BatchNormalization ${c.describe()}: its batch statistics outputs are not differentiated.`);
  if (c.attrFloat('momentum', 0.9) !== 0) throw new AutodiffError(`BatchNormalization in training mode with momentum ≠ 0 (${c.describe()}) has no gradient rule: its outputs 1 and 2 must be the batch statistics.`);
  const x = c.x(0);
  const rank = c.rank(x);
  const reduceAxes = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)];
  const perChannel = (value: string) => c.op('Reshape', [value, c.int64s([-1, ...Array(rank - 2).fill(1)])]); // [C] → [C, 1, 1]
  const epsilon = c.attrFloat('epsilon', 1e-5);
  // x̂ by onnxruntime's own inference-mode kernel: scale 1, bias 0, the batch statistics
  const channels = c.op('Shape', [c.y(1)]);
  const ones = c.op('ConstantOfShape', [channels], { value: { type: 'tensor', value: tensor(c.dtype(x), [1], [1]) } });
  const zeros = c.op('ConstantOfShape', [channels], { value: { type: 'tensor', value: tensor(c.dtype(x), [1], [0]) } });
  const normalised = c.op('BatchNormalization', [x, ones, zeros, c.y(1), c.y(2)], { epsilon: float(epsilon) });
  const dBias = c.reduceSum(dy(c), reduceAxes, false);
  const dScale = c.reduceSum(c.mul(dy(c), normalised), reduceAxes, false);
  const grads: Grad[] = [undefined, c.needs(1) ? dScale : undefined, c.needs(2) ? dBias : undefined, undefined, undefined];
  if (c.needs(0)) {
    const count = c.op('Cast', [c.op('Div', [c.op('Size', [x]), c.op('Size', [c.y(1)])])], { to: int(c.dtype(x) === 'float64' ? 11 : 1) });
    const gain = perChannel(c.div(c.x(1), c.op('Sqrt', [c.add(c.y(2), c.scalar(epsilon, x))]))); // scale/√(σ² + ε)
    const centred = c.sub(dy(c), perChannel(c.div(dBias, count)));
    grads[0] = c.mul(gain, c.sub(centred, c.mul(normalised, perChannel(c.div(dScale, count)))));
  }
  return grads;
}

/**
 * 2-D convolution. dX = ConvTranspose(dY, W) with the same strides, pads, dilations and groups
 * (output_padding restores the rows and columns the stride skipped). dW correlates X with dY,
 * per group, as one matrix product over im2col windows (convWeightGradient).
 */
function convGradient(c: GradContext): Grad[] {
  const [x, w] = [c.x(0), c.x(1)];
  const xShape = c.shape(x).map(Number);
  const wShape = c.shape(w).map(Number);
  if (xShape.length === 3) return conv1dGradient(c);
  if (xShape.length !== 4) throw new AutodiffError(`Conv over ${xShape.length - 2} spatial axes (${c.describe()}) has no gradient rule: only 1-D and 2-D convolutions have one.`);
  if (c.attrString('auto_pad', 'NOTSET') !== 'NOTSET') throw new AutodiffError(`Conv with auto_pad (${c.describe()}) has no gradient rule: export with explicit pads.`);
  const kernel = wShape.slice(2);
  const strides = c.attrInts('strides') ?? [1, 1];
  const dilations = c.attrInts('dilations') ?? [1, 1];
  const pads = c.attrInts('pads') ?? [0, 0, 0, 0];
  const group = c.attrInt('group', 1);
  const outSpatial = c.shape(c.y(0)).slice(2).map(Number);
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const outputPadding = [0, 1].map((k) => xShape[2 + k] - ((outSpatial[k] - 1) * strides[k] - pads[k] - pads[k + 2] + (kernel[k] - 1) * dilations[k] + 1));
    grads[0] = fullConvolutionGradient(c, w, kernel, { strides, dilations, pads, group })
      ?? c.op('ConvTranspose', [dy(c), w], { strides: ints(strides), pads: ints(pads), dilations: ints(dilations), group: int(group), output_padding: ints(outputPadding), kernel_shape: ints(kernel) });
  }
  if (c.needs(1)) {
    const perGroup = (xPart: string, dyPart: string, inChannels: number, outChannels: number) =>
      convWeightGradient(c, xPart, dyPart, { inChannels, outChannels, kernel, strides, dilations, pads });
    if (group === 1) grads[1] = perGroup(x, dy(c), xShape[1], wShape[0]);
    else {
      const xParts = c.opN('Split', [x, c.int64s(Array(group).fill(xShape[1] / group))], { axis: int(1) }, group);
      const dyParts = c.opN('Split', [dy(c), c.int64s(Array(group).fill(wShape[0] / group))], { axis: int(1) }, group);
      grads[1] = c.op('Concat', xParts.map((part, g) => perGroup(part, dyParts[g], xShape[1] / group, wShape[0] / group)), { axis: int(0) });
    }
  }
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), [0, 2, 3], false); // dB = Σ dY over batch and positions
  return grads;
}

/**
 * ConvTranspose (2-D) is the adjoint of the Conv with the same weight, strides, pads and
 * dilations, mapping its output space back to its input space, so dX = Conv(dY, W) (output_padding
 * only adds rows that Conv's window never reads back) and dW is that Conv's weight gradient with
 * dY as its input and X as its output gradient: dW[i, o, a, b] = Σ dY[n, o, ·]·X[n, i, ·].
 */
function convTransposeGradient(c: GradContext): Grad[] {
  const [x, w] = [c.x(0), c.x(1)];
  const xShape = c.shape(x).map(Number);
  const wShape = c.shape(w).map(Number);
  if (xShape.length !== 4) throw new AutodiffError(`ConvTranspose over ${xShape.length - 2} spatial axes (${c.describe()}) has no gradient rule: only 2-D ones have.`);
  if (c.attrString('auto_pad', 'NOTSET') !== 'NOTSET' || c.attr('output_shape')) throw new AutodiffError(`ConvTranspose with auto_pad or output_shape (${c.describe()}) has no gradient rule: export with explicit pads.`);
  const group = c.attrInt('group', 1);
  if (group !== 1) throw new AutodiffError(`Grouped ConvTranspose (${c.describe()}, group ${group}) has no gradient rule yet.`);
  const kernel = wShape.slice(2);
  const conv = { strides: c.attrInts('strides') ?? [1, 1], dilations: c.attrInts('dilations') ?? [1, 1], pads: c.attrInts('pads') ?? [0, 0, 0, 0] };
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) grads[0] = c.op('Conv', [dy(c), w], { strides: ints(conv.strides), dilations: ints(conv.dilations), pads: ints(conv.pads), kernel_shape: ints(kernel) });
  if (c.needs(1)) grads[1] = convWeightGradient(c, dy(c), x, { inChannels: wShape[1], outChannels: wShape[0], kernel, ...conv }, x);
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), [0, 2, 3], false); // dB = Σ dY over batch and positions
  return grads;
}

/**
 * ScatterElements / ScatterND without reduction: Y is `data` with `updates` written at `indices`,
 * so dData = dY with those positions zeroed and dUpdates = dY read back at them (indices distinct).
 */
function scatterGradient(c: GradContext, gather: 'GatherElements' | 'GatherND'): Grad[] {
  if (c.attrString('reduction', 'none') !== 'none') throw new AutodiffError(`${c.node.opType} with reduction '${c.attrString('reduction', 'none')}' (${c.describe()}) has no gradient rule: only plain scatters have one.`);
  const axis = gather === 'GatherElements' ? { axis: int(axisOf(c.attrInt('axis', 0), c.rank(c.x(0)))) } : {};
  return [
    c.needs(0) ? c.op(c.node.opType, [dy(c), c.x(1), c.zerosLike(c.x(2))], axis) : undefined,
    undefined,
    c.needs(2) ? c.op(gather, [dy(c), c.x(1)], axis) : undefined,
  ];
}

/** Tile by constant repeats r: dX = Σ over the r copies along each axis (dY viewed as [r₀, d₀, r₁, d₁, ...]). */
function tileGradient(c: GradContext): string {
  const dims = reshapeDims(c, c.x(0));
  const repeats = c.constantInput(1, 'repeats');
  const split = c.op('Reshape', [dy(c), c.int64s(dims.flatMap((size, axis) => [repeats[axis], size]))]); // [r₀, d₀, r₁, d₁, ...]
  return c.reduceSum(split, dims.map((_, axis) => 2 * axis), false); // [d₀, d₁, ...]
}

/** CumSum along an axis: dX = the cumulative sum of dY taken the other way (reverse flipped; exclusive kept). */
function cumSumGradient(c: GradContext): string {
  return c.op('CumSum', [dy(c), c.x(1)], { exclusive: int(c.attrInt('exclusive', 0)), reverse: int(1 - c.attrInt('reverse', 0)) });
}

/**
 * Resize, nearest neighbour, asymmetric coordinates, rounding down, by integer factors (nn.Upsample's
 * export): each input cell is copied into an s₀ × s₁ block, so dX = the sum of dY over each block.
 * Other modes refuse by name.
 */
function resizeNearestGradient(c: GradContext): string {
  const x = c.x(0);
  const settings = `mode '${c.attrString('mode', 'nearest')}', coordinate_transformation_mode '${c.attrString('coordinate_transformation_mode', 'half_pixel')}', nearest_mode '${c.attrString('nearest_mode', 'round_prefer_floor')}'`;
  if (c.attrString('mode', 'nearest') !== 'nearest' || c.attrString('coordinate_transformation_mode', 'half_pixel') !== 'asymmetric' || c.attrString('nearest_mode', 'round_prefer_floor') !== 'floor') {
    throw new AutodiffError(`Resize with ${settings} (${c.describe()}) has no gradient rule: only nearest-neighbour resizing with asymmetric coordinates and floor rounding (PyTorch's nn.Upsample(mode='nearest')) has one.`);
  }
  const dims = reshapeDims(c, x);
  const scales = c.constantOrUndefined(c.x(2));
  const sizes = c.x(3) ? c.constantOrUndefined(c.x(3)) : undefined;
  const factors = scales?.length ? scales : sizes ? sizes.map((size, axis) => size / dims[axis]) : [];
  if (factors.length !== dims.length || factors.some((factor) => !Number.isInteger(factor) || factor < 1)) throw new AutodiffError(`Resize by factors ${factors.join(', ')} (${c.describe()}) has no gradient rule: only integer upscaling has one.`);
  const split = c.op('Reshape', [dy(c), c.int64s(dims.flatMap((size, axis) => [size, factors[axis]]))]); // [d₀, s₀, d₁, s₁, ...]
  return c.reduceSum(split, dims.map((_, axis) => 2 * axis + 1), false);
}

/**
 * Einsum of one or two operands with explicit output subscripts, no ellipsis and no index repeated
 * within an operand: each operand's gradient is the einsum of dY with the other operands back to
 * its own subscripts — for Y = einsum('ab,bc->ac', A, B): dA = einsum('ac,bc->ab', dY, B). An
 * index of an operand found neither in the output nor in the other operand was summed away: its
 * gradient is the same along it (expanded back).
 */
function einsumGradient(c: GradContext): Grad[] {
  const equation = c.attrString('equation', '').replace(/\s+/g, '');
  const [inputsPart, output] = equation.split('->');
  const operands = inputsPart?.split(',') ?? [];
  const valid = output !== undefined && !equation.includes('.') && operands.length >= 1 && operands.length <= 2
    && [...operands, output].every((subscripts) => new Set(subscripts).size === subscripts.length);
  if (!valid) throw new AutodiffError(`Einsum '${equation}' (${c.describe()}) has no gradient rule: only one or two operands with explicit output subscripts, no ellipsis and no index repeated within an operand have one.`);
  return operands.map((own, k) => {
    if (!c.needs(k)) return undefined;
    const others = operands.filter((_, j) => j !== k);
    const available = new Set([...output, ...others.join('')]);
    const kept = [...own].filter((index) => available.has(index)).join('');
    let grad = c.op('Einsum', [dy(c), ...operands.map((_, j) => c.x(j)).filter((_, j) => j !== k)], { equation: str(`${[output, ...others].join(',')}->${kept}`) });
    if (kept !== own) {
      const missing = [...own].map((index, axis) => (available.has(index) ? -1 : axis)).filter((axis) => axis >= 0);
      grad = c.op('Expand', [c.unsqueeze(grad, missing), c.op('Shape', [c.x(k)])]);
    }
    return grad;
  });
}

/** A value's dims for a Reshape: numbers, with its one symbolic axis (the batch) as −1. */
function reshapeDims(c: GradContext, value: string): number[] {
  const dims = c.shape(value).map((dim) => (typeof dim === 'number' ? dim : -1));
  if (dims.filter((dim) => dim === -1).length > 1) throw new AutodiffError(`The gradient of ${c.describe()} needs the sizes of '${value}', which has more than one symbolic axis.`);
  return dims;
}

/**
 * Conv over one spatial axis (Conv1d): the 2-D gradients on [N, C, 1, L] — an axis of size 1
 * inserted before the length, with stride, dilation and padding 1, 1 and 0 along it — squeezed back.
 */
function conv1dGradient(c: GradContext): Grad[] {
  const [x, w] = [c.x(0), c.x(1)];
  const xShape = c.shape(x).map(Number);
  const wShape = c.shape(w).map(Number);
  if (c.attrString('auto_pad', 'NOTSET') !== 'NOTSET') throw new AutodiffError(`Conv with auto_pad (${c.describe()}) has no gradient rule: export with explicit pads.`);
  const [stride] = c.attrInts('strides') ?? [1];
  const [dilation] = c.attrInts('dilations') ?? [1];
  const [padStart, padEnd] = c.attrInts('pads') ?? [0, 0];
  const group = c.attrInt('group', 1);
  const kernel = [1, wShape[2]];
  const lifted = { strides: [1, stride], dilations: [1, dilation], pads: [0, padStart, 0, padEnd] };
  const up = (value: string) => c.unsqueeze(value, [2]); // [N, C, L] → [N, C, 1, L]
  const down = (value: string) => c.op('Squeeze', [value, c.int64s([2])]);
  const grads: Grad[] = [undefined, undefined, undefined];
  if (c.needs(0)) {
    const outLength = Number(c.shape(c.y(0))[2]);
    const outputPadding = xShape[2] - ((outLength - 1) * stride - padStart - padEnd + (wShape[2] - 1) * dilation + 1);
    grads[0] = down(c.op('ConvTranspose', [up(dy(c)), up(w)], {
      strides: ints(lifted.strides), pads: ints(lifted.pads), dilations: ints(lifted.dilations), group: int(group), output_padding: ints([0, outputPadding]), kernel_shape: ints(kernel),
    }));
  }
  if (c.needs(1)) {
    const perGroup = (xPart: string, dyPart: string, inChannels: number, outChannels: number) =>
      down(convWeightGradient(c, up(xPart), up(dyPart), { inChannels, outChannels, kernel, ...lifted }, x));
    if (group === 1) grads[1] = perGroup(x, dy(c), xShape[1], wShape[0]);
    else {
      const xParts = c.opN('Split', [x, c.int64s(Array(group).fill(xShape[1] / group))], { axis: int(1) }, group);
      const dyParts = c.opN('Split', [dy(c), c.int64s(Array(group).fill(wShape[0] / group))], { axis: int(1) }, group);
      grads[1] = c.op('Concat', xParts.map((part, g) => perGroup(part, dyParts[g], xShape[1] / group, wShape[0] / group)), { axis: int(0) });
    }
  }
  if (c.needs(2)) grads[2] = c.reduceSum(dy(c), [0, 2], false); // dB = Σ dY over batch and positions
  return grads;
}

/**
 * dX of a stride-1, undilated, ungrouped convolution as a plain convolution of dY — the "full"
 * convolution with the kernel flipped in space and its in/out axes swapped:
 * dX[n, i, y, x] = Σ_{o,a,b} dY[n, o, y + p − a, x + p − b] · W[o, i, a, b], padded by k − 1 − p.
 * onnxruntime's Conv is several times faster than its ConvTranspose on the same shapes.
 * undefined (use ConvTranspose) for strides, dilations, groups or pads wider than the kernel.
 */
function fullConvolutionGradient(c: GradContext, w: string, kernel: number[], conv: { strides: number[]; dilations: number[]; pads: number[]; group: number }): string | undefined {
  const padsOut = [0, 1, 2, 3].map((k) => kernel[k % 2] - 1 - conv.pads[k]);
  if (conv.group !== 1 || conv.strides.some((v) => v !== 1) || conv.dilations.some((v) => v !== 1) || padsOut.some((p) => p < 0)) return undefined;
  const END = Number.MIN_SAFE_INTEGER;
  const swapped = c.op('Transpose', [w], { perm: ints([1, 0, 2, 3]) }); // [in, out, kh, kw]
  const flipped = c.op('Slice', [swapped, c.int64s([-1, -1]), c.int64s([END, END]), c.int64s([2, 3]), c.int64s([-1, -1])]);
  return c.op('Conv', [dy(c)!, flipped], { kernel_shape: ints(kernel), pads: ints(padsOut) });
}

/**
 * dW[o, i, a, b] = Σ_{n,y,x} dY[n, o, y, x] · Xpad[n, i, y·s + a·d, x·s + b·d], as matrix products
 * over im2col columns. The columns come from one depthwise convolution of X with one-hot kernels
 * (channel i's output i·kh·kw + a·kw + b copies the window cell (a, b), with the conv's own
 * strides, dilations and pads): cols [n, in·kh·kw, y·x]. Then per example cols · dYᵀ [n, in·kh·kw,
 * out], summed over n. onnxruntime runs this several ops faster than slicing the kh·kw shifted
 * windows and concatenating them (fixture CNN conv2, batch 64: 1.97 → 1.41 ms at 1 thread, 1.77 →
 * 0.91 ms at 2).
 */
function convWeightGradient(c: GradContext, x: string, dyPart: string, shape: { inChannels: number; outChannels: number; kernel: number[]; strides: number[]; dilations: number[]; pads: number[] }, dtypeOf = x): string {
  const { inChannels, outChannels, kernel, strides, dilations, pads } = shape;
  const cells = kernel[0] * kernel[1];
  const oneHot = new Array<number>(inChannels * cells * cells).fill(0);
  for (let channel = 0; channel < inChannels; channel++) for (let cell = 0; cell < cells; cell++) oneHot[(channel * cells + cell) * cells + cell] = 1;
  const columns = c.op('Conv', [x, c.constant(oneHot, [inChannels * cells, 1, kernel[0], kernel[1]], dtypeOf)], {
    group: int(inChannels), kernel_shape: ints(kernel), strides: ints(strides), dilations: ints(dilations), pads: ints(pads),
  }); // [n, in·kh·kw, y, x]
  const flatColumns = c.op('Reshape', [columns, c.int64s([0, inChannels * cells, -1])]); // [n, in·kh·kw, y·x]
  const dyRows = c.op('Transpose', [c.op('Reshape', [dyPart, c.int64s([0, outChannels, -1])])], { perm: ints([0, 2, 1]) }); // [n, y·x, out]
  const perExample = c.op('MatMul', [flatColumns, dyRows]); // [n, in·kh·kw, out]
  const summed = c.reduceSum(perExample, [0], false); // [in·kh·kw, out]
  return c.op('Reshape', [c.op('Transpose', [summed], { perm: ints([1, 0]) }), c.int64s([outChannels, inChannels, kernel[0], kernel[1]])]); // [out, in, kh, kw]
}

/**
 * SoftmaxCrossEntropyLoss over scores [N, C] (class weights aside): with p = softmax(scores) =
 * e^log_prob and y the one-hot labels, row i's loss −log p_{i,yᵢ} has gradient p_i − y_i, so
 *   mean:  dS = (p − y)·dL / n,   sum: dS = (p − y)·dL,   none: dS = (p − y)·dLᵢ,
 * where rows whose label is ignore_index get 0 and n counts the others. A gradient reaching the
 * log_prob output adds LogSoftmax's: dlogp − p·Σ_c dlogp.
 */
function softmaxCrossEntropyGradient(c: GradContext): string | undefined {
  if (!c.needs(0)) return undefined;
  if (c.x(2)) throw new AutodiffError(`SoftmaxCrossEntropyLoss with class weights (${c.describe()}) has no gradient rule.`);
  if (c.rank(c.x(0)) !== 2) throw new AutodiffError(`SoftmaxCrossEntropyLoss over scores of rank ${c.rank(c.x(0))} (${c.describe()}) has no gradient rule: only [N, C] scores have one.`);
  const [scores, labels] = [c.x(0), c.x(1)];
  const probabilities = c.op('Exp', [c.y(1)]);
  const grads: string[] = [];
  if (c.dy(0)) {
    const depth = c.op('Slice', [c.op('Shape', [scores]), c.int64s([1]), c.int64s([2])]);
    // onnxruntime's OneHot makes float32 but not float64 values
    const oneHot = c.op('OneHot', [labels, depth, c.floats([0, 1])], { axis: int(-1) }); // [N, C]
    let difference = c.sub(probabilities, c.dtype(scores) === 'float64' ? c.op('Cast', [oneHot], { to: int(11) }) : oneHot);
    const ignored = c.attr('ignore_index') ? c.attrInt('ignore_index', 0) : undefined;
    const kept = ignored === undefined ? undefined : c.op('Cast', [c.op('Not', [c.op('Equal', [labels, c.int64s([ignored])])])], { to: int(c.dtype(scores) === 'float64' ? 11 : 1) }); // [N]
    if (kept) difference = c.mul(difference, c.unsqueeze(kept, [1]));
    const reduction = c.attrString('reduction', 'mean');
    if (reduction === 'none') grads.push(c.mul(difference, c.unsqueeze(dy(c), [1])));
    else if (reduction === 'sum') grads.push(c.mul(difference, dy(c)));
    else {
      const count = kept ? c.reduceSum(kept, [0], false) : c.op('Cast', [c.op('Size', [labels])], { to: int(c.dtype(scores) === 'float64' ? 11 : 1) });
      grads.push(c.mul(difference, c.div(dy(c), count)));
    }
  }
  const dLogProbabilities = c.dy(1);
  if (dLogProbabilities) grads.push(c.sub(dLogProbabilities, c.mul(probabilities, c.reduceSum(dLogProbabilities, [1], true))));
  return grads.length === 2 ? c.add(grads[0], grads[1]) : grads[0];
}

/**
 * dX routes each dY to the input position that won its window: the first maximum in row-major
 * window order, as onnxruntime's and PyTorch's indices name it (onnxruntime's indices count over
 * the flattened input). Windows that cannot overlap (unpoolable) each route to a different
 * position, so MaxUnpool places them (onnxruntime's float kernel is about 4× faster than a
 * scatter); otherwise, and for float64, ScatterElements adds them up. (Routing tiling windows
 * without indices — the input's kh·kw strided phases compared with the maximum — left the forward
 * MaxPool on onnxruntime's fast kernel, 1.12 → 0.15 ms, but its strided Slices, masks and
 * interleaving cost 1.5 ms: slower overall.)
 */
function maxPoolGradient(c: GradContext): string {
  if (c.attrInt('storage_order', 0) !== 0) throw new AutodiffError(`MaxPool with storage_order=1 (${c.describe()}) has no gradient rule.`);
  if (unpoolable(c)) return unpool(c, dy(c), c.x(0));
  const flatZeros = c.op('Reshape', [c.zerosLike(c.x(0)), c.int64s([-1])]);
  const scattered = c.op('ScatterElements', [flatZeros, c.op('Reshape', [c.y(1), c.int64s([-1])]), c.op('Reshape', [dy(c), c.int64s([-1])])], { axis: int(0), reduction: str('add') });
  return c.reshapeLike(scattered, c.x(0));
}

/** Whether a MaxPool's windows cannot overlap (strides ≥ kernel, undilated) and MaxUnpool can route its float32 gradient. */
export function unpoolable(c: GradContext): boolean {
  const kernel = c.attrInts('kernel_shape')!;
  const strides = c.attrInts('strides') ?? kernel.map(() => 1);
  return c.node.opType === 'MaxPool' && c.attrInt('storage_order', 0) === 0 && (c.attrInts('dilations') ?? []).every((d) => d === 1)
    && strides.every((s, k) => s >= kernel[k]) && c.dtype(c.x(0)) === 'float32';
}

/** `pooled` (shaped like the MaxPool's output) placed at the indices of the winners, zeros elsewhere, shaped like `like`. */
function unpool(c: GradContext, pooled: string, like: string): string {
  const kernel = c.attrInts('kernel_shape')!;
  return c.op('MaxUnpool', [pooled, tilingWinners(c) ?? c.y(1), c.op('Shape', [like])], {
    kernel_shape: ints(kernel), strides: ints(c.attrInts('strides') ?? kernel.map(() => 1)), pads: ints(c.attrInts('pads') ?? kernel.flatMap(() => [0, 0])),
  });
}

/**
 * The flat input index of each window's winner when square k×k windows tile the input (stride k,
 * no pads, height and width multiples of k), found without MaxPool's indices output: with it
 * onnxruntime runs a branchy kernel (fixture CNN pool1: 1.2 ms, against 0.12 ms without).
 * SpaceToDepth lays each window's cells out as k² phase planes in row-major window order, phase
 * a·k + b holding cell (a, b); the winner is the first phase equal to the pooled maximum (ties to
 * the first, as onnxruntime's and PyTorch's indices), found by a chain of Where over the phases'
 * offsets a·W + b, added to the window's own first cell r·k·W + k·j, where r counts window rows
 * over batch, channel and height, and j is the window's column. undefined when the windows do not
 * tile the input that way, or when the graph may run on several threads: onnxruntime splits
 * MaxPool's windows over its threads but runs SpaceToDepth on one, and the chain's small ops gain
 * nothing from a second (fixture CNN step, 2 threads: pool1 1.0 ms with indices, 1.7 ms this way).
 */
function tilingWinners(c: GradContext): string | undefined {
  if (c.threads !== 1) return undefined;
  const x = c.x(0);
  const shape = c.shape(x);
  const kernel = c.attrInts('kernel_shape')!;
  const k = kernel[0];
  const [height, width] = shape.slice(2).map(Number);
  const tiles = shape.length === 4 && kernel[1] === k && k > 1 && (c.attrInts('strides') ?? [1, 1]).every((stride) => stride === k)
    && (c.attrInts('pads') ?? [0]).every((pad) => pad === 0) && height % k === 0 && width % k === 0;
  if (!tiles) return undefined;
  const y = c.y(0);
  const channels = Number(shape[1]);
  const [rows, columns] = [height / k, width / k];
  const phases = c.opN('Split', [c.op('Reshape', [c.op('SpaceToDepth', [x], { blocksize: int(k) }), c.int64s([0, k * k, channels, rows, columns])]), c.int64s(new Array(k * k).fill(1))], { axis: int(1) }, k * k);
  const maximum = c.unsqueeze(y, [1]);
  let offset = c.scalar((k - 1) * width + k - 1, x); // the last phase, when no earlier one holds the maximum
  for (let phase = k * k - 2; phase >= 0; phase--) {
    offset = c.op('Where', [c.op('Equal', [phases[phase], maximum]), c.scalar(Math.floor(phase / k) * width + (phase % k), x), offset]);
  }
  const windowRows = c.op('Div', [c.op('Size', [y]), c.int64(columns)]);
  const rowStarts = c.mul(c.op('Range', [c.int64(0), windowRows, c.int64(1)]), c.int64(k * width));
  const starts = c.add(c.unsqueeze(rowStarts, [1]), c.int64s(Array.from({ length: columns }, (_, j) => k * j))); // [window rows, columns]
  return c.add(c.reshapeLike(starts, y), c.reshapeLike(c.op('Cast', [offset], { to: int(7) }), y));
}

/**
 * MaxPool(Relu(X)) over windows that cannot overlap, the pair at once (the walker calls it when
 * nothing else reads the Relu): dX = MaxUnpool(dY·[Y > 0]). The routed position holds the
 * window's maximum Y, so its Relu input is positive exactly when Y > 0; masking the pooled
 * gradient instead of the unpooled one touches a quarter of the values under 2×2 pooling.
 */
export function reluMaxPoolGradient(c: GradContext): string {
  const y = c.y(0);
  const masked = c.op('Where', [c.op('Greater', [y, c.scalar(0, y)]), dy(c), c.scalar(0, y)]);
  // shaped like the Relu's output, not its input: a value read only by the Relu lets onnxruntime fuse it into its producer (Conv + Relu)
  return unpool(c, masked, c.x(0));
}

/** dX = ConvTranspose(dY / count, ones kernel), per channel; count is the kernel area, or the number of real (unpadded) cells when count_include_pad=0. */
function averagePoolGradient(c: GradContext): string {
  const x = c.x(0);
  const xShape = c.shape(x).map(Number);
  if (xShape.length !== 4) throw new AutodiffError(`AveragePool over ${xShape.length - 2} spatial axes (${c.describe()}) has no gradient rule.`);
  if (c.attrString('auto_pad', 'NOTSET') !== 'NOTSET') throw new AutodiffError(`AveragePool with auto_pad (${c.describe()}) has no gradient rule.`);
  const kernel = c.attrInts('kernel_shape')!;
  const strides = c.attrInts('strides') ?? [1, 1];
  const dilations = c.attrInts('dilations') ?? [1, 1];
  const pads = c.attrInts('pads') ?? [0, 0, 0, 0];
  const channels = xShape[1];
  const outSpatial = c.shape(c.y(0)).slice(2).map(Number);
  const area = kernel[0] * kernel[1];
  const tiles = [0, 1].every((k) => strides[k] === kernel[k] && dilations[k] === 1 && outSpatial[k] * kernel[k] === xShape[2 + k]) && pads.every((p) => p === 0);
  if (tiles && outSpatial[1] <= 32) return tiledAveragePoolGradient(c, kernel, outSpatial);
  let scaled = c.div(dy(c), c.scalar(area, x));
  if (c.attrInt('count_include_pad', 0) === 0 && pads.some((p) => p > 0)) {
    // real cells per window = AveragePool(ones, counting pads) · area
    const ones = c.add(c.zerosLike(x), c.scalar(1, x));
    const dilated = dilations.some((d) => d !== 1) ? ints(dilations) : undefined; // the attribute exists from opset 19 only
    const counted = c.op('AveragePool', [ones], { kernel_shape: ints(kernel), strides: ints(strides), pads: ints(pads), dilations: dilated, count_include_pad: int(1), ceil_mode: int(c.attrInt('ceil_mode', 0)) });
    scaled = c.div(dy(c), c.mul(counted, c.scalar(area, x)));
  }
  const weights = c.constant(new Array(channels * area).fill(1), [channels, 1, kernel[0], kernel[1]], x);
  const outputPadding = [0, 1].map((k) => xShape[2 + k] - ((outSpatial[k] - 1) * strides[k] - pads[k] - pads[k + 2] + (kernel[k] - 1) * dilations[k] + 1));
  if (outputPadding.some((p) => p < 0 || p >= Math.max(strides[0], dilations[0], 1) + 1)) {
    throw new AutodiffError(`AveragePool ${c.describe()} with ceil_mode windows past the input has no gradient rule.`);
  }
  return c.op('ConvTranspose', [scaled, weights], { strides: ints(strides), pads: ints(pads), dilations: ints(dilations), group: int(channels), output_padding: ints(outputPadding), kernel_shape: ints(kernel) });
}

/**
 * AveragePool whose windows tile the input exactly (strides = kernel, no pads): each input cell
 * gets its window's dY / area. Rows of dY [.., Wo] times E [Wo, Wi] with E[j, j·kw + t] = 1/area
 * spread each value over its window's columns in one matrix product; kh copies of each row then
 * fill its window's rows. (Fixture CNN, [64, 16, 7, 7] → [64, 16, 14, 14]: 0.10 ms against 0.31 ms
 * for the grouped ConvTranspose.) The product costs Wo multiply-adds per cell, so the rule asks
 * Wo ≤ 32.
 */
function tiledAveragePoolGradient(c: GradContext, kernel: number[], outSpatial: number[]): string {
  const x = c.x(0);
  const [outWidth, inWidth] = [outSpatial[1], outSpatial[1] * kernel[1]];
  const spread = new Array<number>(outWidth * inWidth).fill(0); // E [Wo, Wi]
  for (let j = 0; j < outWidth; j++) for (let t = 0; t < kernel[1]; t++) spread[j * inWidth + j * kernel[1] + t] = 1 / (kernel[0] * kernel[1]);
  const widened = c.op('MatMul', [c.op('Reshape', [dy(c), c.int64s([-1, 1, outWidth])]), c.constant(spread, [outWidth, inWidth], x)]); // [N·C·Ho, 1, Wi]
  const tall = kernel[0] === 1 ? widened : c.op('Concat', new Array(kernel[0]).fill(widened), { axis: int(1) }); // [N·C·Ho, kh, Wi]
  return c.reshapeLike(tall, x);
}

/** ReduceSum/ReduceMean: dX = dY re-expanded over the reduced axes (÷ the count for a mean). */
function reduceGradient(c: GradContext, isMean: boolean): Grad[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const axesFromInput = c.opset >= 18 || (c.node.opType === 'ReduceSum' && c.opset >= 13);
  const axesValues = axesFromInput ? c.constantOrUndefined(c.x(1)) : c.attrInts('axes');
  if (axesFromInput && c.x(1) && !axesValues) throw new AutodiffError(`${c.describe()} reduces over axes computed at run time: no gradient rule.`);
  const noopWhenEmpty = c.attrInt('noop_with_empty_axes', 0) === 1;
  if ((!axesValues || axesValues.length === 0) && noopWhenEmpty) return [dy(c)];
  const axes = !axesValues || axesValues.length === 0 ? [...Array(rank).keys()] : axesValues.map((axis) => axisOf(axis, rank));
  const kept = c.attrInt('keepdims', 1) === 1 ? dy(c) : c.unsqueeze(dy(c), [...axes].sort((a, b) => a - b));
  let expanded = c.op('Expand', [kept, c.op('Shape', [x])]);
  if (isMean) {
    const count = c.div(c.op('Cast', [c.op('Size', [x])], { to: int(castCode(c.dtype(x))) }), c.op('Cast', [c.op('Size', [c.y(0)])], { to: int(castCode(c.dtype(x))) }));
    expanded = c.div(expanded, count);
  }
  return [expanded];
}

/** The axes a Reduce* node reduces (constant), every axis when none are given. */
function reducedAxes(c: GradContext): number[] {
  const x = c.x(0);
  const rank = c.rank(x);
  const axesFromInput = c.opset >= 18;
  const axesValues = axesFromInput ? c.constantOrUndefined(c.x(1)) : c.attrInts('axes');
  if (axesFromInput && c.x(1) && !axesValues) throw new AutodiffError(`${c.describe()} reduces over axes computed at run time: no gradient rule.`);
  if (c.attrInt('noop_with_empty_axes', 0) === 1 && (!axesValues || axesValues.length === 0)) throw new AutodiffError(`${c.describe()} with noop_with_empty_axes and no axes has no gradient rule.`);
  return !axesValues || axesValues.length === 0 ? [...Array(rank).keys()] : axesValues.map((axis) => axisOf(axis, rank));
}

/** A reduced value (dY or Y) broadcast back over X's shape: unsqueezed where keepdims was 0, then expanded. */
function reducedLike(c: GradContext, reduced: string): string {
  const kept = c.attrInt('keepdims', 1) === 1 ? reduced : c.unsqueeze(reduced, [...reducedAxes(c)].sort((a, b) => a - b));
  return c.op('Expand', [kept, c.op('Shape', [c.x(0)])]);
}

/** ReduceMax/ReduceMin: dY shared equally among the elements equal to the extremum (PyTorch's amax/amin rule). */
function extremeReduceGradient(c: GradContext): string {
  const x = c.x(0);
  const hits = c.op('Cast', [c.op('Equal', [x, reducedLike(c, c.y(0))])], { to: int(castCode(c.dtype(x))) });
  const axes = reducedAxes(c);
  const count = c.op('ReduceSum', [hits, c.int64s(axes)], { keepdims: int(1) });
  return c.div(c.mul(reducedLike(c, dy(c)), hits), c.op('Expand', [count, c.op('Shape', [x])]));
}

/** Slice with step 1: dX = dY padded back with zeros to X's shape; the pads come from the (possibly run-time) starts and ends. */
function sliceGradient(c: GradContext): string {
  const x = c.x(0);
  const rank = c.rank(x);
  const steps = c.constantOrUndefined(c.x(4));
  if (steps && steps.some((step) => step !== 1)) throw new AutodiffError(`Slice with steps other than 1 (${c.describe()}) has no gradient rule.`);
  if (c.x(4) && !steps) throw new AutodiffError(`Slice with run-time steps (${c.describe()}) has no gradient rule.`);
  const axesValues = c.constantOrUndefined(c.x(3));
  if (c.x(3) && !axesValues) throw new AutodiffError(`Slice with run-time axes (${c.describe()}) has no gradient rule.`);
  const axes = (axesValues ?? [...Array(rank).keys()]).map((axis) => axisOf(axis, rank));
  // Per sliced axis: dim = Shape(X)[axis]; start, end normalised (negative from the end) and clamped to [0, dim].
  const sizes = c.op('Gather', [c.op('Shape', [x]), c.int64s(axes)]);
  const clamp = (value: string) => {
    const wrapped = c.op('Where', [c.op('Less', [value, c.int64s([0])]), c.add(value, sizes), value]);
    return c.op('Max', [c.op('Min', [wrapped, sizes]), c.int64s([0])]);
  };
  const asInt64 = (value: string) => c.op('Cast', [value], { to: int(7) });
  const start = clamp(asInt64(c.x(1)));
  const end = c.op('Max', [clamp(asInt64(c.x(2))), start]);
  // pads = [begin₀..begin_{r−1}, end₀..end_{r−1}], scattered at the sliced axes.
  const zeros = c.int64s(Array(2 * rank).fill(0));
  const positions = c.int64s([...axes, ...axes.map((axis) => axis + rank)]);
  const pads = c.op('ScatterElements', [zeros, positions, c.op('Concat', [start, c.sub(sizes, end)], { axis: int(0) })], { axis: int(0) });
  return c.op('Pad', [dy(c), pads], { mode: str('constant') });
}

/** Constant padding: dX = the unpadded window of dY. */
function padGradient(c: GradContext): string {
  if (c.attrString('mode', 'constant') !== 'constant') throw new AutodiffError(`Pad in mode '${c.attrString('mode', 'constant')}' (${c.describe()}) has no gradient rule: only constant padding has one.`);
  const x = c.x(0);
  const rank = c.rank(x);
  const pads = c.constantInput(1, 'pads');
  const axes = c.x(3) ? c.constantInput(3, 'axes').map((axis) => axisOf(axis, rank)) : [...Array(rank).keys()];
  if (pads.some((pad) => pad < 0)) throw new AutodiffError(`Pad with negative pads (${c.describe()}) has no gradient rule.`);
  const begins = axes.map((_, k) => pads[k]);
  const ends = c.op('Add', [c.op('Gather', [c.op('Shape', [x]), c.int64s(axes)]), c.int64s(begins)]);
  return c.op('Slice', [dy(c), c.int64s(begins), ends, c.int64s(axes)]);
}

/**
 * Gather: dData = scatter-add of dY at the gathered indices (negative ones count from the end).
 * Along axis a, data is viewed with axis a first (Transpose), dY with its index axes first, so
 * one ScatterND adds every gathered slice back; axis 0 (embedding lookups) needs no transposes.
 */
function gatherGradient(c: GradContext): string {
  const data = c.x(0);
  const rank = c.rank(data);
  const indexRank = c.rank(c.x(1));
  const axis = axisOf(c.attrInt('axis', 0), rank);
  const indices = c.op('Cast', [c.x(1)], { to: int(7) }); // int64
  const size = c.op('Gather', [c.op('Shape', [data]), c.int64s([axis])]);
  const wrapped = c.reshapeLike(c.op('Where', [c.op('Less', [indices, c.int64s([0])]), c.add(indices, size), indices]), indices); // keeps a scalar index scalar
  const dataPerm = [axis, ...[...Array(rank).keys()].filter((k) => k !== axis)];
  const dyPerm = [...Array(indexRank).keys()].map((k) => axis + k).concat([...Array(axis).keys()], [...Array(rank - axis - 1).keys()].map((k) => axis + indexRank + k));
  const moved = (value: string, perm: number[]) => (perm.every((p, k) => p === k) ? value : c.op('Transpose', [value], { perm: ints(perm) }));
  const scattered = c.op('ScatterND', [moved(c.zerosLike(data), dataPerm), c.unsqueeze(wrapped, [indexRank]), moved(dy(c), dyPerm)], { reduction: str('add') });
  return moved(scattered, dataPerm.map((_, k) => dataPerm.indexOf(k)));
}
