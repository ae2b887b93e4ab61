/**
 * The tree contenders (YDF's gradient-boosted trees and random forest) against scikit-learn's
 * accuracy on two of its own tables (test/fixtures/race-trees, made by make.py there with
 * settings matching YDF's defaults), and against planted sets whose classes have unequal
 * frequencies, so that YDF's label order (by frequency) differs from the classes' order.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readTable } from '../src/data/csv.ts';
import { InputError } from '../src/errors.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { featureMatrix, type Contender, type RaceData } from '../src/race/contender.ts';
import { treeEnsembleModel } from '../src/race/tree-ensemble.ts';
import { gradientBoostedTrees, randomForest } from '../src/race/trees.ts';
import { YdfForest, type YdfLearner } from '../src/race/ydf.ts';
import { readYdfTrees } from '../src/race/ydf-trees.ts';
import { openSession } from '../src/runtime/session.ts';
import { accuracy } from './race-oracles.ts';

const FIXTURES = new URL('./fixtures/race-trees/', import.meta.url);
const SKLEARN = JSON.parse(readFileSync(new URL('sklearn.json', FIXTURES), 'utf8')) as {
  tables: Record<string, Record<'gradientBoosting' | 'randomForest', { mean: number }>>;
};

function tableData(name: string): RaceData & { labels: Int32Array } {
  const table = readTable(new URL(name, FIXTURES).pathname, { labelColumn: 'label' });
  const labels = Int32Array.from(table.labels!.data as BigInt64Array, Number);
  return { inputs: table.features, labels };
}

async function trained<T>(
  contender: Contender,
  data: RaceData,
  seed: number,
  use: (predict: (inputs: RaceData['inputs']) => Promise<Float32Array>) => Promise<T>,
): Promise<T> {
  const classifier = await contender.train(data, { seed, budgetSeconds: 120 });
  try {
    return await use(
      async (inputs) => (await classifier.predictProba(inputs)).data as Float32Array,
    );
  } finally {
    await classifier.release();
  }
}

/** x uniform in [0, 1) on feature 0 (noise on the others); the class is the interval x is in. */
function intervals(rows: number, cuts: number[], classOf: number[], seed: number, classes = 0) {
  const random = seededRandom(seed);
  const features = 3;
  const values = Float32Array.from({ length: rows * features }, () => random());
  const labels = Int32Array.from({ length: rows }, (_, r) => {
    const x = values[r * features];
    return classOf[cuts.filter((cut) => x >= cut).length];
  });
  return {
    inputs: tensor('float32', [rows, features], values),
    labels,
    classes: classes || Math.max(...classOf) + 1,
  };
}

/** Rows with feature 0 at each interval's centre and the noise features at 0.5. */
function centres(cuts: number[]) {
  const edges = [0, ...cuts, 1];
  const values = edges.slice(1).flatMap((end, i) => [(edges[i] + end) / 2, 0.5, 0.5]);
  return tensor('float32', [edges.length - 1, 3], values);
}

function assertRowsSumToOne(probabilities: Float32Array, classes: number) {
  for (let r = 0; r < probabilities.length / classes; r++) {
    const row = Array.from(probabilities.subarray(r * classes, (r + 1) * classes));
    const total = row.reduce((a, b) => a + b, 0);
    assert.ok(row.every((p) => p >= 0 && p <= 1) && Math.abs(total - 1) < 1e-5, `row ${r}: ${row}`);
  }
}

const CONTENDERS = [
  { contender: gradientBoostedTrees(), sklearn: 'gradientBoosting' as const },
  { contender: randomForest(), sklearn: 'randomForest' as const },
];

