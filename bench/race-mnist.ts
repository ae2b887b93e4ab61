/**
 * The race's contenders on a subset of the `mnist` package's digits, one after another on one
 * onnxruntime thread: held-out accuracy, training seconds, prediction microseconds per example,
 * size. One JSON line per contender. Not a test: figures for docs/race.md.
 *
 *   node --import tsx bench/race-mnist.ts [TRAIN_ROWS=2000] [BUDGET_SECONDS=20] [SEED=1] [NAMES]
 *
 * NAMES: contenders as `--contenders` takes them (src/race/contenders.ts), default all.
 */
import { loadDigits } from '../src/data/mnist.ts';
import { permutation, takeRows } from '../src/data/tasks.ts';
import { CONTENDER_NAMES, contendersNamed } from '../src/race/contenders.ts';

const [trainRows, budgetSeconds, seed] = [2000, 20, 1].map((fallback, i) =>
  Number(process.argv[2 + i] ?? fallback),
);
const CONTENDERS = contendersNamed(process.argv[5] ?? CONTENDER_NAMES.join(','), {
  hidden: [64],
});

const train = loadDigits('train');
const test = loadDigits('test');
const chosen = permutation(train.labels.dims[0], seed).slice(0, trainRows);
const data = { inputs: takeRows(train.images, chosen), labels: takeRows(train.labels, chosen) };
const testLabels = Array.from(test.labels.data as BigInt64Array, Number);

for (const contender of CONTENDERS) {
  const started = performance.now();
  let steps = 0;
  const classifier = await contender.train(data, {
    seed,
    budgetSeconds,
    onProgress: (event) => (steps = event.done),
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const predictStarted = performance.now();
  const probabilities = (await classifier.predictProba(test.images)).data as Float32Array;
  const predictMicros = ((performance.now() - predictStarted) * 1000) / testLabels.length;
  const correct = testLabels.filter((label, r) => {
    const row = Array.from(probabilities.subarray(r * 10, (r + 1) * 10));
    return row.indexOf(Math.max(...row)) === label;
  }).length;
  await classifier.release();
  console.log(
    JSON.stringify({
      contender: contender.name,
      usesBackprop: contender.usesBackprop,
      trainRows,
      testRows: testLabels.length,
      accuracy: +(correct / testLabels.length).toFixed(4),
      trainSeconds: +trainSeconds.toFixed(2),
      steps,
      predictMicrosPerExample: +predictMicros.toFixed(1),
      size: classifier.size,
    }),
  );
}
