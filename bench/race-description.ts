/**
 * The race's comprehensibility figure on the 1,000 MNIST digits test/race-mnist.test.ts uses
 * (chosen by seed 1, tested on the 2,004 held-out digits), each contender trained as that test
 * trains it (step limits, one thread), then described: the description's kind and size, its
 * faithfulness on the test digits and on the digits it was fitted on, and the seconds it took.
 * One JSON line per contender. Not a test: figures for docs/race.md.
 *
 *   node --import tsx bench/race-description.ts [HIDDEN=32] [NAMES=knn,logistic,dfa,ff,es,spsa]
 *
 * NAMES may also hold mlp: the backprop MLP, which trains within a 10-second budget (its figures
 * then depend on the machine's load).
 */
import { loadDigits } from '../src/data/mnist.ts';
import { permutation, takeRows } from '../src/data/tasks.ts';
import { backpropMlp } from '../src/race/backprop.ts';
import { featureMatrix, type Contender, type TrainedClassifier } from '../src/race/contender.ts';
import { predictedClasses } from '../src/tensor-math.ts';
import { describeClassifier } from '../src/race/description.ts';
import { directFeedbackAlignment } from '../src/race/dfa.ts';
import { evolutionStrategies } from '../src/race/es.ts';
import { forwardForward } from '../src/race/ff.ts';
import { kNearestNeighbours, NeighbourIndex } from '../src/race/knn.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import { spsa } from '../src/race/spsa.ts';

const hidden = [Number(process.argv[2] ?? 32)];
const names = (process.argv[3] ?? 'knn,logistic,dfa,ff,es,spsa').split(',');
const CONTENDERS: Record<string, Contender> = {
  knn: kNearestNeighbours({ k: 3 }),
  logistic: logisticRegression({ maxIterations: 60 }),
  dfa: directFeedbackAlignment({ hidden, maxSteps: 300 }),
  ff: forwardForward({ hidden, maxSteps: 300 }),
  es: evolutionStrategies({ hidden, maxSteps: 60 }),
  spsa: spsa({ hidden, maxSteps: 300 }),
  mlp: backpropMlp({ hidden }),
};
/** Every contender but the backprop MLP stops at its step limit first. */
const budgetSeconds = (name: string) => (name === 'mlp' ? 10 : 600);

const train = loadDigits('train');
const test = loadDigits('test');
const chosen = permutation(train.labels.dims[0], 1).slice(0, 1000);
const data = { inputs: takeRows(train.images, chosen), labels: takeRows(train.labels, chosen) };
const heldOut = { inputs: test.images, labels: test.labels };

for (const name of names) {
  const contender = CONTENDERS[name];
  const classifier = await contender.train(data, {
    seed: 1,
    budgetSeconds: budgetSeconds(name),
    threads: 1,
  });
  try {
    const description = await describeClassifier(
      classifier,
      { train: data, test: heldOut },
      { threads: 1 },
    );
    const scale = name === 'knn' ? { everyStoredDigit: await everyStoredDigit(classifier) } : {};
    const { size } = classifier;
    console.log(JSON.stringify({ contender: contender.name, hidden, size, description, ...scale }));
  } finally {
    await classifier.release();
  }
}

/**
 * The largest prototype set, for scale: 1-NN over every training digit, each carrying the kNN's
 * own prediction at it; its agreement with the kNN on the test digits.
 */
async function everyStoredDigit(knn: TrainedClassifier): Promise<number> {
  const own = predictedClasses(await knn.predictProba(data.inputs));
  const stored = { ...featureMatrix({ ...data, classes: 10 }), labels: own };
  const index = await NeighbourIndex.open(stored, 1, 1);
  const nearest = await index.nearest(test.images);
  await index.release();
  const expected = predictedClasses(await knn.predictProba(test.images));
  return nearest.filter((row, r) => own[row] === expected[r]).length / expected.length;
}
