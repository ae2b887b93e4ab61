/** The causal-mask check against masks whose answer is known by construction. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tensor, type Tensor } from '../tensor.ts';
import { allHidden, hidesLaterKeys } from './causal-mask.ts';

/** A [1, 1, T, T] boolean mask, true (hidden) where `hide(query, key)`. */
const boolMask = (positions: number, hide: (query: number, key: number) => boolean) =>
  tensor(
    'bool',
    [1, 1, positions, positions],
    Array.from({ length: positions * positions }, (_, k) =>
      hide(Math.floor(k / positions), k % positions) ? 1 : 0,
    ),
  );
const hiddenWhereTrue = (mask: Tensor) => (index: number) => Number(mask.data[index]) === 1;

describe('hidesLaterKeys', () => {
  it('accepts the causal mask (keys after the query hidden) and masks hiding more', () => {
    const causal = boolMask(5, (q, k) => k > q);
    assert.equal(hidesLaterKeys(causal, 4, 2, 3, 5, hiddenWhereTrue(causal)), true);
    const window = boolMask(5, (q, k) => k > q || k < q - 1); // a sliding window is causal too
    assert.equal(hidesLaterKeys(window, 4, 2, 3, 5, hiddenWhereTrue(window)), true);
  });

  it('refuses a mask that shows one later key, no mask at all, and a mask of the wrong length', () => {
    const leaky = boolMask(5, (q, k) => k > q && !(q === 2 && k === 4));
    assert.equal(hidesLaterKeys(leaky, 4, 2, 3, 5, hiddenWhereTrue(leaky)), false);
    const none = boolMask(5, () => false);
    assert.equal(hidesLaterKeys(none, 4, 2, 3, 5, hiddenWhereTrue(none)), false);
    const causal = boolMask(5, (q, k) => k > q);
    assert.equal(hidesLaterKeys(causal, 4, 2, 3, 6, hiddenWhereTrue(causal)), false);
  });

  it('reads broadcast axes as every query or key', () => {
    // A key-only mask [1, T] hiding every key but the first hides every later key from every query.
    const firstKeyOnly = tensor('float32', [1, 4], [0, -Infinity, -Infinity, -Infinity]);
    assert.equal(
      hidesLaterKeys(firstKeyOnly, 4, 2, 3, 4, (i) => Number(firstKeyOnly.data[i]) <= -1e30),
      true,
    );
    // A padding mask hiding only the last key lets query 0 see key 1.
    const padding = tensor('float32', [1, 4], [0, 0, 0, -Infinity]);
    assert.equal(
      hidesLaterKeys(padding, 4, 2, 3, 4, (i) => Number(padding.data[i]) <= -1e30),
      false,
    );
  });
});

describe('allHidden', () => {
  it('takes −∞ and finfo.min fills, not large finite ones', () => {
    assert.equal(allHidden(tensor('float32', [], [-Infinity])), true);
    assert.equal(allHidden(tensor('float32', [1], [-3.4028234663852886e38])), true);
    assert.equal(allHidden(tensor('float32', [1], [-1e4])), false);
  });
});
