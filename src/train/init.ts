/**
 * PyTorch's default initialisations, drawn from a seeded generator so that a training run is a
 * pure function of its spec:
 *   nn.Linear / nn.Conv2d weight and bias: U(−1/√fan_in, 1/√fan_in)  (kaiming_uniform_ with a = √5)
 *   nn.Embedding: N(0, 1);  nn.LayerNorm: weight 1, bias 0.
 */
import { seededRandom } from '../random.ts';
import { InputError } from '../errors.ts';
import { tensor, type Tensor } from '../tensor.ts';

/** The most values one weight of a new model may hold (2^28: 1 GiB of float32). */
export const MAX_WEIGHT_VALUES = 2 ** 28;

/** The values of a weight of these dims, refused beyond MAX_WEIGHT_VALUES (mlp:hidden=99999999999). */
function countOf(dims: readonly number[]): number {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count <= MAX_WEIGHT_VALUES) return count;
  throw new InputError(
    `The model spec (--model) makes a weight of shape [${dims.join(', ')}]: ${count.toLocaleString('en-US')} values, more than the ${MAX_WEIGHT_VALUES.toLocaleString('en-US')} (1 GiB of float32) a weight may hold here. Use smaller layers.`,
  );
}

export class Initializer {
  private readonly uniform: () => number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.uniform = seededRandom(seed);
  }

  /** U(−bound, bound) of the given dims. */
  uniformTensor(dims: number[], bound: number): Tensor {
    const count = countOf(dims);
    return tensor(
      'float32',
      dims,
      Float32Array.from({ length: count }, () => (2 * this.uniform() - 1) * bound),
    );
  }

  /** N(0, std²) of the given dims (Box–Muller). */
  normalTensor(dims: number[], std: number): Tensor {
    const count = countOf(dims);
    return tensor(
      'float32',
      dims,
      Float32Array.from({ length: count }, () => std * this.normal()),
    );
  }

  constantTensor(dims: number[], value: number): Tensor {
    return tensor('float32', dims, new Float32Array(countOf(dims)).fill(value));
  }

  /** Linear/Conv weight and bias, fan_in = product of the weight's dims after the first. */
  linear(weightDims: number[]): { weight: Tensor; bias: Tensor } {
    const fanIn = weightDims.slice(1).reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    return {
      weight: this.uniformTensor(weightDims, bound),
      bias: this.uniformTensor([weightDims[0]], bound),
    };
  }

  private normal(): number {
    if (this.spare !== undefined) {
      const value = this.spare;
      this.spare = undefined;
      return value;
    }
    const u = 1 - this.uniform(); // (0, 1]: log is finite
    const v = this.uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }
}
