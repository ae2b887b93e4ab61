import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { DTYPES, tensor } from '../tensor.ts';
import { tempDir } from '../../test/model-files.ts';
import { fixtureDir } from '../../test/helpers.ts';
import { NpyFile, NpyWriter, encodeNpy, readNpy } from './npy.ts';

describe('npy', () => {
  it('reads arrays numpy wrote (the fixtures): float32 and int64 with their shapes', () => {
    const input = readNpy(`${fixtureDir('mlp')}/input.npy`);
    assert.equal(input.dtype, 'float32');
    assert.deepEqual(input.dims, [16, 20]);
    const tokens = readNpy(`${fixtureDir('gpt')}/input.npy`);
    assert.equal(tokens.dtype, 'int64');
    assert.deepEqual(tokens.dims, [4, 12]);
    assert.ok([...(tokens.data as BigInt64Array)].every((token) => token >= 0n && token < 48n));
  });

  for (const dtype of DTYPES) {
    it(`round-trips ${dtype}`, () => {
      const dir = tempDir();
      const values = tensor(dtype, [3, 2], [0, 1, 2, 3, 4, 1]);
      writeFileSync(join(dir, 'a.npy'), encodeNpy(values));
      const back = readNpy(join(dir, 'a.npy'));
      assert.deepEqual(back, values);
    });
  }

  it('writes the header numpy expects (descr, C order, shape, 64-byte aligned)', () => {
    const bytes = encodeNpy(tensor('float32', [2, 3]));
    const header = Buffer.from(bytes).toString(
      'latin1',
      10,
      10 + new DataView(bytes.buffer).getUint16(8, true),
    );
    assert.equal((10 + header.length) % 64, 0);
    assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \}\s*\n$/);
    assert.match(
      Buffer.from(encodeNpy(tensor('int64', [5]))).toString('latin1'),
      /'shape': \(5,\)/,
    );
  });

  it('streams rows in and reads row ranges back', () => {
    const dir = tempDir();
    const writer = new NpyWriter(join(dir, 'rows.npy'));
    writer.append(tensor('float32', [2, 3], [1, 2, 3, 4, 5, 6]));
    writer.append(tensor('float32', [1, 3], [7, 8, 9]));
    writer.close();
    const file = new NpyFile(join(dir, 'rows.npy'));
    assert.deepEqual(file.header.dims, [3, 3]);
    assert.deepEqual(Array.from(file.readRows(1, 3).data as Float32Array), [4, 5, 6, 7, 8, 9]);
  });

  const bad: [string, (bytes: Buffer) => Buffer, RegExp][] = [
    [
      'not npy at all',
      () => Buffer.from('hello world, not an array'),
      /does not start with the \\x93NUMPY magic/,
    ],
    [
      'a header without shape',
      (b) =>
        Buffer.concat([
          b.subarray(0, 10),
          Buffer.from("{'descr': '<f4', 'fortran_order': False, }".padEnd(b.readUInt16LE(8))),
        ]),
      /lacks descr, fortran_order or shape/,
    ],
    [
      'big-endian data',
      (b) => Buffer.from(b.toString('latin1').replace("'<f4'", "'>f4'"), 'latin1'),
      /dtype '>f4'.*little-endian/,
    ],
    [
      'float16',
      (b) => Buffer.from(b.toString('latin1').replace("'<f4'", "'<f2'"), 'latin1'),
      /dtype '<f2'/,
    ],
    [
      'Fortran order',
      (b) =>
        Buffer.from(
          b.toString('latin1').replace("'fortran_order': False", "'fortran_order': True "),
          'latin1',
        ),
      /Fortran order/,
    ],
    ['truncated data', (b) => b.subarray(0, b.length - 5), /is truncated/],
  ];
  for (const [what, corrupt, message] of bad) {
    it(`refuses ${what} with a clear message`, () => {
      const dir = tempDir();
      const good = Buffer.from(readFileSync(`${fixtureDir('mlp')}/input.npy`));
      writeFileSync(join(dir, 'bad.npy'), corrupt(good));
      assert.throws(
        () => readNpy(join(dir, 'bad.npy')),
        (error: Error) => error instanceof InputError && message.test(error.message),
      );
    });
  }
});
