/** The library tensor's reading methods against values computed by hand, and its zero-copy conversions. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readNpy } from '../data/npy.ts';
import { Tensor } from './tensor.ts';

// t[i][j][k] = 100i + 10j + k, dims [2, 3, 4]
const t = new Tensor(
  'float32',
  [2, 3, 4],
  Float32Array.from(
    { length: 24 },
    (_, n) => 100 * Math.floor(n / 12) + 10 * (Math.floor(n / 4) % 3) + (n % 4),
  ),
);

describe('Tensor', () => {
  it('select drops the axis', () => {
    const s = t.select(1, -1);
    assert.deepEqual(s.dims, [2, 4]);
    assert.deepEqual(s.toArray(), [
      [20, 21, 22, 23],
      [120, 121, 122, 123],
    ]);
    assert.equal(t.select(0, 1).at(2, 3), 123);
  });

  it('slice keeps the axis, with Python bounds', () => {
    assert.deepEqual(t.slice(2, 1, 3).toArray(), [
      [
        [1, 2],
        [11, 12],
        [21, 22],
      ],
      [
        [101, 102],
        [111, 112],
        [121, 122],
      ],
    ]);
    assert.deepEqual(t.slice(1, -1).dims, [2, 1, 4]);
    assert.deepEqual(t.slice(0, 5, 9).dims, [0, 3, 4]);
  });

  it('mean over an axis and over everything', () => {
    assert.deepEqual(t.mean(0).select(0, 0).toArray(), [50, 51, 52, 53]);
    assert.deepEqual(t.mean(-1).toArray(), [
      [1.5, 11.5, 21.5],
      [101.5, 111.5, 121.5],
    ]);
    assert.equal(t.mean().at(), (0 + 123) / 2);
  });

  it('map applies a function to every value, into a new tensor', () => {
    const doubled = t.map((value) => 2 * value);
    assert.equal(doubled.at(1, 2, 3), 246);
    assert.equal(t.at(1, 2, 3), 123);
  });

  it('refuses axes and indices out of range', () => {
    assert.throws(() => t.select(3, 0), /Axis 3 does not exist/);
    assert.throws(() => t.select(0, 2), /Index 2 is out of range/);
  });

  it("wraps the same buffer to and from onnxruntime's Tensor and Float32Array", () => {
    const ort = t.toOrt();
    assert.equal(ort.data, t.data);
    assert.deepEqual([...ort.dims], t.dims);
    const back = Tensor.from(ort);
    assert.equal(back.data, t.data);
    assert.equal(t.toFloat32Array(), t.data);
    const raw = new Float32Array(6);
    assert.equal(Tensor.from(raw, [2, 3]).data, raw);
  });

  it('toNpy writes a file readNpy reads back', () => {
    const folder = mkdtempSync(join(tmpdir(), 'teardown-npy-'));
    try {
      writeFileSync(join(folder, 't.npy'), t.toNpy());
      const read = readNpy(join(folder, 't.npy'));
      assert.deepEqual(read.dims, t.dims);
      assert.deepEqual(read.data, t.data);
    } finally {
      rmSync(folder, { recursive: true });
    }
  });
});
