/**
 * The carrier search on a network with a planted shortcut (planted-shortcut.ts): the unit that
 * carries the attribute is found, its ablation removes every flip, and the budget follows
 * ⌊fraction · width⌋ (at least one) in every hook searched.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { Model } from '../runtime/model.ts';
import { randomUnits } from './ablation-study.ts';
import { carrierBudget, carriersPerHook } from './carriers.ts';
import {
  plantedShortcutExamples,
  plantedShortcutModel,
  SHORTCUT_UNIT,
  SHORTCUT_WIDTH,
} from './planted-shortcut.ts';

describe('carrierBudget', () => {
  it('is ⌊fraction · width⌋, at least one', () => {
    assert.equal(carrierBudget(0.1, 10), 1);
    assert.equal(carrierBudget(0.1, 64), 6);
    assert.equal(carrierBudget(0.1, 5), 1);
    assert.equal(carrierBudget(0, 64), 1);
    assert.equal(carrierBudget(1, 7), 7);
  });

  it('refuses a fraction outside [0, 1]', () => {
    for (const fraction of [-0.1, 1.5, Number.NaN]) {
      assert.throws(
        () => carrierBudget(fraction, 10),
        (e: Error) => e instanceof InputError && /must lie in \[0, 1\]/.test(e.message),
      );
    }
  });
});

describe('carriersPerHook on a planted shortcut', () => {
  const model = Model.fromProto(plantedShortcutModel(), 'planted shortcut', { threads: 1 });
  after(() => model.release());
  const { original, flipped } = plantedShortcutExamples(40);

  it('names the one unit that carries the attribute: ablating it removes every flip, as many random units none', async () => {
    const [found] = await carriersPerHook(model, ['act'], original, flipped, {
      fraction: 0.1,
      seed: 3,
    });
    assert.equal(found.hook, 'act');
    assert.equal(found.width, SHORTCUT_WIDTH);
    assert.deepEqual(found.units, [SHORTCUT_UNIT]);
    assert.deepEqual(found.curve, [0]);
    const random = randomUnits(SHORTCUT_WIDTH, 1, 3);
    assert.deepEqual(found.randomUnits, random);
    assert.deepEqual(found.flipRate, {
      none: 1,
      carriers: 0,
      random: random.includes(SHORTCUT_UNIT) ? 0 : 1,
    });
    // The mean ablation puts in each unit's mean over the original examples: act#0 = mean(a) = ½.
    assert.equal(found.mean.data[SHORTCUT_UNIT], 0.5);
  });

  it('takes ⌊fraction · width⌋ carriers, the shortcut unit first', async () => {
    const [found] = await carriersPerHook(model, ['act'], original, flipped, { fraction: 0.3 });
    assert.equal(found.units.length, 3);
    assert.equal(found.units[0], SHORTCUT_UNIT);
    assert.deepEqual(found.curve, [0, 0, 0]);
  });

  it('skips hooks narrower than minWidth, keeping the order of the others', async () => {
    const all = await carriersPerHook(model, ['head', 'act'], original, flipped, { fraction: 0 });
    assert.deepEqual(
      all.map((c) => [c.hook, c.width]),
      [
        ['head', 2],
        ['act', SHORTCUT_WIDTH],
      ],
    );
    const wide = await carriersPerHook(model, ['head', 'act'], original, flipped, {
      fraction: 0,
      minWidth: 4,
    });
    assert.deepEqual(
      wide.map((c) => c.hook),
      ['act'],
    );
  });
});
