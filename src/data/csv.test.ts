import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { tempDir } from '../../test/model-files.ts';
import { readTable } from './csv.ts';

const write = (text: string) => {
  const path = join(tempDir(), 'table.csv');
  writeFileSync(path, text);
  return path;
};

describe('CSV tables', () => {
  it('reads numeric features and integer labels, with quotes and CRLF', () => {
    const table = readTable(write('age,"income, net",label\r\n30,"1.5",1\r\n41,2.25,0\r\n'), { labelColumn: 'label' });
    assert.deepEqual(table.featureNames, ['age', 'income, net']);
    assert.deepEqual(table.features.dims, [2, 2]);
    assert.deepEqual(Array.from(table.features.data as Float32Array), [30, 1.5, 41, 2.25]);
    assert.deepEqual(Array.from(table.labels!.data as BigInt64Array), [1n, 0n]);
    assert.equal(table.classes, undefined);
  });

  it('maps named labels to indices of their sorted names', () => {
    const table = readTable(write('x,species\n1,setosa\n2,virginica\n3,setosa\n'), { labelColumn: 'species' });
    assert.deepEqual(table.classes, ['setosa', 'virginica']);
    assert.deepEqual(Array.from(table.labels!.data as BigInt64Array), [0n, 1n, 0n]);
  });

  it('names the row and column of a non-numeric or empty feature', () => {
    assert.throws(() => readTable(write('a,b\n1,2\n3,x\n')), (e: Error) => e instanceof InputError && /row 3, column 'b' holds 'x'/.test(e.message));
    assert.throws(() => readTable(write('a,b\n1,\n')), /row 2, column 'b' is empty/);
  });

  it('suggests the nearest column for an unknown label column', () => {
    assert.throws(() => readTable(write('age,label\n1,0\n'), { labelColumn: 'lable' }), /no column 'lable'.*Nearest columns: label/);
  });
});
