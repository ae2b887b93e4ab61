/**
 * onnxruntime-node 1.30 dies of a segmentation fault when the output of a `Range` that feeds a
 * `Gather` is a graph output at its extended optimization level — the shape of every export that
 * indexes a position table with `torch.arange` (GPT-2) or builds masks from it. The minimal
 * reproduction below is that pattern; the commands that expose every hook run it in a child
 * process, which must exit 0 with the right values, never die of the native fault.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { GraphBuilder, int } from '../src/graph/builder.ts';
import { encodeModel } from '../src/onnx/proto.ts';
import { tensor } from '../src/tensor.ts';
import { tempDir } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const TABLE = Array.from({ length: 16 * 4 }, (_, i) => i / 10);

/** ids [batch, seq] → positions = Range(0, seq, 1) → table[positions] + embedding[ids], as a GPT-2 export does. */
function positionTableModel(): Uint8Array {
  const g = new GraphBuilder('range-gather');
  const ids = g.input('input_ids', 'int64', ['batch', 'seq']);
  const scalar = (value: number) =>
    g.node(
      'Constant',
      [],
      { value: { type: 'tensor', value: tensor('int64', [], [value]) } },
      '/Constant',
    );
  const seq = g.node(
    'Gather',
    [g.node('Shape', [ids], {}, '/Shape'), scalar(1)],
    { axis: int(0) },
    '/Gather',
  );
  const positions = g.node('Range', [scalar(0), seq, scalar(1)], {}, '/Range');
  const wpe = g.node(
    'Gather',
    [g.initializer('wpe.weight', tensor('float32', [16, 4], TABLE)), positions],
    {},
    '/wpe/Gather',
  );
  const wte = g.node(
    'Gather',
    [
      g.initializer(
        'wte.weight',
        tensor(
          'float32',
          [16, 4],
          TABLE.map((x) => -x),
        ),
      ),
      ids,
    ],
    {},
    '/wte/Gather',
  );
  g.output(g.node('Add', [wte, wpe], {}, '/Add', 'output'), 'float32', ['batch', 'seq', 4]);
  return encodeModel(g.build());
}

describe('a Range output feeding a Gather (torch.arange positions)', () => {
  it('teardown hooks and run --cache * exit 0, with the positions and the position table as values without a batch axis', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'model.onnx'), positionTableModel());
    writeFileSync(
      join(dir, 'ids.npy'),
      encodeNpy(tensor('int64', [5, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])),
    );
    const hooks = spawnSync(
      process.execPath,
      [BIN, 'hooks', 'model.onnx', '--json', 'hooks.json'],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.equal(
      hooks.status,
      0,
      `teardown hooks: status ${hooks.status} signal ${hooks.signal}\n${hooks.stderr}`,
    );
    const listing = JSON.parse(readFileSync(join(dir, 'hooks.json'), 'utf8'));
    const shapeOf = (name: string) =>
      listing.hooks.find((hook: { name: string }) => hook.name === name).shape;
    assert.deepEqual(shapeOf('/Range_output_0'), ['seq']);
    assert.deepEqual(shapeOf('wpe'), ['seq', 4]);
    assert.deepEqual(shapeOf('output'), ['batch', 'seq', 4]);

    const run = spawnSync(
      process.execPath,
      [
        BIN,
        'run',
        'model.onnx',
        '--input',
        'input_ids=ids.npy',
        '--cache',
        '*',
        '--batch-size',
        '2',
        '--out',
        'out',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.equal(
      run.status,
      0,
      `teardown run: status ${run.status} signal ${run.signal}\n${run.stderr}`,
    );
    const index = JSON.parse(readFileSync(join(dir, 'out/index.json'), 'utf8'));
    assert.deepEqual(
      Array.from(
        readNpy(join(dir, 'out', index.hooks['/Range_output_0'].file)).data as BigInt64Array,
        Number,
      ),
      [0, 1, 2],
    );
    assert.equal(index.hooks.wpe.batchAxis, null);
    assert.deepEqual(
      Array.from(readNpy(join(dir, 'out', index.hooks.wpe.file)).data as Float32Array),
      TABLE.slice(0, 12).map(Math.fround),
    );
    assert.deepEqual(index.hooks.wte.shape, [5, 3, 4]);
  });
});
