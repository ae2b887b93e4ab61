/**
 * Functional ANOVA over a random-forest surrogate (Hutter, Hoos & Leyton-Brown 2014, "An efficient
 * approach for assessing hyperparameter importance"): each tree is a piecewise-constant function
 * f on the unit cube, uniform over the searched space. Its variance is V = Σ_leaves vol·(v − μ)²,
 * and parameter j's main effect is the marginal a_j(x_j) = ∫ f dx_{−j}, constant between the
 * tree's thresholds on j, of variance V_j = ∫ (a_j − μ)² dx_j. A parameter's importance is
 * V_j / V, computed exactly per tree; the forest's figure is the mean over trees. Its interval
 * (fanovaImportance) is a bootstrap over the data: forests fit to configurations drawn with
 * replacement, as a basic bootstrap interval (spread.ts). What the main effects leave,
 * 1 − Σ_j V_j / V, is the interactions' share.
 */
import { seededRandom } from '../random.ts';
import { fitForest, type Forest, type TreeNode } from './forest.ts';
import { basicInterval, mean, quantile } from './spread.ts';

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
  return Array.from({ length: dimensions }, (_, j) => mainEffectVariance(leaves, j, mu) / total);
}

/**
 * V_j = ∫ (a_j(x) − μ)² dx over [0, 1], where a_j(x) = Σ v·vol₋ⱼ over the leaves whose j-range
 * holds x. Each leaf adds its weight on [lower_j, upper_j): a difference array over the sorted cut
 * points and a running sum give a_j on every interval between cuts (O(L log L), L leaves).
 */
function mainEffectVariance(leaves: Leaf[], j: number, mu: number): number {
  const cuts = [
    ...new Set([0, 1, ...leaves.flatMap((leaf) => [leaf.lower[j], leaf.upper[j]])]),
  ].sort((a, b) => a - b);
  const position = new Map(cuts.map((cut, i) => [cut, i]));
  const change = new Float64Array(cuts.length);
  for (const leaf of leaves) {
    const weight =
      leaf.value * leaf.lower.reduce((v, l, k) => (k === j ? v : v * (leaf.upper[k] - l)), 1);
    change[position.get(leaf.lower[j])!] += weight;
    change[position.get(leaf.upper[j])!] -= weight;
  }
  let marginal = 0;
  let variance = 0;
  for (let i = 0; i < cuts.length - 1; i++) {
    marginal += change[i];
    variance += (cuts[i + 1] - cuts[i]) * (marginal - mu) ** 2;
  }
  return variance;
}

/**
 * fANOVA of a 100-tree forest fit to the configurations' scores, with 95% bootstrap intervals from
 * `resamples` smaller forests (30 trees) fit to configurations drawn with replacement.
 */
/** Trees of each resampled forest (fewer than the estimate's 100: the interval's cost). */
const RESAMPLE_TREES = 30;

export function fanovaImportance(
  points: number[][],
  scores: number[],
  seed = 0,
  resamples = 40,
): { importance: Importance[]; interactions: number } {
  const point = fanova(fitForest(points, scores, { trees: 100, seed }));
  const random = seededRandom(seed + 1);
  const draws: number[][] = [];
  for (let b = 0; b < resamples; b++) {
    const rows = Array.from({ length: scores.length }, () => Math.floor(random() * scores.length));
    const forest = fitForest(
      rows.map((i) => points[i]),
      rows.map((i) => scores[i]),
      { trees: RESAMPLE_TREES, seed: seed + 2 + b },
    );
    draws.push(fanova(forest).importance.map((row) => row.share));
  }
  const importance = point.importance.map((row, j) => {
    const shares = draws.map((draw) => draw[j]);
    const [low, high] = basicInterval(row.share, shares, 0, 1);
    return { share: row.share, low, high };
  });
  return { importance, interactions: point.interactions };
}

/** Each parameter's main-effect share over the forest (mean over trees), with its spread over trees. */
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
