/**
 * What the learners that train teardown's MLP without backprop share: their settings, seeded
 * minibatches and Gaussian draws, Adam, and the loop that runs steps until the time budget or the
 * step limit, reporting progress and honouring the abort signal.
 */
import { InputError } from '../errors.ts';
import { trackProgress } from '../progress.ts';
import { seededRandom } from '../random.ts';
import { secondsSince, type FeatureMatrix, type TrainOptions } from './contender.ts';
import type { HiddenActivation, MlpShape } from './mlp.ts';

export interface NetworkSettings {
  /** Hidden widths, as `mlp:hidden=…` (default [64]). */
  hidden?: number[];
  act?: HiddenActivation;
  /** Examples per step (default 128). */
  batchSize?: number;
  /** Steps at most (the time budget usually ends training first). */
  maxSteps?: number;
}

export function mlpShapeOf(matrix: FeatureMatrix, settings: NetworkSettings): MlpShape {
  const hidden = settings.hidden ?? [64];
  if (hidden.some((width) => !Number.isInteger(width) || width < 1)) {
    throw new InputError(`Hidden widths must be positive integers; got [${hidden.join(', ')}].`);
  }
  return {
    features: matrix.features,
    hidden,
    classes: matrix.classes,
    act: settings.act ?? 'relu',
  };
}

export interface Minibatch {
  inputs: Float32Array;
  labels: Int32Array;
  rows: number;
}

/** Minibatches drawn by a seeded shuffle, epoch after epoch. */
export class MinibatchSampler {
  private order: Int32Array;
  private next = 0;
  private readonly random: () => number;

  constructor(
    private readonly matrix: FeatureMatrix,
    private readonly batchSize: number,
    seed: number,
  ) {
    this.random = seededRandom(seed);
    this.order = Int32Array.from({ length: matrix.rows }, (_, r) => r);
    this.shuffle();
  }

  draw(): Minibatch {
    const rows = Math.min(this.batchSize, this.matrix.rows);
    const { features, values, labels } = this.matrix;
    const batch = { inputs: new Float32Array(rows * features), labels: new Int32Array(rows), rows };
    for (let r = 0; r < rows; r++) {
      if (this.next === this.order.length) this.shuffle();
      const row = this.order[this.next++];
      batch.inputs.set(values.subarray(row * features, (row + 1) * features), r * features);
      batch.labels[r] = labels[row];
    }
    return batch;
  }

  private shuffle(): void {
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
    }
    this.next = 0;
  }
}

/** A seeded standard normal (Box–Muller). */
export function gaussianSource(seed: number): () => number {
  const uniform = seededRandom(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * Salimans et al.'s shared noise table (2017, section 2.1): one block of N(0, 1) draws made once;
 * a perturbation is a slice at a uniformly random offset, so drawing one costs nothing. The table
 * holds 2^22 values or 16 perturbations, whichever is more, so that slices rarely overlap much.
 */
export class NoiseTable {
  private readonly values: Float32Array;
  private readonly uniform: () => number;

  constructor(seed: number, perturbationSize: number) {
    this.uniform = seededRandom(seed);
    this.values = new Float32Array(Math.max(2 ** 22, 16 * perturbationSize));
    // Box–Muller gives two independent normals from two uniforms.
    for (let i = 0; i < this.values.length; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
      const angle = 2 * Math.PI * this.uniform();
      this.values[i] = radius * Math.cos(angle);
      if (i + 1 < this.values.length) this.values[i + 1] = radius * Math.sin(angle);
    }
  }

  /** `size` consecutive draws from a random offset (a view into the table). */
  draw(size: number): Float32Array {
    const offset = Math.floor(this.uniform() * (this.values.length - size + 1));
    return this.values.subarray(offset, offset + size);
  }
}

/** Adam (Kingma & Ba 2015): θ ← θ − lr · m̂ / (√v̂ + ε), m and v the moment averages of g. */
export class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;

  constructor(
    size: number,
    private readonly learningRate: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  step(parameters: Float32Array, gradient: ArrayLike<number>): void {
    this.t++;
    const correction1 = 1 - this.beta1 ** this.t;
    const correction2 = 1 - this.beta2 ** this.t;
    for (let i = 0; i < parameters.length; i++) {
      this.m[i] = this.beta1 * this.m[i] + (1 - this.beta1) * gradient[i];
      this.v[i] = this.beta2 * this.v[i] + (1 - this.beta2) * gradient[i] * gradient[i];
      parameters[i] -=
        (this.learningRate * (this.m[i] / correction1)) /
        (Math.sqrt(this.v[i] / correction2) + 1e-8);
    }
  }
}

/** Runs `step` until the budget or `maxSteps`; the progress status is its returned loss. */
export async function runSteps(
  options: TrainOptions,
  maxSteps: number,
  step: (index: number) => Promise<number>,
): Promise<number> {
  const start = performance.now();
  const progress = trackProgress('train', maxSteps, options);
  let steps = 0;
  while (steps < maxSteps && secondsSince(start) < options.budgetSeconds) {
    const loss = await step(steps++);
    progress.tick(1, `loss ${loss.toFixed(4)}`);
  }
  return steps;
}
