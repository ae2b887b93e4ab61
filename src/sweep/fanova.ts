/**
 * Functional ANOVA over a random-forest surrogate (Hutter, Hoos & Leyton-Brown 2014, "An efficient
 * approach for assessing hyperparameter importance"): each tree is a piecewise-constant function
 * f on the unit cube, uniform over the searched space. Its variance is V = Σ_leaves vol·(v − μ)²,
 * and parameter j's main effect is the marginal a_j(x_j) = ∫ f dx_{−j}, constant between the
 * tree's thresholds on j, of variance V_j = ∫ (a_j − μ)² dx_j. A parameter's importance is
 * V_j / V, computed exactly per tree; the forest's figure is the mean over trees and its interval
 * the 2.5th–97.5th percentiles over them (each tree grown on a bootstrap sample of the data).
 * What the main effects leave, 1 − Σ_j V_j / V, is the interactions' share.
 */
import type { TreeNode } from './forest.ts';
import type { Forest } from './forest.ts';
import { mean, quantile } from './spread.ts';

export interface Importance {
  share: number;
  low: number;
  high: number;
}

interface Leaf {
  value: number;
  lower: number[];
  upper: number[];
}

function leavesOf(node: TreeNode, lower: number[], upper: number[], leaves: Leaf[] = []): Leaf[] {
  if (node.leaf) {
    leaves.push({ value: node.value, lower, upper });
    return leaves;
  }
  const { feature, threshold } = node;
  const cut = Math.min(upper[feature], Math.max(lower[feature], threshold));
  leavesOf(
    node.left,
    lower,
    upper.map((u, j) => (j === feature ? cut : u)),
    leaves,
  );
  leavesOf(
    node.right,
    lower.map((l, j) => (j === feature ? cut : l)),
    upper,
    leaves,
  );
  return leaves;
}

/** Main-effect variance fractions V_j / V of one tree (null when the tree is constant). */
export function treeMainEffects(tree: TreeNode, dimensions: number): number[] | null {
  const leaves = leavesOf(
    tree,
    new Array(dimensions).fill(0),
    new Array(dimensions).fill(1),
  ).filter((leaf) => leaf.lower.every((l, j) => leaf.upper[j] > l));
  const volume = (leaf: Leaf, skip = -1) =>
    leaf.lower.reduce((v, l, j) => (j === skip ? v : v * (leaf.upper[j] - l)), 1);
  const mu = leaves.reduce((sum, leaf) => sum + volume(leaf) * leaf.value, 0);
  const total = leaves.reduce((sum, leaf) => sum + volume(leaf) * (leaf.value - mu) ** 2, 0);
  if (!(total > 1e-15)) return null;
  return Array.from({ length: dimensions }, (_, j) => {
    const cuts = [
      ...new Set([0, 1, ...leaves.flatMap((leaf) => [leaf.lower[j], leaf.upper[j]])]),
    ].sort((a, b) => a - b);
    let variance = 0;
    for (let i = 0; i < cuts.length - 1; i++) {
      const middle = (cuts[i] + cuts[i + 1]) / 2;
      // a_j(x_j): the leaves whose box holds x_j, each weighted by its volume in the other dimensions.
      const marginal = leaves.reduce(
        (sum, leaf) =>
          leaf.lower[j] <= middle && middle < leaf.upper[j]
            ? sum + volume(leaf, j) * leaf.value
            : sum,
        0,
      );
      variance += (cuts[i + 1] - cuts[i]) * (marginal - mu) ** 2;
    }
    return variance / total;
  });
}

/** Each parameter's main-effect share over the forest, with its spread over trees. */
export function fanova(forest: Forest): { importance: Importance[]; interactions: number } {
  const perTree = forest.trees
    .map((tree) => treeMainEffects(tree, forest.dimensions))
    .filter((shares): shares is number[] => shares !== null);
  if (perTree.length === 0) {
    const none = Array.from({ length: forest.dimensions }, () => ({ share: 0, low: 0, high: 0 }));
    return { importance: none, interactions: 0 };
  }
  const importance = Array.from({ length: forest.dimensions }, (_, j) => {
    const shares = perTree.map((tree) => tree[j]);
    return { share: mean(shares), low: quantile(shares, 0.025), high: quantile(shares, 0.975) };
  });
  const interactions = Math.max(0, 1 - importance.reduce((sum, p) => sum + p.share, 0));
  return { importance, interactions };
}
