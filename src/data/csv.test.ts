import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { tempDir } from '../../test/model-files.ts';
import { readTable } from './csv.ts';
import { allowNonFinite } from './validate.ts';

const write = (text: string) => {
  const path = join(tempDir(), 'table.csv');
  writeFileSync(path, text);
  return path;
};

describe('CSV tables', () => {
  it('reads numeric features and integer labels, with quotes and CRLF', () => {
    const table = readTable(write('age,"income, net",label\r\n30,"1.5",1\r\n41,2.25,0\r\n'), {
      labelColumn: 'label',
    });
    assert.deepEqual(table.featureNames, ['age', 'income, net']);
    assert.deepEqual(table.features.dims, [2, 2]);
    assert.deepEqual(Array.from(table.features.data as Float32Array), [30, 1.5, 41, 2.25]);
    assert.deepEqual(Array.from(table.labels!.data as BigInt64Array), [1n, 0n]);
    assert.equal(table.classes, undefined);
  });

  it('maps named labels to indices of their sorted names', () => {
    const table = readTable(write('x,species\n1,setosa\n2,virginica\n3,setosa\n'), {
      labelColumn: 'species',
    });
    assert.deepEqual(table.classes, ['setosa', 'virginica']);
    assert.deepEqual(Array.from(table.labels!.data as BigInt64Array), [0n, 1n, 0n]);
  });

  it('names the row and column of a non-numeric or empty feature', () => {
    assert.throws(
      () => readTable(write('a,b\n1,2\n3,x\n')),
      (e: Error) => e instanceof InputError && /row 3, column 'b' holds 'x'/.test(e.message),
    );
    assert.throws(() => readTable(write('a,b\n1,\n')), /row 2, column 'b' is empty/);
  });

  it('suggests the nearest column for an unknown label column', () => {
    assert.throws(
      () => readTable(write('age,label\n1,0\n'), { labelColumn: 'lable' }),
      /no column 'lable'.*Nearest columns: label/,
    );
  });

  it('reads only decimal numbers: 0x1F, 0b11 and 1_000 are not numbers', () => {
    for (const cell of ['0x1F', '0b11', '0o7', '1_000']) {
      assert.throws(
        () => readTable(write(`a,b\n1,${cell}\n`)),
        new RegExp(`row 2, column 'b' holds '${cell}', not a number`),
      );
    }
    const table = readTable(write('a,b,c\n-1.5e-3,+2,.5\n'));
    assert.deepEqual(Array.from(table.features.data as Float32Array), [
      Math.fround(-1.5e-3),
      2,
      0.5,
    ]);
  });

  it('refuses non-finite cells (1e999, inf, nan), naming rows and columns, unless allowed', () => {
    const path = write('a,b,c\n1,2,3\n4,1e999,6\n7,8,-inf\nnan,1,2\n');
    assert.throws(
      () => readTable(path),
      (e: Error) =>
        e instanceof InputError &&
        /holds 3 non-finite values \(NaN or ±Inf\), first in row 3 \(column b = Infinity\); row 4 \(column c = -Infinity\); row 5 \(column a = NaN\)/.test(
          e.message,
        ),
    );
    allowNonFinite(true);
    try {
      assert.deepEqual(Array.from(readTable(path).features.data as Float32Array).slice(3, 9), [
        4,
        Infinity,
        6,
        7,
        8,
        -Infinity,
      ]);
    } finally {
      allowNonFinite(false);
    }
  });

  it('refuses labels that are negative or not integers, and reads named classes as before', () => {
    assert.throws(
      () => readTable(write('x,y\n1,0\n2,-1\n'), { labelColumn: 'y' }),
      /Label -1 \(example 1 of column 'y' of '.*table\.csv'\) is not a class/,
    );
    assert.throws(
      () => readTable(write('x,y\n1,0\n2,2.5\n'), { labelColumn: 'y' }),
      /must be integer classes \(or class names\); row 3 holds 2\.5/,
    );
    assert.deepEqual(readTable(write('x,y\n1,cat\n2,2.5\n'), { labelColumn: 'y' }).classes, [
      '2.5',
      'cat',
    ]);
  });
});
