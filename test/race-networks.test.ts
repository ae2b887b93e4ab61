/**
 * Each learner without backprop learns a planted easy task — two Gaussian blobs in 10 features,
 * 5 standard deviations apart (the best possible accuracy is Φ(2.5) ≈ 99.4%) — to over 95% on
 * held-out examples within a 3-second budget, on teardown's MLP (one hidden layer of 16 relu
 * units), and reports itself as not using backprop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tensor } from '../src/tensor.ts';
import type { Contender } from '../src/race/contender.ts';
import { directFeedbackAlignment } from '../src/race/dfa.ts';
import { evolutionStrategies } from '../src/race/es.ts';
import { forwardForward } from '../src/race/ff.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import { spsa } from '../src/race/spsa.ts';
import { accuracy, twoBlobs, xorClusters, rowsOf } from './race-oracles.ts';

const features = 10;
const blobs = twoBlobs(800, features, 21, 5);
const [train, heldOut] = [rowsOf(blobs, 0, 400), rowsOf(blobs, 400, 800)];

export const PLANTED_CONTENDERS: Contender[] = [
  evolutionStrategies({ hidden: [16] }),
  spsa({ hidden: [16] }),
  directFeedbackAlignment({ hidden: [16] }),
  forwardForward({ hidden: [16] }),
];

describe('race: learners without backprop on two planted blobs', () => {
  for (const contender of PLANTED_CONTENDERS) {
    it(`${contender.name} learns them to > 95% in 3 s`, async () => {
      const started = performance.now();
      let steps = 0;
      const classifier = await contender.train(train, {
        seed: 1,
        budgetSeconds: 3,
        onProgress: (event) => {
          steps = event.done;
        },
      });
      const seconds = (performance.now() - started) / 1000;
      try {
        const probabilities = (await classifier.predictProba(heldOut.inputs)).data as Float32Array;
        const heldOutAccuracy = accuracy(probabilities, heldOut.labels, 2);
        console.log(
          `${contender.name}: held-out accuracy ${(100 * heldOutAccuracy).toFixed(1)}% ` +
            `after ${steps} steps, ${seconds.toFixed(2)} s`,
        );
        assert.ok(heldOutAccuracy > 0.95, `held-out accuracy ${heldOutAccuracy}`);
        assert.equal(contender.usesBackprop, false);
        // Forward-forward has no head: the label enters with the input instead.
        const count =
          contender.name === 'forward-forward'
            ? (features + 2) * 16 + 16
            : features * 16 + 16 + 16 * 2 + 2;
        assert.deepEqual(classifier.size, { kind: 'parameters', count });
      } finally {
        await classifier.release();
      }
    });
  }
});

describe('race: learners without backprop on XOR, which needs the hidden layer', () => {
  const xor = xorClusters(800, 5);
  const half = (start: number) => ({
    inputs: tensor(
      'float32',
      [400, 2],
      (xor.inputs.data as Float32Array).slice(start * 2, (start + 400) * 2),
    ),
    labels: xor.labels.slice(start, start + 400),
    classes: 2,
  });
  const [xorTrain, xorTest] = [half(0), half(400)];

  async function heldOutAccuracy(contender: Contender): Promise<number> {
    const classifier = await contender.train(xorTrain, { seed: 1, budgetSeconds: 3 });
    try {
      const probabilities = (await classifier.predictProba(xorTest.inputs)).data as Float32Array;
      return accuracy(probabilities, xorTest.labels, 2);
    } finally {
      await classifier.release();
    }
  }

  it('is out of reach of logistic regression (so it needs the hidden layer)', async () => {
    const linear = await heldOutAccuracy(logisticRegression());
    console.log(`logistic regression on XOR: held-out accuracy ${(100 * linear).toFixed(1)}%`);
    assert.ok(linear < 0.8, `logistic regression on XOR: ${linear}`);
  });

  for (const contender of PLANTED_CONTENDERS) {
    it(`${contender.name} learns it to > 95% in 3 s`, async () => {
      const found = await heldOutAccuracy(contender);
      console.log(`${contender.name} on XOR: held-out accuracy ${(100 * found).toFixed(1)}%`);
      assert.ok(found > 0.95, `held-out accuracy ${found}`);
    });
  }
});
