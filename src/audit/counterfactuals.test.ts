/** auditCounterfactuals: named ones first; each table-column attribute gets flip (binary) or shuffle; others a note. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { tensor } from '../tensor.ts';
import { auditCounterfactuals } from './counterfactuals.ts';
import type { AuditData } from './data.ts';
import { inMemory } from './examples.ts';

it('gives each table column attribute its own counterfactual unless named, and notes the others', () => {
  const rows = 4;
  const values = (list: number[]) => Float64Array.from(list);
  const data: AuditData = {
    path: 'table.csv',
    inputs: inMemory(tensor('float32', [rows, 3], new Float32Array(3 * rows))),
    labels: new Int32Array(rows),
    layout: { kind: 'table', featureNames: ['x', 'group', 'score'] },
    attributes: [
      { name: 'score', values: values([0.5, 2, 1, 0]), column: 2 },
      { name: 'group', values: values([0, 1, 1, 0]), column: 1 },
      { name: 'site', values: values([0, 1, 2, 0]) },
    ],
  };
  const plain = auditCounterfactuals([], data);
  assert.deepEqual(plain.counterfactuals, [
    { attribute: 'score', transform: 'shuffle', column: 2 },
    { attribute: 'group', transform: 'flip', column: 1 },
  ]);
  assert.equal(plain.notes.length, 1);
  assert.match(
    plain.notes[0],
    /'site' is used for segments and shift only; .*--counterfactual site:TRANSFORM/,
  );
  const named = auditCounterfactuals(['group:shuffle'], data);
  assert.deepEqual(
    named.counterfactuals.map((c) => `${c.attribute}:${c.transform}`),
    ['group:shuffle', 'score:shuffle'],
  );
});
