/**
 * Elementwise arithmetic and functions of one value. Broadcast gradients are returned
 * output-shaped (`c.broadcast`); the walker reduces them to each input's shape.
 */
import { int } from '../../graph/builder.ts';
import { AutodiffError } from '../errors.ts';
import type { Grad, GradContext } from '../context.ts';
import { dy, type GradientRule, castCode } from './shared.ts';

export const ELEMENTWISE_RULES: Record<string, GradientRule> = {
  Add: (c) => [c.broadcast(dy(c)), c.broadcast(dy(c))], // dA = dY, dB = dY
  Sub: (c) => [c.broadcast(dy(c)), c.needs(1) ? c.broadcast(c.neg(dy(c))) : undefined], // dB = −dY
  Mul: (c) => [
    c.needs(0) ? c.broadcast(c.mul(dy(c), c.x(1))) : undefined,
    c.needs(1) ? c.broadcast(c.mul(dy(c), c.x(0))) : undefined,
  ], // dA = dY·B
  Div: (c) => [
    c.needs(0) ? c.broadcast(c.div(dy(c), c.x(1))) : undefined, // dA = dY / B
    c.needs(1) ? c.broadcast(c.neg(c.div(c.mul(dy(c), c.y(0)), c.x(1)))) : undefined, // dB = −dY·Y / B
  ],
  Neg: (c) => [c.neg(dy(c))],
  Pow: (c) => [
    // dA = dY·B·A^(B−1); for the constant B = 2 (a variance's square) A^1 is A itself, exactly,
    // and onnxruntime's Pow takes its slow general path for exponent 1 (~4 ns an element)
    c.needs(0)
      ? c.broadcast(
          c.mul(
            dy(c),
            c.mul(
              c.x(1),
              isConstantTwo(c.constantOrUndefined(c.x(1)))
                ? c.x(0)
                : c.op('Pow', [c.x(0), c.sub(c.x(1), c.scalar(1, c.x(1)))]),
            ),
          ),
        )
      : undefined,
    // dB = dY·Y·ln A
    c.needs(1) ? c.broadcast(c.mul(dy(c), c.mul(c.y(0), c.op('Log', [c.x(0)])))) : undefined,
  ],
  Sqrt: (c) => [c.div(c.mul(dy(c), c.scalar(0.5, c.x(0))), c.y(0))], // dX = dY / (2Y)
  Exp: (c) => [c.mul(dy(c), c.y(0))], // dX = dY·Y
  Log: (c) => [c.div(dy(c), c.x(0))], // dX = dY / X
  Erf: (c) => [
    c.mul(
      dy(c),
      c.mul(c.scalar(2 / Math.sqrt(Math.PI), c.x(0)), c.op('Exp', [c.neg(c.mul(c.x(0), c.x(0)))])),
    ),
  ], // dX = dY·2/√π·e^(−X²)
  Abs: (c) => [c.mul(dy(c), c.op('Sign', [c.x(0)]))], // dX = dY·sign(X)
  Reciprocal: (c) => [c.neg(c.mul(dy(c), c.mul(c.y(0), c.y(0))))], // dX = −dY·Y²
  Sin: (c) => [c.mul(dy(c), c.op('Cos', [c.x(0)]))], // dX = dY·cos X
  Cos: (c) => [c.neg(c.mul(dy(c), c.op('Sin', [c.x(0)])))], // dX = −dY·sin X
  Tan: (c) => [c.mul(dy(c), c.add(c.scalar(1, c.x(0)), c.mul(c.y(0), c.y(0))))], // dX = dY·(1 + Y²)
  Asin: (c) => [c.div(dy(c), c.op('Sqrt', [c.sub(c.scalar(1, c.x(0)), c.mul(c.x(0), c.x(0)))]))], // dX = dY / √(1 − X²)
  Acos: (c) => [
    c.neg(c.div(dy(c), c.op('Sqrt', [c.sub(c.scalar(1, c.x(0)), c.mul(c.x(0), c.x(0)))]))),
  ], // dX = −dY / √(1 − X²)
  Atan: (c) => [c.div(dy(c), c.add(c.scalar(1, c.x(0)), c.mul(c.x(0), c.x(0))))], // dX = dY / (1 + X²)
  Sinh: (c) => [c.mul(dy(c), c.op('Cosh', [c.x(0)]))], // dX = dY·cosh X
  Cosh: (c) => [c.mul(dy(c), c.op('Sinh', [c.x(0)]))], // dX = dY·sinh X
  Asinh: (c) => [c.div(dy(c), c.op('Sqrt', [c.add(c.mul(c.x(0), c.x(0)), c.scalar(1, c.x(0)))]))], // dX = dY / √(X² + 1)
  Acosh: (c) => [c.div(dy(c), c.op('Sqrt', [c.sub(c.mul(c.x(0), c.x(0)), c.scalar(1, c.x(0)))]))], // dX = dY / √(X² − 1)
  Atanh: (c) => [c.div(dy(c), c.sub(c.scalar(1, c.x(0)), c.mul(c.x(0), c.x(0))))], // dX = dY / (1 − X²)
  // Float Mod is C's fmod (fmod=1): Y = A − B·trunc(A/B), so dA = dY, dB = −dY·trunc(A/B); integer Mod is never differentiated
  Mod: (c) => {
    if (c.attrInt('fmod', 0) !== 1)
      throw new AutodiffError(
        `Mod with fmod=0 on floats (${c.describe()}) has no gradient rule: ONNX defines float Mod with fmod=1 only.`,
      );
    const quotient = c.div(c.x(0), c.x(1));
    const truncated = c.mul(c.op('Sign', [quotient]), c.op('Floor', [c.op('Abs', [quotient])])); // trunc z = sign z·⌊|z|⌋
    return [
      c.needs(0) ? c.broadcast(dy(c)) : undefined,
      c.needs(1) ? c.broadcast(c.neg(c.mul(dy(c), truncated))) : undefined,
    ];
  },
  Clip: (c) => {
    // dX = dY·[min ≤ X ≤ max]; min and max get none
    let pass = dy(c);
    if (c.x(1)) pass = c.op('Where', [c.op('Less', [c.x(0), c.x(1)]), c.scalar(0, c.x(0)), pass]);
    if (c.x(2))
      pass = c.op('Where', [c.op('Greater', [c.x(0), c.x(2)]), c.scalar(0, c.x(0)), pass]);
    return [pass];
  },
  Where: (c) => [
    undefined, // dA = dY where C, dB = dY elsewhere
    c.needs(1) ? c.broadcast(c.op('Where', [c.x(0), dy(c), c.scalar(0, dy(c))])) : undefined,
    c.needs(2) ? c.broadcast(c.op('Where', [c.x(0), c.scalar(0, dy(c)), dy(c)])) : undefined,
  ],
  Sum: (c) => c.node.input.map((_, k) => (c.needs(k) ? c.broadcast(dy(c)) : undefined)), // dXᵢ = dY
  Mean: (c) =>
    c.node.input.map((_, k) =>
      c.needs(k) ? c.broadcast(c.div(dy(c), c.scalar(c.inputCount(), c.x(k)))) : undefined,
    ), // dXᵢ = dY / n
  Max: (c) => extremumGradient(c),
  Min: (c) => extremumGradient(c),
  Identity: (c) => [dy(c)],
  Dropout: (c) => [dropoutGradient(c), undefined, undefined],
  Cast: (c) => [c.op('Cast', [dy(c)], { to: int(castCode(c.dtype(c.x(0)))) })],
  CastLike: (c) => [c.op('Cast', [dy(c)], { to: int(castCode(c.dtype(c.x(0)))) }), undefined], // the type donor gets none
  Expand: (c) => [c.broadcast(dy(c))], // dX = Σ over the expanded axes
};

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

/**
 * Dropout: in inference (training_mode absent or a constant false) Y = X, dX = dY. In training mode
 * Y = X·mask/(1 − r), so dX = dY·mask/(1 − r) with the mask (output 1) of the same run. A training
 * mode computed at run time is refused: the rule cannot tell which holds.
 */
function dropoutGradient(c: GradContext): string {
  const training = c.x(2) ? c.constantOrUndefined(c.x(2)) : [0];
  if (!training)
    throw new AutodiffError(
      `Dropout ${c.describe()} with training_mode computed at run time has no gradient rule: export in eval mode or with a constant training_mode.`,
    );
  if (!training[0]) return dy(c);
  const ratio = c.x(1) ? c.constantInput(1, 'ratio')[0] : 0.5;
  const kept = c.op('Cast', [c.y(1)], { to: int(castCode(c.dtype(c.x(0)))) });
  return c.mul(dy(c), c.mul(kept, c.scalar(1 / (1 - ratio), c.x(0))));
}

function isConstantTwo(values: number[] | undefined): boolean {
  return values?.length === 1 && values[0] === 2;
}
