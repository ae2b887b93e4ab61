/**
 * The race's split of each task (src/race/race-task.ts): colored-mnist's in-distribution test
 * held out of the training environments, its test environment as the shifted set and its colour
 * attribute aligned with each row's ink; a user's table and its shifted file (class names mapped
 * to the training table's classes); the data seed fixing every row.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadTask } from '../src/data/tasks.ts';
import type { RaceData } from '../src/race/contender.ts';
import { firstRowsOfTask, raceTask, rowsHash } from '../src/race/race-task.ts';
import { tempDir } from './model-files.ts';

/** Each row as text: its inputs' bytes and its label (the rows as a multiset). */
function rowKeys(data: RaceData): string[] {
  const rows = data.inputs.dims[0];
  const values = data.inputs.data as Float32Array;
  const width = values.length / rows;
  const labels = 'dims' in data.labels ? data.labels.data : data.labels;
  return Array.from({ length: rows }, (_, r) => {
    const bytes = Buffer.from(values.buffer, values.byteOffset + 4 * r * width, 4 * width);
    return `${bytes.toString('base64')}|${Number(labels[r])}`;
  });
}

describe('race: the split of each task', () => {
  it('colored-mnist: test held out of the training environments, the test environment shifted, the colour where the ink is', () => {
    const task = raceTask('colored-mnist', { dataSeed: 3 });
    const source = loadTask('colored-mnist', { dataSeed: 3 });
    const { train, test, shifted } = task.split;
    assert.deepEqual(
      [train, test].map((d) => d.inputs.dims[0]),
      [6400, 1600],
    );
    // Together the training environments' 8,000 rows, each once.
    assert.deepEqual(
      [...rowKeys(train), ...rowKeys(test)].sort(),
      rowKeys({ inputs: source.train.inputs, labels: source.train.labels }).sort(),
    );
    assert.equal(
      rowsHash(shifted!),
      rowsHash({ inputs: source.test.inputs, labels: source.test.labels }),
    );
    // The attribute the audit groups by is the channel that holds each test row's ink.
    const color = task.audit.attributes!.color;
    const pixels = 14 * 14;
    const inputs = test.inputs.data as Float32Array;
    for (let r = 0; r < 1600; r++) {
      const ink = (channel: number) =>
        inputs
          .subarray((2 * r + channel) * pixels, (2 * r + channel + 1) * pixels)
          .reduce((sum, v) => sum + v, 0);
      assert.equal(ink(1 - Number(color[r])), 0, `row ${r}: ink outside its colour's channel`);
    }
    assert.deepEqual(task.audit.counterfactuals, ['color:channel-swap']);
    assert.equal(task.shortcutAttribute, 'color');
    assert.deepEqual(
      [task.record.train, task.record.test, task.record.shifted, task.record.seed],
      [6400, 1600, 2000, 3],
    );
    // The seed fixes the rows: the same seed gives the same sets, another seed others.
    assert.deepEqual(raceTask('colored-mnist', { dataSeed: 3 }).record, task.record);
    const other = raceTask('colored-mnist', { dataSeed: 4 }).record.sha256;
    assert.notEqual(other.train, task.record.sha256.train);
    assert.notEqual(other.test, task.record.sha256.test);
  });

  it('a table with a shifted table: class names mapped to the training classes, columns checked', () => {
    const dir = tempDir();
    const table = join(dir, 'train.csv');
    const lines = ['x,group,label'];
    for (let r = 0; r < 20; r++) lines.push(`${r},${r % 2},${r < 10 ? 'cat' : 'dog'}`);
    writeFileSync(table, `${lines.join('\n')}\n`);
    // Only dogs: on its own the table would number 'dog' 0; the training table numbers it 1.
    const shiftedPath = join(dir, 'shifted.csv');
    writeFileSync(shiftedPath, 'x,group,label\n5,1,dog\n6,0,dog\n');
    const task = raceTask(`csv:${table}`, {
      labelColumn: 'label',
      attributes: ['group'],
      shifted: shiftedPath,
    });
    const shifted = task.split.shifted!;
    assert.deepEqual(Array.from(shifted.inputs.data as Float32Array), [5, 1, 6, 0]);
    assert.deepEqual(Array.from((shifted.labels as { data: BigInt64Array }).data, Number), [1, 1]);
    assert.deepEqual(task.audit.featureNames, ['x', 'group']);
    assert.equal(task.shortcutAttribute, 'group');
    // Each test row's attribute is its 'group' column.
    const test = task.split.test.inputs.data as Float32Array;
    assert.deepEqual(
      Array.from(task.audit.attributes!.group),
      Array.from({ length: test.length / 2 }, (_, r) => test[2 * r + 1]),
    );
    const wrongColumns = join(dir, 'wrong.csv');
    writeFileSync(wrongColumns, 'x,label\n1,dog\n');
    assert.throws(
      () => raceTask(`csv:${table}`, { labelColumn: 'label', shifted: wrongColumns }),
      /has the columns x, but the task's table has x, group/,
    );
    const unknownClass = join(dir, 'bird.csv');
    writeFileSync(unknownClass, 'x,group,label\n1,0,bird\n');
    assert.throws(
      () => raceTask(`csv:${table}`, { labelColumn: 'label', shifted: unknownClass }),
      /has the class 'bird', which the task's table does not/,
    );
  });

  it('refuses a shifted file for a built-in task, and cuts each set for a smoke run', () => {
    assert.throws(
      () => raceTask('mnist', { shifted: 'x.csv' }),
      /mnist has no shifted set: --shifted FILE applies to csv: and npy: tasks/,
    );
    const small = firstRowsOfTask(raceTask('colored-mnist'), 50);
    assert.deepEqual(
      [small.split.train, small.split.test, small.split.shifted!].map((d) => d.inputs.dims[0]),
      [50, 50, 50],
    );
    assert.equal(small.audit.attributes!.color.length, 50);
    assert.equal(small.record.sha256.test, rowsHash(small.split.test));
  });
});
