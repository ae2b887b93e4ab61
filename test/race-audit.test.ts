/**
 * A race contender's classifier goes to the library's audit as it is (api/audit.ts accepts any
 * `{ classes, predictProba }`): the audit's accuracy equals the one computed here from the same
 * probabilities, and the detectors that read a network's insides are skipped with their note.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { audit } from '../src/api/audit.ts';
import { NOT_A_NETWORK } from '../src/audit/audit.ts';
import { directFeedbackAlignment } from '../src/race/dfa.ts';
import { kNearestNeighbours } from '../src/race/knn.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import { accuracy, twoBlobs, rowsOf } from './race-oracles.ts';

const features = 4;
const blobs = twoBlobs(400, features, 31, 2);
const [train, test] = [rowsOf(blobs, 0, 200), rowsOf(blobs, 200, 400)];

describe('race: contenders in the audit', () => {
  for (const contender of [
    kNearestNeighbours(),
    logisticRegression(),
    directFeedbackAlignment({ hidden: [8] }),
  ]) {
    it(`audits ${contender.name}`, async () => {
      const classifier = await contender.train(train, { seed: 2, budgetSeconds: 1 });
      try {
        const expected = accuracy(
          (await classifier.predictProba(test.inputs)).data as Float32Array,
          test.labels,
          2,
        );
        const result = await audit(classifier, { inputs: test.inputs, labels: test.labels });
        assert.equal(result.accuracy.data.value, expected);
        assert.equal(result.data.classes, 2);
        assert.ok(result.notes.includes(NOT_A_NETWORK), result.notes.join('\n'));
      } finally {
        await classifier.release();
      }
    });
  }
});
