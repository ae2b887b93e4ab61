/**
 * The demo's race answers with measured flip rates: kNN's, counted here by hand from a kNN trained
 * apart on the same rows, predicting each test image and the same image with its two colour
 * channels swapped, is the one the scorecard reports and judges.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kNearestNeighbours } from '../race/knn.ts';
import { firstRowsOfTask, raceTask } from '../race/race-task.ts';
import { tensor } from '../tensor.ts';
import { shortcutRace } from './race-study.ts';

const ROWS = 300;

/** The predicted class of each row (the first of equal probabilities). */
function predictions(probabilities: Float32Array, classes: number): number[] {
  const rows = probabilities.length / classes;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (probabilities[r * classes + c] > probabilities[r * classes + best]) best = c;
    return best;
  });
}

describe('demo: the race on the colour shortcut', () => {
  it("reports kNN's flip rate as counted by hand, and judges it", async () => {
    const card = await shortcutRace({ contenders: 'knn,logistic', budgetSeconds: 1, rows: ROWS });
    const knn = card.contenders.find((c) => c.name === 'knn (k=5)')!;

    const { split } = firstRowsOfTask(raceTask('colored-mnist'), ROWS);
    const classifier = await kNearestNeighbours().train(split.train, { seed: 1, budgetSeconds: 1 });
    const images = split.test.inputs.data as Float32Array; // [rows, 2, 14, 14]
    const plane = 14 * 14;
    const swapped = new Float32Array(images.length);
    for (let r = 0; r < ROWS; r++) {
      swapped.set(images.subarray((2 * r + 1) * plane, (2 * r + 2) * plane), 2 * r * plane);
      swapped.set(images.subarray(2 * r * plane, (2 * r + 1) * plane), (2 * r + 1) * plane);
    }
    const before = predictions(
      (await classifier.predictProba(split.test.inputs)).data as Float32Array,
      2,
    );
    const after = predictions(
      (await classifier.predictProba(tensor('float32', [ROWS, 2, 14, 14], swapped)))
        .data as Float32Array,
      2,
    );
    await classifier.release();
    const flips = before.filter((label, r) => label !== after[r]).length / ROWS;

    // kNN compares pixels channel by channel: it reads the colour (a flip rate far from 0).
    assert.ok(flips > 0.5, `kNN flips ${flips}`);
    assert.equal(card.shortcutAttribute, 'color');
    assert.equal(knn.shortcut!.transform, 'channel-swap');
    assert.equal(knn.shortcut!.flipRate, flips);
    const verdict = card.verdict!.contenders.find((c) => c.name === knn.name)!;
    // The scorecard's rule: it avoids the shortcut only if the flip rate's upper end is below 5%.
    if (knn.shortcut!.high >= 0.05) assert.equal(verdict.avoids, false);
    assert.equal(card.verdict!.avoiding.includes(knn.name), verdict.avoids === true);
  });
});
