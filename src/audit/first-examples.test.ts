/** firstExamples keeps rows 0…count−1 of every input, label and attribute, and reads none past them. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { tensor } from '../tensor.ts';
import type { AuditData } from './data.ts';
import { inMemory, readFeeds } from './examples.ts';
import { firstExamples } from './first-examples.ts';

it('cuts every input, label and attribute to the first rows alike', () => {
  // Row i holds i in every place, so any row read can be told by its value.
  const rows = 10;
  const tokens = {
    ...inMemory(
      tensor(
        'int64',
        [rows, 2],
        Array.from({ length: 2 * rows }, (_, k) => Math.floor(k / 2)),
      ),
    ),
    input: 'ids',
  };
  const mask = inMemory(
    tensor(
      'float32',
      [rows, 2],
      Array.from({ length: 2 * rows }, (_, k) => Math.floor(k / 2)),
    ),
  );
  const data: AuditData = {
    path: 'planted',
    layout: { kind: 'other', dims: [2] },
    inputs: { ...tokens, passThrough: { mask } },
    labels: Int32Array.from({ length: rows }, (_, i) => i),
    attributes: [{ name: 'group', values: Float64Array.from({ length: rows }, (_, i) => i) }],
  };
  const cut = firstExamples(data, 3);
  assert.deepEqual([...cut.labels], [0, 1, 2]);
  assert.deepEqual([...cut.attributes[0].values], [0, 1, 2]);
  assert.equal(cut.inputs.rows, 3);
  assert.equal(cut.inputs.passThrough!.mask.rows, 3);
  const feeds = readFeeds(cut.inputs, 1, 8, 'ids');
  assert.deepEqual(Array.from(feeds.ids.data as BigInt64Array, Number), [1, 1, 2, 2]);
  assert.deepEqual(Array.from(feeds.mask.data as Float32Array), [1, 1, 2, 2]);
  assert.equal(firstExamples(data, 50).labels.length, rows, 'a count past the end keeps every row');
});
