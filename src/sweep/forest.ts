/**
 * A random forest of regression trees (Breiman 2001) over inputs in the unit cube: each tree is
 * grown on a bootstrap sample of the rows, splitting where the sum of squared errors drops most
 * (among `featureFraction` of the features drawn at each node), until a node holds fewer than
 * 2 · minLeaf rows or cannot be split. A library module: the sweep's fANOVA reads its trees' leaf
 * boxes, and any surrogate model (a race between configurations) may use `predict`.
 */
import { seededRandom } from '../random.ts';

/** A leaf holds the mean of its rows; a split sends x[feature] < threshold left. */
export type TreeNode =
  | { leaf: true; value: number }
  | { leaf: false; feature: number; threshold: number; left: TreeNode; right: TreeNode };

export interface Forest {
  trees: TreeNode[];
  dimensions: number;
}

export interface ForestOptions {
  trees?: number;
  minLeaf?: number;
  /** Fraction of the features tried at each split (at least one). */
  featureFraction?: number;
  seed?: number;
}

export function fitForest(
  x: readonly number[][],
  y: readonly number[],
  options: ForestOptions = {},
): Forest {
  const { trees = 100, minLeaf = 1, featureFraction = 1, seed = 0 } = options;
  const random = seededRandom(seed);
  const dimensions = x[0]?.length ?? 0;
  const featuresPerSplit = Math.max(1, Math.round(featureFraction * dimensions));
  const grown: TreeNode[] = [];
  for (let t = 0; t < trees; t++) {
    const rows = Array.from({ length: y.length }, () => Math.floor(random() * y.length));
    grown.push(growTree(x, y, rows, { minLeaf, featuresPerSplit, random }));
  }
  return { trees: grown, dimensions };
}

export function predictTree(node: TreeNode, point: readonly number[]): number {
  let current = node;
  while (!current.leaf)
    current = point[current.feature] < current.threshold ? current.left : current.right;
  return current.value;
}

export function predict(forest: Forest, point: readonly number[]): number {
  return (
    forest.trees.reduce((sum, tree) => sum + predictTree(tree, point), 0) / forest.trees.length
  );
}

interface GrowOptions {
  minLeaf: number;
  featuresPerSplit: number;
  random: () => number;
}

function growTree(
  x: readonly number[][],
  y: readonly number[],
  rows: number[],
  options: GrowOptions,
): TreeNode {
  const value = rows.reduce((sum, row) => sum + y[row], 0) / rows.length;
  if (rows.length < 2 * options.minLeaf) return { leaf: true, value };
  const split = bestSplit(x, y, rows, options);
  if (!split) return { leaf: true, value };
  const left = rows.filter((row) => x[row][split.feature] < split.threshold);
  const right = rows.filter((row) => x[row][split.feature] >= split.threshold);
  return {
    leaf: false,
    feature: split.feature,
    threshold: split.threshold,
    left: growTree(x, y, left, options),
    right: growTree(x, y, right, options),
  };
}

/**
 * The split that most lowers the sum of squared errors: for each candidate feature, rows sorted by
 * it, SSE(left) + SSE(right) = Σy² − (Σ_L y)²/n_L − (Σ_R y)²/n_R at every boundary between distinct
 * values, the threshold halfway between them. None when no split lowers it.
 */
function bestSplit(
  x: readonly number[][],
  y: readonly number[],
  rows: number[],
  options: GrowOptions,
) {
  const dimensions = x[rows[0]].length;
  const features = shuffled(dimensions, options.random).slice(0, options.featuresPerSplit);
  const total = rows.reduce((sum, row) => sum + y[row], 0);
  let best: { feature: number; threshold: number; gain: number } | undefined;
  for (const feature of features) {
    const sorted = [...rows].sort((a, b) => x[a][feature] - x[b][feature]);
    let leftSum = 0;
    for (let i = 0; i < sorted.length - 1; i++) {
      leftSum += y[sorted[i]];
      const nLeft = i + 1;
      const nRight = sorted.length - nLeft;
      const here = x[sorted[i]][feature];
      const next = x[sorted[i + 1]][feature];
      if (here === next || nLeft < options.minLeaf || nRight < options.minLeaf) continue;
      // Σy² is the same for every split: maximise the between-part term instead.
      const gain =
        leftSum ** 2 / nLeft + (total - leftSum) ** 2 / nRight - total ** 2 / sorted.length;
      if (gain > 1e-12 && (!best || gain > best.gain))
        best = { feature, threshold: (here + next) / 2, gain };
    }
  }
  return best;
}

function shuffled(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
