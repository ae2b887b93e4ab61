/**
 * Fuzzing the CSV reader (src/data/csv.ts): tables built from hostile cells (numbers in every
 * notation, quotes, embedded separators and newlines, control characters), ragged rows, line
 * endings, byte-order marks and encodings (UTF-8, UTF-16, Latin-1 bytes), and byte mutations of
 * a valid table; read with and without a label column, with and without --allow-non-finite.
 * Each must give a table whose shape and values keep the reader's promises, or an InputError.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readTable, type Table } from '../../src/data/csv.ts';
import { allowNonFinite } from '../../src/data/validate.ts';
import { InputError } from '../../src/errors.ts';
import {
  assertWellBehaved,
  fuzzParameters,
  hostileString,
  inFreshDir,
  mutatedBytes,
} from './support.ts';

const numberCell = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) },
  { weight: 3, arbitrary: fc.double({ noNaN: false }).map(String) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '1e999',
      '-1e999',
      'inf',
      '-Infinity',
      'nan',
      'NaN',
      '0x1F',
      '0b11',
      '1_000',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '.5',
      '5.',
      '+3',
      '--3',
      '1e',
      'e5',
      '١٢',
      '1e-400',
      '00012',
      ' 7 ',
      '1,5',
    ),
  },
);
const cell = fc.oneof(
  { weight: 40, arbitrary: numberCell },
  { weight: 1, arbitrary: hostileString },
);

/** One field as written in the file: bare, quoted (quotes doubled), or (rarely) broken quoting. */
const field = fc.oneof(
  { weight: 30, arbitrary: cell },
  { weight: 10, arbitrary: cell.map((text) => `"${text.replaceAll('"', '""')}"`) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(cell, fc.constantFrom('"#', '#"', '"#"x'))
      .map(([text, form]) => form.replace('#', text)),
  },
);

/** A row's width relative to the header: usually the same, sometimes ragged. */
const raggedness = fc.oneof(
  { weight: 30, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) },
);

const columnName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('label', 'x', 'y', 'f1', 'z', 'a b', '"q"') },
  { weight: 1, arbitrary: hostileString },
);

const table = fc
  .record({
    columns: fc.integer({ min: 1, max: 5 }),
    rows: fc.integer({ min: 0, max: 6 }),
    names: fc.array(columnName, { minLength: 5, maxLength: 5 }),
    fields: fc.array(field, { minLength: 40, maxLength: 40 }),
    ragged: fc.array(raggedness, { minLength: 6, maxLength: 6 }),
    newline: fc.constantFrom('\n', '\r\n', '\r', '\n\n'),
    separator: fc.constantFrom(',', ',', ',', ',', ';', '\t'),
    trailing: fc.boolean(),
  })
  .map(({ columns, rows, names, fields, ragged, newline, separator, trailing }) => {
    const lines = [names.slice(0, columns).join(separator)];
    for (let r = 0; r < rows; r++) {
      const width = Math.max(0, columns + ragged[r]);
      const row = Array.from({ length: width }, (_, c) => fields[(r * 7 + c) % fields.length]);
      lines.push(row.join(separator));
    }
    return lines.join(newline) + (trailing ? newline : '');
  });

/** The table's text as bytes: UTF-8 with or without BOM, UTF-16 LE/BE with BOM, or Latin-1. */
const encoded = fc
  .tuple(table, fc.constantFrom('utf8', 'utf8', 'utf8', 'utf8-bom', 'utf16le', 'utf16be', 'latin1'))
  .map(([text, encoding]) => {
    if (encoding === 'utf8') return new Uint8Array(Buffer.from(text, 'utf8'));
    if (encoding === 'utf8-bom') return new Uint8Array(Buffer.from(`\uFEFF${text}`, 'utf8'));
    if (encoding === 'latin1')
      return new Uint8Array(Buffer.from(text.replace(/[^\x00-\xff]/g, 'é'), 'latin1'));
    const little = Buffer.from(`\uFEFF${text}`, 'utf16le');
    return new Uint8Array(encoding === 'utf16le' ? little : little.swap16());
  });

