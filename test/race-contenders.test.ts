/** The contenders by name: the list the race will take, and its refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../src/errors.ts';
import { CONTENDER_NAMES, contendersNamed } from '../src/race/contenders.ts';
import { twoBlobs } from './race-oracles.ts';

describe('race: contenders by name', () => {
  it('makes each named contender, network learners with the shared hidden widths', async () => {
    const all = contendersNamed(CONTENDER_NAMES.join(','), { hidden: [3] });
    assert.deepEqual(
      all.map(({ name, family, usesBackprop }) => [name, family, usesBackprop]),
      [
        ['knn (k=5)', 'neighbours', false],
        ['logistic regression', 'linear', false],
        ['evolution strategies (OpenAI-ES)', 'network', false],
        ['SPSA', 'network', false],
        ['direct feedback alignment', 'network', false],
        ['forward-forward', 'network', false],
        ['gradient-boosted trees (YDF)', 'trees', false],
        ['random forest (YDF)', 'trees', false],
        ['backprop MLP', 'network', true],
        ['backprop CNN', 'network', true],
      ],
    );
    const data = twoBlobs(20, 4, 1);
    const dfa = await all[4].train(data, { seed: 1, budgetSeconds: 0.05 });
    await dfa.release();
    assert.deepEqual(dfa.size, { kind: 'parameters', count: 4 * 3 + 3 + 3 * 2 + 2 });
  });

  it('refuses an unknown name with the nearest, an empty list, and a repeated name', () => {
    assert.throws(
      () => contendersNamed('knn, dfx'),
      (error) =>
        error instanceof InputError &&
        error.message ===
          "Unknown contender 'dfx' (did you mean 'dfa'?): the contenders are " +
            'knn, logistic, es, spsa, dfa, ff, gbt, forest, mlp, cnn.',
    );
    assert.throws(() => contendersNamed(' , '), /names none/);
    assert.throws(() => contendersNamed('ff,knn,ff'), /'ff' is named twice/);
  });
});
