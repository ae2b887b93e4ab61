/** Matrix products: MatMul, Gemm, Einsum. */
import { float, int, ints, string as str } from '../../graph/builder.ts';
import { AutodiffError } from '../errors.ts';
import type { Grad, GradContext } from '../context.ts';
import { dy, type GradientRule } from './shared.ts';

export const LINEAR_ALGEBRA_RULES: Record<string, GradientRule> = {
  MatMul: (c) => matMulGradient(c),
  Gemm: (c) => gemmGradient(c),
  Einsum: (c) => einsumGradient(c),
};

/** Y = A·B with NumPy batching: dA = dY·Bᵀ, dB = Aᵀ·dY (batched shapes; the walker sums broadcast batch axes). */
function matMulGradient(c: GradContext): Grad[] {
  const [a, b] = [c.x(0), c.x(1)];
  const [rankA, rankB] = [c.rank(a), c.rank(b)];
  if (rankA < 2 || rankB < 2) return vectorMatMulGradient(c);
  const outShape = c.shape(c.y(0));
  const batch = outShape.slice(0, -2);
  const grads: Grad[] = [undefined, undefined];
  if (c.needs(0)) grads[0] = { grad: c.op('MatMul', [dy(c), swapLast(c, b, rankB)]), shape: [...batch, ...c.shape(a).slice(-2)] };
  if (c.needs(1) && rankB === 2 && rankA > 2) {
    // A weight shared by every batch row: dB = Σ_rows Aᵀ·dY as one [K, rows]·[rows, N] product, not a
    // batched product summed afterwards (which materialises one K×N matrix per row).
    const rows = (value: string) => c.op('Reshape', [value, c.op('Concat', [c.int64s([-1]), c.op('Slice', [c.op('Shape', [value]), c.int64s([-1]), c.int64s([rankA])])], { axis: int(0) })]);
    grads[1] = c.op('Gemm', [rows(a), rows(dy(c))], { transA: int(1) });
  } else if (c.needs(1)) grads[1] = { grad: c.op('MatMul', [swapLast(c, a, rankA), dy(c)]), shape: [...batch, ...c.shape(b).slice(-2)] };
  return grads;
}

/** The last two axes swapped. */
function swapLast(c: GradContext, value: string, rank: number): string {
  return c.op('Transpose', [value], { perm: ints([...Array(rank - 2).keys(), rank - 1, rank - 2]) });
}

/**
 * MatMul with a vector operand (NumPy's rule): a vector A [K] acts as [1, K] and a vector B [K] as
 * [K, 1], the added axis dropped from Y. dY gets the dropped axes back, the matrix rule runs on the
 * lifted operands (dA = dY·Bᵀ, dB = Aᵀ·dY), and the added axis is dropped from each gradient; the
 * walker sums the batch axes.
 */
function vectorMatMulGradient(c: GradContext): Grad[] {
  const [a, b] = [c.x(0), c.x(1)];
  const [rankA, rankB] = [c.rank(a), c.rank(b)];
  const liftedA = rankA === 1 ? c.unsqueeze(a, [0]) : a; // [.., M, K]
  const liftedB = rankB === 1 ? c.unsqueeze(b, [1]) : b; // [.., K, N]
  let liftedShape = [...c.shape(c.y(0))];
  let grad = dy(c);
  if (rankB === 1) { grad = c.unsqueeze(grad, [liftedShape.length]); liftedShape = [...liftedShape, 1]; }
  if (rankA === 1) { grad = c.unsqueeze(grad, [liftedShape.length - 1]); liftedShape = [...liftedShape.slice(0, -1), 1, ...liftedShape.slice(-1)]; } // [.., M, N]
  const batch = liftedShape.slice(0, -2);
  const grads: Grad[] = [undefined, undefined];
  if (c.needs(0)) {
    const lifted = c.op('MatMul', [grad, swapLast(c, liftedB, Math.max(rankB, 2))]); // [.., M, K]
    grads[0] = rankA === 1 ? { grad: c.op('Squeeze', [lifted, c.int64s([-2])]), shape: [...batch, ...c.shape(a)] } : { grad: lifted, shape: [...batch, ...c.shape(a).slice(-2)] };
  }
  if (c.needs(1)) {
    const lifted = c.op('MatMul', [swapLast(c, liftedA, Math.max(rankA, 2)), grad]); // [.., K, N]
    grads[1] = rankB === 1 ? { grad: c.op('Squeeze', [lifted, c.int64s([-1])]), shape: [...batch, ...c.shape(b)] } : { grad: lifted, shape: [...batch, ...c.shape(b).slice(-2)] };
  }
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
