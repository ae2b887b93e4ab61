/**
 * inspect --counterfactual's pipeline on a planted shortcut (inspect/planted-shortcut.ts): the
 * counterfactual flips column 'a' of a table and nothing else; act#0 carries it, and its
 * direction in act is e₀, whose projection removes every flip — all known in closed form.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import {
  plantedShortcutExamples,
  plantedShortcutModel,
  SHORTCUT_UNIT,
  SHORTCUT_WIDTH,
} from '../inspect/planted-shortcut.ts';
import { Model } from '../runtime/model.ts';
import { attributeCarriers } from './attribute-carriers.ts';

describe('attributeCarriers on a planted shortcut', () => {
  const model = Model.fromProto(plantedShortcutModel(), 'planted shortcut', { threads: 1 });
  after(() => model.release());
  const { original } = plantedShortcutExamples(40);
  const featureNames = ['a', 's', 'z'];

  it("finds act#0 for 'a:flip', and a direction holding all of the movement whose projection removes every flip", async () => {
    const [found, ...rest] = await attributeCarriers(
      model,
      { input: original },
      ['act'],
      ['a:flip'],
      { fraction: 0.1, featureNames },
    );
    assert.equal(rest.length, 0);
    assert.deepEqual(
      [found.attribute, found.transform, found.hook, found.width],
      ['a', 'flip', 'act', SHORTCUT_WIDTH],
    );
    assert.deepEqual(found.units, [SHORTCUT_UNIT]);
    assert.equal(found.flipRate.none, 1);
    assert.equal(found.flipRate.carriers, 0);
    assert.ok(!('mean' in found), 'the ablation values stay out of the result');
    assert.ok(
      found.direction && Math.abs(found.direction.energyShare - 1) < 1e-9,
      JSON.stringify(found.direction),
    );
    assert.equal(found.direction.flipRate, 0);
  });

  it("a counterfactual on a column the model ignores ('z:shuffle') leaves nothing to remove", async () => {
    const [found] = await attributeCarriers(model, { input: original }, ['act'], ['z:shuffle'], {
      fraction: 0.1,
      featureNames,
    });
    assert.deepEqual(found.flipRate, { none: 0, carriers: 0, random: 0 });
  });

  it('refuses a transform the data cannot take, before any run', async () => {
    await assert.rejects(
      attributeCarriers(model, { input: original }, ['act'], ['a:channel-swap'], {
        fraction: 0.1,
        featureNames,
      }),
      (e: Error) => e instanceof InputError && /works on images/.test(e.message),
    );
  });
});
