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
  if (c.needs(0))
    grads[0] = {
      grad: c.op('MatMul', [dy(c), swapLast(c, b, rankB)]),
      shape: [...batch, ...c.shape(a).slice(-2)],
    };
  if (c.needs(1) && rankB === 2 && rankA > 2) {
    // A weight shared by every batch row: dB = Σ_rows Aᵀ·dY as one [K, rows]·[rows, N] product, not a
    // batched product summed afterwards (which materialises one K×N matrix per row).
    const rows = (value: string) =>
      c.op('Reshape', [
        value,
        c.op(
          'Concat',
          [
            c.int64s([-1]),
            c.op('Slice', [c.op('Shape', [value]), c.int64s([-1]), c.int64s([rankA])]),
          ],
          { axis: int(0) },
        ),
      ]);
    grads[1] = c.op('Gemm', [rows(a), rows(dy(c))], { transA: int(1) });
  } else if (c.needs(1))
    grads[1] = {
      grad: c.op('MatMul', [swapLast(c, a, rankA), dy(c)]),
      shape: [...batch, ...c.shape(b).slice(-2)],
    };
  return grads;
}

/** The last two axes swapped. */
function swapLast(c: GradContext, value: string, rank: number): string {
  return c.op('Transpose', [value], {
    perm: ints([...Array(rank - 2).keys(), rank - 1, rank - 2]),
  });
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
  if (rankB === 1) {
    grad = c.unsqueeze(grad, [liftedShape.length]);
    liftedShape = [...liftedShape, 1];
  }
  if (rankA === 1) {
    grad = c.unsqueeze(grad, [liftedShape.length - 1]);
    liftedShape = [...liftedShape.slice(0, -1), 1, ...liftedShape.slice(-1)];
  } // [.., M, N]
  const batch = liftedShape.slice(0, -2);
  const grads: Grad[] = [undefined, undefined];
  if (c.needs(0)) {
    const lifted = c.op('MatMul', [grad, swapLast(c, liftedB, Math.max(rankB, 2))]); // [.., M, K]
    grads[0] =
      rankA === 1
        ? { grad: c.op('Squeeze', [lifted, c.int64s([-2])]), shape: [...batch, ...c.shape(a)] }
        : { grad: lifted, shape: [...batch, ...c.shape(a).slice(-2)] };
  }
  if (c.needs(1)) {
    const lifted = c.op('MatMul', [swapLast(c, liftedA, Math.max(rankA, 2)), grad]); // [.., K, N]
    grads[1] =
      rankB === 1
        ? { grad: c.op('Squeeze', [lifted, c.int64s([-1])]), shape: [...batch, ...c.shape(b)] }
        : { grad: lifted, shape: [...batch, ...c.shape(b).slice(-2)] };
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
  const gemm = (p: string, q: string, tA: number, tB: number) =>
    c.op('Gemm', [p, q], { alpha: float(alpha), transA: int(tA), transB: int(tB) });
  return [
    // dA = α·dY·op(B)ᵀ, or its transpose when A was transposed
    c.needs(0)
      ? transA
        ? gemm(b, dy(c), transB, 1)
        : gemm(dy(c), b, 0, transB ? 0 : 1)
      : undefined,
    // dB = α·op(A)ᵀ·dY, or its transpose when B was transposed
    c.needs(1)
      ? transB
        ? gemm(dy(c), a, 1, transA)
        : gemm(a, dy(c), transA ? 0 : 1, 0)
      : undefined,
    c.needs(2) ? c.broadcast(beta === 1 ? dy(c) : c.mul(dy(c), c.scalar(beta, a))) : undefined, // dC = β·dY
  ];
}

/**
 * Einsum with no index repeated within an operand: each operand's gradient is the einsum of dY with
 * the other operands back to its own subscripts — for Y = einsum('ab,bc->ac', A, B): dA =
 * einsum('ac,bc->ab', dY, B), and with three operands dA = einsum('out,B,C->A'). An index of an
 * operand found neither in the output nor in another operand was summed away: its gradient is the
 * same along it (expanded back). Ellipses become letters (right-aligned, as they broadcast) and an
 * implicit output the indices seen once, in alphabetical order; an operand broadcast along an
 * ellipsis axis gets a gradient the walker sums back.
 */
function einsumGradient(c: GradContext): Grad[] {
  const { operands, output } = explicitEinsum(c);
  const sizes = new Map<string, number | string>();
  operands.forEach((subscripts, k) =>
    [...subscripts].forEach((index, axis) => {
      const dim = c.shape(c.x(k))[axis];
      if (!sizes.has(index) || sizes.get(index) === 1) sizes.set(index, dim);
    }),
  );
  return operands.map((own, k) => {
    if (!c.needs(k)) return undefined;
    const others = operands.filter((_, j) => j !== k);
    const available = new Set([...output, ...others.join('')]);
    const kept = [...own].filter((index) => available.has(index)).join('');
    let grad = c.op(
      'Einsum',
      [dy(c), ...operands.map((_, j) => c.x(j)).filter((_, j) => j !== k)],
      { equation: str(`${[output, ...others].join(',')}->${kept}`) },
    );
    if (kept !== own) {
      const missing = [...own]
        .map((index, axis) => (available.has(index) ? -1 : axis))
        .filter((axis) => axis >= 0);
      grad = c.op('Expand', [c.unsqueeze(grad, missing), c.op('Shape', [c.x(k)])]);
    }
    return {
      grad,
      shape: [...own].map((index) =>
        available.has(index) ? sizes.get(index)! : c.shape(c.x(k))[own.indexOf(index)],
      ),
    };
  });
}

/** The equation with ellipses spelled out as letters and the output made explicit; refuses a repeated index within an operand. */
function explicitEinsum(c: GradContext): { operands: string[]; output: string } {
  const equation = c.attrString('equation', '').replace(/\s+/g, '');
  const [inputsPart, outputPart] = equation.split('->');
  const written = inputsPart.split(',');
  const unused = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'].filter(
    (letter) => !equation.includes(letter),
  );
  const ellipsisRanks = written.map((subscripts, k) =>
    subscripts.includes('...') ? c.rank(c.x(k)) - subscripts.replace('...', '').length : 0,
  );
  const ellipsis = unused.slice(0, Math.max(0, ...ellipsisRanks)).join(''); // the widest ellipsis, right-aligned in each operand
  const spell = (subscripts: string, rank: number) =>
    subscripts.replace('...', ellipsis.slice(ellipsis.length - rank));
  const operands = written.map((subscripts, k) => spell(subscripts, ellipsisRanks[k]));
  const once = [...new Set(operands.join(''))]
    .filter((index) => !ellipsis.includes(index) && operands.join('').split(index).length === 2)
    .sort();
  const output =
    outputPart === undefined ? ellipsis + once.join('') : spell(outputPart, ellipsis.length);
  if ([...operands, output].some((subscripts) => new Set(subscripts).size !== subscripts.length)) {
    throw new AutodiffError(
      `Einsum '${equation}' (${c.describe()}) has no gradient rule: an index repeated within an operand (a diagonal or trace) has none.`,
    );
  }
  return { operands, output };
}
