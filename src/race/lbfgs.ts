/**
 * Limited-memory BFGS (Nocedal 1980; Nocedal & Wright, Numerical Optimization, alg. 7.4 and 7.5)
 * for smooth convex objectives: the two-loop recursion turns the last `memory` steps s and
 * gradient changes y into a quasi-Newton direction, and a backtracking line search accepts the
 * first step length with sufficient decrease (Armijo: f(x + t·d) ≤ f(x) + 10⁻⁴ t ∇f·d).
 */

export interface Objective {
  /** The value at x, writing the gradient into `gradient`. */
  (x: Float64Array, gradient: Float64Array): number;
}

export interface LbfgsOptions {
  memory?: number;
  /** Stop when ‖∇f‖∞ falls below it. */
  gradientTolerance?: number;
  maxIterations?: number;
  /** Called after every iteration; returning false stops (the time budget). */
  onIteration?: (iteration: number, value: number) => boolean;
}

const dot = (a: Float64Array, b: Float64Array) =>
  a.reduce((sum, value, i) => sum + value * b[i], 0);

export function minimizeLbfgs(
  f: Objective,
  start: Float64Array,
  options: LbfgsOptions = {},
): Float64Array {
  const memory = options.memory ?? 10;
  const tolerance = options.gradientTolerance ?? 1e-6;
  const x = start.slice();
  const gradient = new Float64Array(x.length);
  let value = f(x, gradient);
  const steps: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  for (let iteration = 0; iteration < (options.maxIterations ?? 500); iteration++) {
    if (gradient.every((g) => Math.abs(g) < tolerance)) break;
    const direction = twoLoopDirection(gradient, steps);
    const slope = dot(gradient, direction);
    const candidate = new Float64Array(x.length);
    const candidateGradient = new Float64Array(x.length);
    let step = 1;
    let candidateValue = Infinity;
    for (let tries = 0; tries < 40; tries++, step /= 2) {
      for (let i = 0; i < x.length; i++) candidate[i] = x[i] + step * direction[i];
      candidateValue = f(candidate, candidateGradient);
      if (candidateValue <= value + 1e-4 * step * slope) break;
    }
    if (!(candidateValue < value)) break; // no decrease in 40 halvings: at the optimum to precision
    const s = candidate.map((c, i) => c - x[i]);
    const y = candidateGradient.map((g, i) => g - gradient[i]);
    const sy = dot(s, y);
    if (sy > 1e-12) steps.push({ s, y, rho: 1 / sy }); // curvature condition, else skip the pair
    if (steps.length > memory) steps.shift();
    x.set(candidate);
    gradient.set(candidateGradient);
    value = candidateValue;
    if (options.onIteration && !options.onIteration(iteration, value)) break;
  }
  return x;
}

/** d = −H∇f, H the L-BFGS inverse Hessian approximation scaled by sᵀy / yᵀy of the last pair. */
function twoLoopDirection(
  gradient: Float64Array,
  steps: readonly { s: Float64Array; y: Float64Array; rho: number }[],
): Float64Array {
  const q = gradient.slice();
  const alphas: number[] = [];
  for (let k = steps.length - 1; k >= 0; k--) {
    const { s, y, rho } = steps[k];
    const alpha = rho * dot(s, q);
    alphas[k] = alpha;
    for (let i = 0; i < q.length; i++) q[i] -= alpha * y[i];
  }
  const last = steps[steps.length - 1];
  const scale = last ? 1 / (last.rho * dot(last.y, last.y)) : 1 / Math.max(1, Math.sqrt(dot(q, q)));
  for (let i = 0; i < q.length; i++) q[i] *= scale;
  for (let k = 0; k < steps.length; k++) {
    const { s, y, rho } = steps[k];
    const beta = rho * dot(y, q);
    for (let i = 0; i < q.length; i++) q[i] += (alphas[k] - beta) * s[i];
  }
  return q.map((value) => -value);
}
