/**
 * Simultaneous perturbation stochastic approximation (Spall 1992, "Multivariate stochastic
 * approximation using a simultaneous perturbation gradient approximation"): every parameter is
 * perturbed at once by ±c_k (Δ with independent ±1 entries), and two losses give the whole
 * gradient estimate
 *   ĝ_k,i = (L(θ + c_k Δ) − L(θ − c_k Δ)) / (2 c_k Δ_i)
 *   θ_{k+1} = θ_k − a_k ĝ_k,   a_k = a / (k + 1 + A)^0.602,   c_k = c / (k + 1)^0.101
 * (the exponents are Spall's practical choices, "Implementation of the simultaneous perturbation
 * algorithm", 1998, which also sets A to about a tenth of the steps and a so that the first
 * steps move each parameter by a chosen amount: `firstStep` here, from the mean |ĝ_0|).
 */
import { seededRandom } from '../random.ts';
import type { Contender } from './contender.ts';
import { lossOnlyProblem } from './loss-only.ts';
import { runSteps, type NetworkSettings } from './network.ts';

export interface SpsaSettings extends NetworkSettings {
  /** c, the perturbation size at the first step (default 0.05). */
  c?: number;
  /** A, the stability constant of a_k (default 100). */
  stability?: number;
  /** The mean |change| of a parameter at the first step, which sets a (default 0.01). */
  firstStep?: number;
  /** Gradient estimates averaged per step (default 4). */
  estimates?: number;
}

export const spsaGains = (a: number, c: number, stability: number, k: number) => ({
  a: a / (k + 1 + stability) ** 0.602,
  c: c / (k + 1) ** 0.101,
});

/** The SPSA estimate of ∇L at θ: the mean of `estimates` two-sided simultaneous perturbations. */
export async function spsaGradient(
  loss: (parameters: Float32Array) => Promise<number>,
  theta: Float32Array,
  { c, estimates, uniform }: { c: number; estimates: number; uniform: () => number },
): Promise<Float32Array> {
  const gradient = new Float32Array(theta.length);
  const delta = new Int8Array(theta.length);
  const probe = new Float32Array(theta.length);
  for (let e = 0; e < estimates; e++) {
    for (let j = 0; j < theta.length; j++) delta[j] = uniform() < 0.5 ? -1 : 1;
    for (let j = 0; j < theta.length; j++) probe[j] = theta[j] + c * delta[j];
    const plus = await loss(probe);
    for (let j = 0; j < theta.length; j++) probe[j] = theta[j] - c * delta[j];
    const minus = await loss(probe);
    const scale = (plus - minus) / (2 * c * estimates);
    for (let j = 0; j < theta.length; j++) gradient[j] += scale / delta[j]; // 1/Δ_i = Δ_i for ±1
  }
  return gradient;
}

export function spsa(settings: SpsaSettings = {}): Contender {
  return {
    name: 'SPSA',
    family: 'network',
    usesBackprop: false,
    async train(data, options) {
      const problem = await lossOnlyProblem(data, settings, options);
      const { theta } = problem;
      const uniform = seededRandom(options.seed + 2);
      const [c, stability, estimates] = [
        settings.c ?? 0.05,
        settings.stability ?? 100,
        settings.estimates ?? 4,
      ];
      let a = 0;
      await runSteps(options, settings.maxSteps ?? 100_000, async (k) => {
        const loss = problem.nextBatchLoss();
        const gradient = await spsaGradient(loss, theta, {
          c: spsaGains(1, c, stability, k).c,
          estimates,
          uniform,
        });
        if (k === 0) a = gainFromFirstEstimate(gradient, settings.firstStep ?? 0.01, stability);
        const gain = spsaGains(a, c, stability, k).a;
        for (let j = 0; j < theta.length; j++) theta[j] -= gain * gradient[j];
        return loss(theta);
      });
      return problem.classifier();
    },
  };
}

/** a such that a_0 · mean|ĝ_0| = firstStep (Spall 1998, section III). */
function gainFromFirstEstimate(
  gradient: Float32Array,
  firstStep: number,
  stability: number,
): number {
  const meanMagnitude = gradient.reduce((sum, g) => sum + Math.abs(g), 0) / gradient.length;
  return (firstStep * (1 + stability) ** 0.602) / Math.max(meanMagnitude, 1e-12);
}
