/**
 * The shortcut verdict (shortcutVerdict), on carrier results written down by hand: spread when
 * the carriers remove under half of the counterfactual flips, in a direction when projecting it
 * out removes at least half — the statement the terminal and the report make from the numbers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flipsRemoved, shortcutVerdict, type ShortcutUnits } from './audit.ts';

function units(
  flipRate: { none: number; carriers: number },
  direction?: { none: number; projected: number },
): ShortcutUnits {
  return {
    shortcut: 'color',
    hook: 'act1',
    units: [3, 7],
    width: 20,
    randomUnits: [1, 2],
    curve: [flipRate.carriers],
    flipRate: { ...flipRate, random: flipRate.none },
    accuracy: { data: { none: 0.9, carriers: 0.8, random: 0.9 } },
    ...(direction
      ? {
          direction: {
            energyShare: 0.7,
            flipRate: direction,
            accuracy: { data: { none: 0.9, projected: 0.8 } },
          },
        }
      : {}),
  };
}

describe('shortcutVerdict', () => {
  it('the carriers remove (none − carriers) / none of the flips', () => {
    assert.equal(flipsRemoved(units({ none: 0.5, carriers: 0.375 })), 0.25);
    assert.equal(flipsRemoved(units({ none: 0, carriers: 0 })), 0);
  });

  const cases: [string, ShortcutUnits, { spread: boolean; inDirection: boolean }][] = [
    [
      'spread, held by a direction (colored-MNIST)',
      units({ none: 0.8, carriers: 0.6 }, { none: 0.8, projected: 0.1 }),
      { spread: true, inDirection: true },
    ],
    [
      'spread, and no direction holds it',
      units({ none: 0.8, carriers: 0.6 }, { none: 0.8, projected: 0.5 }),
      { spread: true, inDirection: false },
    ],
    [
      'a few units hold it (exactly half removed)',
      units({ none: 0.75, carriers: 0.375 }),
      { spread: false, inDirection: false },
    ],
    [
      'a few units hold it, and a direction too (exactly half removed)',
      units({ none: 0.75, carriers: 0.125 }, { none: 0.75, projected: 0.375 }),
      { spread: false, inDirection: true },
    ],
  ];
  for (const [what, given, expected] of cases) {
    it(what, () => {
      const { spread, inDirection } = shortcutVerdict(given);
      assert.deepEqual({ spread, inDirection }, expected);
    });
  }
});
