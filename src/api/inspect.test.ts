/**
 * The library's inspect with counterfactuals: the units that carry an attribute, found on a
 * network with a planted shortcut (inspect/planted-shortcut.ts), as `teardown inspect
 * --counterfactual` reports them, with the share of units searched as a parameter.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  plantedShortcutExamples,
  plantedShortcutModel,
  SHORTCUT_UNIT,
} from '../inspect/planted-shortcut.ts';
import { inspect, Model } from '../index.ts';

describe('inspect with counterfactuals', () => {
  const model = Model.fromProto(plantedShortcutModel(), 'planted shortcut', { threads: 1 });
  after(() => model.release());
  const { original } = plantedShortcutExamples(40);
  const labels = {
    dtype: 'int64' as const,
    dims: [40],
    data: BigInt64Array.from({ length: 40 }, (_, i) => BigInt(i % 2)),
  };

  it('names the planted carrier of the attribute in the inspected hook, with its direction', async () => {
    const result = await inspect(model, original, {
      labels,
      hooks: ['act'],
      counterfactuals: ['a:flip'],
      featureNames: ['a', 's', 'z'],
    });
    assert.equal(result.carriers?.length, 1);
    const [found] = result.carriers!;
    assert.deepEqual([found.attribute, found.hook, found.units], ['a', 'act', [SHORTCUT_UNIT]]);
    assert.deepEqual([found.flipRate.none, found.flipRate.carriers], [1, 0]);
    assert.equal(found.direction?.flipRate, 0);
  });

  it('searches carrierFraction of the units (at least one)', async () => {
    const { carriers } = await inspect(model, original, {
      hooks: ['act'],
      counterfactuals: ['a:flip'],
      featureNames: ['a', 's', 'z'],
      carrierFraction: 0.5,
      carrierExamples: 8,
    });
    assert.equal(carriers![0].units.length, 5);
    assert.equal(carriers![0].units[0], SHORTCUT_UNIT);
  });

  it('adds no carriers without counterfactuals', async () => {
    const result = await inspect(model, original, { labels, hooks: ['act'] });
    assert.equal(result.carriers, undefined);
  });
});
