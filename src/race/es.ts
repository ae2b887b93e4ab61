/**
 * Evolution strategies as OpenAI-ES (Salimans et al. 2017, "Evolution Strategies as a Scalable
 * Alternative to Reinforcement Learning"): the gradient of the Gaussian-smoothed loss
 *   ∇_θ E_ε[L(θ + σε)] = (1/σ) E_ε[L(θ + σε) ε],   ε ~ N(0, I)
 * estimated from n antithetic pairs (ε, −ε):
 *   ĝ = 1/(2nσ) Σ_i (u_i⁺ − u_i⁻) ε_i
 * with u the losses themselves ('raw', an unbiased estimate of the smoothed gradient) or, as the
 * paper trains, their centred ranks in [−½, ½] ('rank': fitness shaping, invariant to the loss's
 * scale and robust to outliers), then an Adam step. The ε are slices of the paper's shared noise
 * table (race/network.ts NoiseTable). No gradient is computed: only losses of the
 * MLP forward graph on onnxruntime.
 */
import type { Contender } from './contender.ts';
import { lossOnlyProblem } from './loss-only.ts';
import { Adam, NoiseTable, runSteps, type NetworkSettings } from './network.ts';

export interface EsSettings extends NetworkSettings {
  /** Antithetic pairs per step (default 32: a population of 64). */
  pairs?: number;
  /** σ of the perturbations (default 0.05). */
  sigma?: number;
  learningRate?: number;
}

export type FitnessShaping = 'raw' | 'rank';

/** The ES estimate of ∇L at θ from `pairs` antithetic pairs; `loss` is evaluated 2·pairs times. */
export async function esGradient(
  loss: (parameters: Float32Array) => Promise<number>,
  theta: Float32Array,
  {
    pairs,
    sigma,
    shaping,
    noise: table,
  }: { pairs: number; sigma: number; shaping: FitnessShaping; noise: NoiseTable },
): Promise<Float32Array> {
  const noise: Float32Array[] = [];
  const losses: number[] = []; // [plus_0, minus_0, plus_1, minus_1, …]
  const probe = new Float32Array(theta.length);
  for (let i = 0; i < pairs; i++) {
    const epsilon = table.draw(theta.length);
    noise.push(epsilon);
    for (const sign of [1, -1]) {
      for (let j = 0; j < theta.length; j++) probe[j] = theta[j] + sign * sigma * epsilon[j];
      losses.push(await loss(probe));
    }
  }
  const utilities = shaping === 'rank' ? centredRanks(losses) : losses;
  const gradient = new Float32Array(theta.length);
  noise.forEach((epsilon, i) => {
    const weight = (utilities[2 * i] - utilities[2 * i + 1]) / (2 * pairs * sigma);
    for (let j = 0; j < theta.length; j++) gradient[j] += weight * epsilon[j];
  });
  return gradient;
}

/** Ranks 0 … m−1 mapped to [−½, ½], the lowest value to −½ (ties by order of appearance). */
export function centredRanks(values: readonly number[]): number[] {
  const order = values
    .map((value, index) => ({ value, index }))
    .sort((a, b) => a.value - b.value || a.index - b.index);
  const ranks = new Array<number>(values.length);
  order.forEach(({ index }, rank) => {
    ranks[index] = values.length > 1 ? rank / (values.length - 1) - 0.5 : 0;
  });
  return ranks;
}

export function evolutionStrategies(settings: EsSettings = {}): Contender {
  return {
    name: 'evolution strategies (OpenAI-ES)',
    family: 'network',
    usesBackprop: false,
    async train(data, options) {
      const problem = await lossOnlyProblem(data, settings, options);
      const { theta } = problem;
      const adam = new Adam(theta.length, settings.learningRate ?? 0.03);
      const noise = new NoiseTable(options.seed + 2, theta.length);
      const estimate = {
        pairs: settings.pairs ?? 32,
        sigma: settings.sigma ?? 0.05,
        shaping: 'rank' as const,
        noise,
      };
      await runSteps(options, settings.maxSteps ?? 100_000, async () => {
        const loss = problem.nextBatchLoss();
        adam.step(theta, await esGradient(loss, theta, estimate));
        return loss(theta);
      });
      return problem.classifier();
    },
  };
}
