/** The values of the hooks read in one run, by hook name (TransformerLens's ActivationCache). */
import { HookError, nearestNames } from '../errors.ts';
import { Tensor } from './tensor.ts';

export class ActivationCache {
  private readonly values: Map<string, Tensor>;

  constructor(values: ReadonlyMap<string, Tensor>) {
    this.values = new Map(values);
  }

  /** The hook's value in the run (after any intervention or edit on it). */
  get(hook: string): Tensor {
    const value = this.values.get(hook);
    if (value) return value;
    throw new HookError(
      `Hook '${hook}' is not in the cache, which holds ${this.values.size} hooks. Nearest cached names: ${nearestNames(hook, this.values.keys()).join(', ')}. Cache it with runWithCache(inputs, { hooks: ['${hook}'] }).`,
    );
  }

  has(hook: string): boolean {
    return this.values.has(hook);
  }

  /** Cached hook names, in the order they were asked for. */
  keys(): string[] {
    return [...this.values.keys()];
  }

  get size(): number {
    return this.values.size;
  }

  [Symbol.iterator](): IterableIterator<[string, Tensor]> {
    return this.values.entries();
  }
}
