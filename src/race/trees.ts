/**
 * Gradient-boosted trees (Friedman 2001) and a random forest (Breiman 2001), trained by Google's
 * Yggdrasil Decision Forests (race/ydf.ts) with YDF's default hyperparameters, which its
 * JavaScript port does not let one change:
 *   - gradient-boosted trees: at most 300 iterations of shrinkage 0.1, trees of depth 6 (the root
 *     at depth 1) with at least 5 examples a node, all features tried at each node; one tree per
 *     class an iteration for more than two classes (softmax of the summed leaves). 10% of the
 *     training rows are held out, and training stops once their loss has not fallen for 30
 *     iterations, keeping the best iteration.
 *   - random forest: 300 trees of depth 16 with at least 5 examples a node, each grown on a
 *     bootstrap sample with √features candidate features a node; each tree votes for one class
 *     and a class's probability is its share of the votes.
 * Why YDF rather than mljs's ml-random-forest (its speed): docs/race.md.
 *
 * The seed: YDF's own seed is fixed, and no option reaches it; the race's seed sets the order in
 * which the training rows are given (a permutation drawn from it). YDF draws by row index, so the
 * order changes which rows each tree's bootstrap sample holds (the forest) and which rows are
 * held out for early stopping (the boosted trees). The same seed gives the same model, another
 * seed another (test/race-trees.test.ts checks both learners).
 *
 * The budget: YDF trains to its own stopping rule and cannot stop part-way, so training that has
 * not finished within the budget is ended and refused (race/ydf.ts) rather than cut short.
 *
 * Predictions: the trained trees are read from the files YDF saves (race/ydf-trees.ts) and run
 * on onnxruntime as an ONNX-ML graph (race/tree-ensemble.ts); YDF's worker ends once they are
 * read. The size is the number of nodes, splits and leaves, of all trees.
 */
import { permutation } from '../data/tasks.ts';
import { tensor } from '../tensor.ts';
import { trackProgress } from '../progress.ts';
import {
  featureMatrix,
  queryMatrix,
  type Contender,
  type FeatureMatrix,
  type TrainedClassifier,
  type TrainOptions,
} from './contender.ts';
import { openSession } from '../runtime/session.ts';
import { treeEnsembleModel } from './tree-ensemble.ts';
import { YdfForest, type YdfLearner } from './ydf.ts';
import { readYdfTrees } from './ydf-trees.ts';

/**
 * Seconds below which even a small table cannot train: the worker and YDF's WebAssembly module
 * start in about 0.3 s, and the forest took 1.5 s on colored-mnist's first 200 rows (392
 * features; a smoke run) at a load average of 5 on two cores.
 */
const MINIMUM_BUDGET_SECONDS = 3;

/** YDF's default iterations: early stopping usually ends sooner. */
const BOOSTING_ITERATIONS = 300;
const FOREST_TREES = 300;

export function gradientBoostedTrees(): Contender {
  return ydfContender('gbt', 'gradient-boosted trees (YDF)', 'GradientBoostedTreesLearner', {
    stoppingRule: `${BOOSTING_ITERATIONS} iterations, or 30 without a better validation loss`,
    total: BOOSTING_ITERATIONS,
    // "\tnum-trees:12 train-loss:… valid-loss:…": iterations done, with the validation loss.
    progress: (line) => {
      const found = /num-trees:(\d+).*valid-loss:([\d.]+)/.exec(line);
      return found ? { done: Number(found[1]), status: `validation loss ${found[2]}` } : undefined;
    },
  });
}

export function randomForest(): Contender {
  return ydfContender('forest', 'random forest (YDF)', 'RandomForestLearner', {
    stoppingRule: `${FOREST_TREES} trees`,
    total: FOREST_TREES,
    // "Training of tree  11/300 (tree index:10) done accuracy:0.84 logloss:1.26" (out of bag).
    progress: (line) => {
      const found = /Training of tree\s+(\d+)\/\d+.*accuracy:([\d.]+)/.exec(line);
      return found
        ? { done: Number(found[1]), status: `out-of-bag accuracy ${found[2]}` }
        : undefined;
    },
  });
}

interface LearnerTraits {
  stoppingRule: string;
  total: number;
  /** Reads a progress step from one of YDF's log lines, when it is one. */
  progress: (line: string) => { done: number; status: string } | undefined;
}

/** `key`: the contender's name in --contenders (race/contenders.ts). */
function ydfContender(
  key: string,
  name: string,
  learner: YdfLearner,
  traits: LearnerTraits,
): Contender {
  return {
    name,
    family: 'trees',
    usesBackprop: false,
    minimumBudgetSeconds: MINIMUM_BUDGET_SECONDS,
    async train(data, options) {
      const matrix = featureMatrix(data);
      const present = new Set(matrix.labels);
      if (present.size === 1) return oneClass(matrix.classes, [...present][0], matrix.features);
      const forest = await YdfForest.train(
        learner,
        matrix,
        permutation(matrix.rows, options.seed),
        {
          budgetSeconds: options.budgetSeconds,
          signal: options.signal,
          onLog: progressFromLog(traits, options),
          contender: key,
          stoppingRule: traits.stoppingRule,
        },
      );
      try {
        return await onnxClassifier(forest, matrix, options.threads ?? 1);
      } finally {
        await forest.release(); // the trees run on onnxruntime now: YDF's memory goes
      }
    },
  };
}

/** The trained trees read from YDF's saved files and run as an ONNX graph (tree-ensemble.ts). */
async function onnxClassifier(
  forest: YdfForest,
  { classes, features }: FeatureMatrix,
  threads: number,
): Promise<TrainedClassifier> {
  const trees = readYdfTrees(await forest.savedFiles());
  const model = treeEnsembleModel(trees, forest.labelClasses, classes, features);
  const session = await openSession(model, { threads }, 'the tree ensemble graph');
  return {
    classes,
    size: { kind: 'nodes', count: trees.trees.reduce((total, tree) => total + tree.length, 0) },
    async predictProba(inputs) {
      const { values, rows } = queryMatrix(inputs, features);
      const input = tensor('float32', [rows, features], values);
      return (await session.run({ input }, ['probabilities'])).probabilities;
    },
    release: () => session.release(),
  };
}

function progressFromLog(traits: LearnerTraits, options: TrainOptions) {
  const progress = trackProgress('train', traits.total, { onProgress: options.onProgress });
  let done = 0;
  return (line: string) => {
    const step = traits.progress(line);
    if (!step || step.done <= done) return;
    progress.tick(step.done - done, step.status);
    done = step.done;
  };
}

/**
 * Training rows of a single class (a small fraction of the data can hold one): every learner's
 * answer is that class, and YDF's boosted trees refuse to train. A tree of one leaf says it.
 */
function oneClass(classes: number, only: number, features: number): TrainedClassifier {
  return {
    classes,
    size: { kind: 'nodes', count: 1 },
    async predictProba(inputs) {
      const { rows } = queryMatrix(inputs, features);
      const probabilities = new Float32Array(rows * classes); // [rows, classes]
      for (let r = 0; r < rows; r++) probabilities[r * classes + only] = 1;
      return tensor('float32', [rows, classes], probabilities);
    },
    release: async () => {},
  };
}
