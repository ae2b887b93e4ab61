import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTable, wrap } from './table.ts';

describe('formatTable', () => {
  const header = ['hook', 'finding'];
  const rows = [
    ['act1', 'colour flips 62% of predictions when swapped'],
    ['act2', 'none'],
  ];

  it('pads columns to their widest cell when there is room (or no terminal)', () => {
    assert.equal(
      formatTable(header, rows, undefined),
      [
        'hook  finding',
        '----  --------------------------------------------',
        'act1  colour flips 62% of predictions when swapped',
        'act2  none',
      ].join('\n'),
    );
    assert.equal(formatTable(header, rows, 200), formatTable(header, rows, undefined));
  });

  it('wraps the widest column at spaces to fit the terminal, every line within the width', () => {
    const table = formatTable(header, rows, 30);
    for (const line of table.split('\n'))
      assert.ok(line.length <= 30, `'${line}' is ${line.length} wide`);
    assert.equal(
      table,
      [
        'hook  finding',
        '----  ------------------------',
        'act1  colour flips 62% of',
        '      predictions when swapped',
        'act2  none',
      ].join('\n'),
    );
    // Every word of every cell is still there, in order.
    assert.equal(
      table.split('\n').slice(2).join(' ').replace(/\s+/g, ' '),
      'act1 colour flips 62% of predictions when swapped act2 none',
    );
  });

  it('cuts a word longer than its column', () => {
    assert.deepEqual(wrap('/blocks/blocks.0/Add_1_output_0 x', 10), [
      '/blocks/bl',
      'ocks.0/Add',
      '_1_output_',
      '0 x',
    ]);
  });
});
