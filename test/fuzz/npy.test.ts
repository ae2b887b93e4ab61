/**
 * Fuzzing the `.npy` reader (src/data/npy.ts): random bytes, byte mutations of valid files, and
 * headers rebuilt with hostile fields (dtype, shape, fortran order, version, header length) over
 * data of the wrong length. Every file is read as commands read users' data (NpyFile: header,
 * readRows of its first rows and of the whole) and as teardown reads its own (readNpy); each must
 * give an array whose size matches its header, or an InputError.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NpyFile, encodeNpy, readNpy } from '../../src/data/npy.ts';
import { InputError } from '../../src/errors.ts';
import { elementCount, tensor, type DType } from '../../src/tensor.ts';
import { assertWellBehaved, fuzzParameters, inFreshDir, mutatedBytes } from './support.ts';

const DTYPES: DType[] = ['float32', 'float64', 'int32', 'int64', 'uint8', 'int8', 'bool'];

const validArray = fc
  .record({
    dtype: fc.constantFrom(...DTYPES),
    dims: fc.array(fc.nat({ max: 4 }), { maxLength: 3 }),
  })
  .map(({ dtype, dims }) => {
    const values = Array.from({ length: elementCount(dims) }, (_, i) => (i * 7) % 3);
    return encodeNpy(tensor(dtype, dims, values));
  });

const descr = fc.oneof(
  fc.constantFrom('<f4', '<f8', '<i4', '<i8', '|u1', '|i1', '|b1', '<u1', '>f4', '>i8', '<f2'),
  fc.constantFrom('|O', '<U10', 'V8', '', "'", '<c8', '<M8[s]', '|S3'),
  fc.string({ maxLength: 6 }),
);
const shapeText = fc.oneof(
  fc.array(fc.integer({ min: -2, max: 6 }), { maxLength: 4 }).map((dims) => dims.join(', ')),
  fc.constantFrom('', ',', '3,', '2**40,', '1e3,', '0x10,', '99999999999, 99999999999', '-1,'),
  fc.constantFrom('4294967297,', '9007199254740993,', '3.5,', 'None,', '1, 2, 3, 4, 5, 6, 7, 8'),
  fc.string({ maxLength: 8 }),
);

/** A .npy file from its parts: any version byte, header length field, dictionary text and data. */
const craftedFile = fc
  .record({
    major: fc.constantFrom(1, 2, 3, 0, 4, 255),
    descr,
    fortran: fc.constantFrom('False', 'True', 'maybe'),
    shape: shapeText,
    lengthDelta: fc.oneof(fc.constant(0), fc.integer({ min: -20, max: 20 }), fc.constant(2 ** 31)),
    data: fc.uint8Array({ maxLength: 96 }),
  })
  .map(({ major, descr, fortran, shape, lengthDelta, data }) => {
    const dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (${shape}), }\n`;
    const text = new TextEncoder().encode(dict);
    const fieldBytes = major === 1 ? 2 : 4;
    const bytes = new Uint8Array(8 + fieldBytes + text.length + data.length);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
    const view = new DataView(bytes.buffer);
    const length = Math.max(0, text.length + lengthDelta);
    if (fieldBytes === 2) view.setUint16(8, length % 2 ** 16, true);
    else view.setUint32(8, length % 2 ** 32, true);
    bytes.set(text, 8 + fieldBytes);
    bytes.set(data, 8 + fieldBytes + text.length);
    return bytes;
  });

const anyFile = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 3, arbitrary: validArray.chain(mutatedBytes) },
  { weight: 4, arbitrary: craftedFile },
);

/** Reads `bytes` every way teardown reads an .npy; checks that a read array matches its header. */
async function readEveryWay(bytes: Uint8Array): Promise<void> {
  await inFreshDir(async (dir) => {
    const path = join(dir, 'x.npy');
    writeFileSync(path, bytes);
    const what = `.npy of ${bytes.length} bytes`;
    const opened = await assertWellBehaved(() => new NpyFile(path), `${what}: header`);
    if (opened.kind === 'value') {
      const file = opened.value as NpyFile;
      const rows = Math.min(file.rows, 2);
      const read = await assertWellBehaved(
        () => file.readRows(0, rows),
        `${what}: rows 0..${rows}`,
      );
      if (read.kind === 'value' && file.header.dims.length > 0) {
        const block = read.value as { dims: number[]; data: ArrayLike<unknown> };
        assert.equal(block.data.length, elementCount(block.dims), `${what}: data matches its dims`);
      }
      await assertWellBehaved(() => file.readAll(), `${what}: all rows`);
    }
    await assertWellBehaved(() => readNpy(path), `${what}: readNpy`);
  });
}

describe('fuzz: the .npy reader', { timeout: 60_000 }, () => {
  it('random, mutated and crafted files: an array or an InputError', async () => {
    await fc.assert(fc.asyncProperty(anyFile, readEveryWay), fuzzParameters());
  });
});

describe('regressions found by fuzzing the .npy reader', () => {
  it('a format 3 header length field of 2^31 + 66 in a 78-byte file is refused before allocating it', async () => {
    // Before: a 2 GiB Uint8Array for the header, then readSync's RangeError (exit 1, a stack).
    const dict = "{'descr': '|O', 'fortran_order': False, 'shape': (4294967297,), }\n";
    const bytes = new Uint8Array(12 + dict.length);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 3, 0]);
    new DataView(bytes.buffer).setUint32(8, 2 ** 31 + 66, true);
    bytes.set(new TextEncoder().encode(dict), 12);
    await inFreshDir((dir) => {
      writeFileSync(join(dir, 'x.npy'), bytes);
      assert.throws(
        () => new NpyFile(join(dir, 'x.npy')),
        (error: Error) => {
          assert.ok(error instanceof InputError, String(error));
          assert.match(
            error.message,
            /header length field says 2147483714 bytes, but the file has only 78/,
          );
          return true;
        },
      );
    });
  });
});
