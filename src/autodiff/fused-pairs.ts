/**
 * Pairs of ops the walker (backward.ts) differentiates at once: a first op whose output only the
 * second reads (not a graph output, no gradient asked for it). Where `applies` holds for the
 * second node, `gradient` gives the gradient with respect to the first op's input from the second
 * op's output gradient, and the first op passes nothing on. One row per pair, as rules/ has one
 * per op; a row needs a finite-difference case (rules.test.ts) like any rule.
 */
import type { GradContext } from './context.ts';
import { reluMaxPoolGradient, unpoolable } from './rules/index.ts';

export interface FusedPair {
  first: string;
  second: string;
  /** Whether the fused form serves this second node; otherwise each op's own rule runs. */
  applies(second: GradContext): boolean;
  /** d(loss)/d(the first op's input), from the second node's context. */
  gradient(second: GradContext): string;
}

export const FUSED_PAIRS: readonly FusedPair[] = [
  // MaxPool(Relu(X)) over windows that cannot overlap: dX = MaxUnpool(dY·[Y > 0]), rules/pooling.ts
  { first: 'Relu', second: 'MaxPool', applies: unpoolable, gradient: reluMaxPoolGradient },
];