const VALID = new Uint8Array(
  Buffer.from('f0,f1,"f,2",label\n0.5,-1,3e2,1\n2,"4.25",0,0\n-7,8,1e-3,1\n'),
);

const anyTable = fc.oneof(
  { weight: 8, arbitrary: encoded },
  { weight: 2, arbitrary: mutatedBytes(VALID) },
  { weight: 1, arbitrary: encoded.chain(mutatedBytes) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 120 }) },
);

const labelColumn = fc.option(
  fc.oneof(fc.constantFrom('label', 'x', 'f1', 'label'), hostileString),
  {
    nil: undefined,
  },
);

/** What a table read without refusal promises: [rows, features] float32, finite unless allowed, labels ≥ 0. */
function checkTable(read: Table, nonFinite: boolean, what: string): void {
  const [rows, columns] = read.features.dims;
  assert.equal(read.features.data.length, rows * columns, what);
  assert.equal(read.featureNames.length, columns, what);
  assert.ok(rows > 0, `${what}: a table without rows is refused`);
  if (!nonFinite) assert.ok((read.features.data as Float32Array).every(Number.isFinite), what);
  if (read.labels) {
    assert.equal(read.labels.dims[0], rows, what);
    assert.ok(
      (read.labels.data as BigInt64Array).every((label) => label >= 0n),
      `${what}: labels ≥ 0`,
    );
  }
}

describe('fuzz: the CSV reader', { timeout: 60_000 }, () => {
  it('built, re-encoded, mutated and random tables: a table or an InputError', async () => {
    const property = fc.asyncProperty(
      anyTable,
      labelColumn,
      fc.boolean(),
      async (bytes, label, nonFinite) => {
        await inFreshDir(async (dir) => {
          const path = join(dir, 'table.csv');
          writeFileSync(path, bytes);
          const what = `table of ${bytes.length} bytes, label column ${JSON.stringify(label)}`;
          allowNonFinite(nonFinite);
          try {
            const outcome = await assertWellBehaved(
              () => readTable(path, { labelColumn: label }),
              what,
            );
            if (outcome.kind === 'value') checkTable(outcome.value as Table, nonFinite, what);
          } finally {
            allowNonFinite(false);
          }
        });
      },
    );
    await fc.assert(property, fuzzParameters());
  });
});

describe('regressions found by fuzzing the CSV reader', () => {
  const text = 'x,"y, z",label\r\n1.5,-2,1\r\n3,4e-1,0\r\n';
  const read = (bytes: Uint8Array) =>
    inFreshDir((dir) => {
      writeFileSync(join(dir, 't.csv'), bytes);
      return readTable(join(dir, 't.csv'), { labelColumn: 'label' });
    });

  it('UTF-16 with its byte-order mark (LE and BE) reads as the same table as UTF-8', async () => {
    // Before: "is not a readable CSV table: Invalid Opening Quote ... value is '\u0000'".
    const utf8 = await read(new Uint8Array(Buffer.from(text)));
    const little = Buffer.from(`\uFEFF${text}`, 'utf16le');
    const big = Buffer.from(little).swap16();
    for (const bytes of [little, big]) {
      const table = await read(new Uint8Array(bytes));
      assert.deepEqual(table.featureNames, ['x', 'y, z']);
      assert.deepEqual(table.features, utf8.features);
      assert.deepEqual(table.labels, utf8.labels);
    }
  });

  it('UTF-16 cut to an odd number of bytes is refused as cut short', async () => {
    const bytes = Buffer.from(`\uFEFF${text}`, 'utf16le').subarray(0, 31);
    await assert.rejects(read(new Uint8Array(bytes)), (error: Error) => {
      assert.ok(error instanceof InputError);
      assert.match(error.message, /starts as UTF-16 text but has an odd number of bytes \(31\)/);
      return true;
    });
  });
});
