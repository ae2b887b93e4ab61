/**
 * The demo's unit-ablation study on a network small enough to work out by hand:
 *   input [batch, 2] → act1 = Relu(x) → scores = act1 + (0.05, 0)
 * Four examples (3, 0) (0, 1) (2, 0) (0, 5), labels 0 1 0 1: all correct. act1's means are
 * 1.25 and 1.5, so unit 1 is the most active; zeroing it leaves (0.05, 0) for the class-1 rows,
 * which flip to class 0. Zeroing unit 0 changes no prediction.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { GraphBuilder } from '../graph/builder.ts';
import { randomUnits } from '../inspect/ablation-study.ts';
import { Model } from '../runtime/model.ts';
import { tensor } from '../tensor.ts';
import { ablationEffect, unitAblationStudy } from './unit-ablation.ts';

function handModel(): Model {
  const g = new GraphBuilder('hand', 17);
  const act = g.node('Relu', [g.input('input', 'float32', ['batch', 2])], {}, '/act1/Relu');
  g.output(
    g.node(
      'Add',
      [act, g.initializer('bias', tensor('float32', [2], [0.05, 0]))],
      {},
      '/head/Add',
      'scores',
    ),
    'float32',
  );
  return Model.fromProto(g.build(), 'hand', { threads: 1 });
}

describe('unitAblationStudy', () => {
  const model = handModel();
  after(() => model.release());
  const feeds = { input: tensor('float32', [4, 2], [3, 0, 0, 1, 2, 0, 0, 5]) };
  const labels = tensor('int64', [4], [0, 1, 0, 1]);

  it('finds the most active unit by its mean and measures what zeroing it costs, per class', async () => {
    const seed = 5;
    const study = await unitAblationStudy(model, feeds, labels, {
      hook: 'act1',
      units: 1,
      seed,
      batchSize: 3,
    });
    assert.deepEqual(Array.from(study.unitMeans), [1.25, 1.5]);
    assert.equal(study.clean.accuracy, 1);
    assert.deepEqual(study.mostActiveUnits, [1]);
    assert.equal(study.deadUnits, 0);
    const [top, random] = study.ablations;
    assert.deepEqual(
      { ...top },
      {
        name: 'zero-ablate the 1 most active',
        units: [1],
        accuracy: 0.5,
        interval: top.interval,
        flipRate: 0.5,
        hardestHit: [
          { digit: 1, drop: 1 },
          { digit: 0, drop: 0 },
        ],
      },
    );
    // Zeroing unit 0 leaves every prediction as it was; zeroing unit 1 is the case above.
    const drawn = randomUnits(2, 1, seed);
    assert.deepEqual(random.units, drawn);
    assert.equal(random.flipRate, drawn[0] === 1 ? 0.5 : 0);
  });
});

describe('ablationEffect', () => {
  it('counts flips, and ranks the classes by their accuracy drop (lower class first among equals)', () => {
    const labels = [0, 0, 1, 1, 2, 2, 3, 3];
    const clean = Int32Array.from([0, 0, 1, 1, 2, 2, 3, 0]);
    const ablated = Int32Array.from([0, 1, 1, 0, 2, 0, 3, 3]);
    // drops: class 0 (2 − 1)/2, class 1 (2 − 1)/2, class 2 (2 − 1)/2, class 3 (1 − 2)/2
    const effect = ablationEffect(clean, ablated, labels);
    assert.equal(effect.flipRate, 4 / 8);
    assert.deepEqual(effect.hardestHit, [
      { digit: 0, drop: 0.5 },
      { digit: 1, drop: 0.5 },
      { digit: 2, drop: 0.5 },
    ]);
  });

  it('leaves out classes without examples', () => {
    const effect = ablationEffect(Int32Array.from([2, 2]), Int32Array.from([0, 2]), [2, 2]);
    assert.deepEqual(effect.hardestHit, [{ digit: 2, drop: 0.5 }]);
  });
});