describe('race: YDF trees', () => {
  // scikit-learn's figure is its mean over ten seeds; ours the mean over three row orders.
  for (const table of ['breast-cancer', 'digits']) {
    for (const { contender, sklearn } of CONTENDERS) {
      it(`${contender.name} on ${table} is within 2 points of scikit-learn`, async () => {
        const train = tableData(`${table}-train.csv`);
        const test = tableData(`${table}-test.csv`);
        const seeds = [1, 2, 3];
        const found: number[] = [];
        for (const seed of seeds) {
          found.push(
            await trained(contender, train, seed, async (predict) =>
              accuracy(await predict(test.inputs), test.labels, Math.max(...train.labels) + 1),
            ),
          );
        }
        const mean = found.reduce((a, b) => a + b, 0) / seeds.length;
        const reference = SKLEARN.tables[table][sklearn].mean;
        console.log(
          `${contender.name} on ${table}: ${(100 * mean).toFixed(2)}% ` +
            `(seeds ${found.map((a) => (100 * a).toFixed(2)).join(', ')}); ` +
            `scikit-learn ${(100 * reference).toFixed(2)}%`,
        );
        assert.ok(Math.abs(mean - reference) <= 0.02, `${mean} vs scikit-learn's ${reference}`);
      });
    }
  }

  for (const { contender } of CONTENDERS) {
    describe(contender.name, () => {
      // The rarer class on x ≥ 0.8 (20% of the rows): YDF orders its labels by frequency.
      for (const [rare, common] of [
        [0, 1],
        [1, 0],
      ]) {
        it(`reads two classes in YDF's order (class ${rare} the rarer)`, async () => {
          const cuts = [0.8];
          const data = intervals(400, cuts, [common, rare], 5);
          await trained(contender, data, 1, async (predict) => {
            const probabilities = await predict(centres(cuts));
            assertRowsSumToOne(probabilities, 2);
            assert.ok(probabilities[0 * 2 + common] > 0.9, `${probabilities}`);
            assert.ok(probabilities[1 * 2 + rare] > 0.9, `${probabilities}`);
          });
        });
      }

      it('reads more classes in YDF order, absent classes as 0', async () => {
        // Frequencies 40%, 10%, 30%, 20% for classes 0, 3, 5, 2; classes 1 and 4 absent.
        const cuts = [0.4, 0.5, 0.8];
        const classOf = [0, 3, 5, 2];
        const data = intervals(600, cuts, classOf, 6, 6);
        await trained(contender, data, 1, async (predict) => {
          const probabilities = await predict(centres(cuts));
          assert.equal(probabilities.length, 4 * 6);
          assertRowsSumToOne(probabilities, 6);
          classOf.forEach((label, row) => {
            assert.ok(probabilities[row * 6 + label] > 0.8, `row ${row}: ${probabilities}`);
            assert.equal(probabilities[row * 6 + 1] + probabilities[row * 6 + 4], 0);
          });
        });
      });

      it('gives two present classes of four their columns, and one class all of it', async () => {
        const cuts = [0.7];
        const two = intervals(200, cuts, [2, 0], 7, 4);
        await trained(contender, two, 1, async (predict) => {
          const probabilities = await predict(centres(cuts));
          assertRowsSumToOne(probabilities, 4);
          assert.ok(probabilities[0 * 4 + 2] > 0.9 && probabilities[1 * 4 + 0] > 0.9);
        });
        const one = { ...two, labels: two.labels.map(() => 3) };
        await trained(contender, one, 1, async (predict) => {
          assert.deepEqual(Array.from(await predict(centres(cuts))), [0, 0, 0, 1, 0, 0, 0, 1]);
        });
      });

      it('gives the same model for a seed and another for another seed', async () => {
        // Noisy labels, so that the trees depend on which rows they see.
        const random = seededRandom(8);
        const data = intervals(300, [0.5], [0, 1], 8);
        data.labels.forEach((_, r) => {
          if (random() < 0.2) data.labels[r] = 1 - data.labels[r];
        });
        const probabilitiesFor = (seed: number) =>
          trained(contender, data, seed, (predict) => predict(data.inputs));
        const first = await probabilitiesFor(1);
        assert.deepEqual(await probabilitiesFor(1), first);
        assert.notDeepEqual(await probabilitiesFor(2), first);
      });
    });
  }

  // YDF's own predictions (in its worker) are the reference for the trees read from its files.
  it('runs the trees on onnxruntime as YDF runs them, two labels and four of six', async () => {
    const sets = [
      { train: tableData('breast-cancer-train.csv'), test: tableData('breast-cancer-test.csv') },
      {
        train: intervals(600, [0.4, 0.5, 0.8], [0, 3, 5, 2], 6, 6),
        test: intervals(300, [0.4, 0.5, 0.8], [0, 3, 5, 2], 7, 6),
      },
    ];
    const learners: YdfLearner[] = ['GradientBoostedTreesLearner', 'RandomForestLearner'];
    for (const { train, test } of sets) {
      const matrix = featureMatrix(train);
      const order = [...Array(matrix.rows).keys()];
      const limits = { budgetSeconds: 60, contender: 'trees', stoppingRule: "YDF's" };
      for (const learner of learners) {
        const forest = await YdfForest.train(learner, matrix, order, limits);
        const rows = test.inputs.dims[0];
        const values = test.inputs.data as Float32Array;
        const expected = await forest.probabilities(values, rows, matrix.classes);
        const trees = readYdfTrees(await forest.savedFiles());
        await forest.release();
        const sizes = trees.trees.map((tree) => tree.length);
        assert.equal(trees.trees.length, forest.trees);
        assert.equal(
          sizes.reduce((a, b) => a + b),
          forest.nodes,
        );
        const model = treeEnsembleModel(
          trees,
          forest.labelClasses,
          matrix.classes,
          matrix.features,
        );
        const session = await openSession(model, { threads: 1 }, 'the trees');
        try {
          const found = (await session.run({ input: test.inputs }, ['probabilities'])).probabilities
            .data as Float32Array;
          assert.equal(found.length, expected.length);
          const worst = Math.max(...found.map((p, i) => Math.abs(p - expected[i])));
          assert.ok(worst < 1e-5, `${learner}: onnxruntime and YDF differ by ${worst}`);
        } finally {
          await session.release();
        }
      }
    }
  });

  it('ends training at the budget and at an abort, with the reason', async () => {
    // 300 trees on 3,000 rows × 40 features take a few seconds: more than the budget.
    const random = seededRandom(9);
    const [rows, features] = [3000, 40];
    const values = Float32Array.from({ length: rows * features }, () => random());
    const data = {
      inputs: tensor('float32', [rows, features], values),
      labels: Int32Array.from({ length: rows }, (_, r) => (values[r * features] > 0.5 ? 1 : 0)),
    };
    let started = performance.now();
    await assert.rejects(
      randomForest().train(data, { seed: 1, budgetSeconds: 0.5 }),
      (error) =>
        error instanceof InputError &&
        /forest had not finished after the 0.5 s budget on 3000 examples × 40 features/.test(
          error.message,
        ) &&
        /cannot stop part-way/.test(error.message),
    );
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 1.5, `refused after ${seconds.toFixed(2)} s on a 0.5 s budget`);
    const controller = new AbortController();
    started = performance.now();
    setTimeout(() => controller.abort(), 300);
    await assert.rejects(
      randomForest().train(data, { seed: 1, budgetSeconds: 60, signal: controller.signal }),
      { name: 'AbortError' },
    );
    assert.ok((performance.now() - started) / 1000 < 1.3, 'the abort ended training at once');
  });
});
