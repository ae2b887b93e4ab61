/**
 * A model with an op teardown has no gradient rule for, as a user meets it through the CLI: grad
 * exits 2 with one message that names the op and the node and says what still works and how to
 * get gradients anyway — and the advice holds: gradients with respect to a value after the node
 * are computed, and run works on the model.
 *
 * The model: scores = flatten(LpPool(s·x))·W (LpPool, a 2-norm over 2×2 windows, has no rule).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { RULES } from '../src/autodiff/rules/index.ts';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { GraphBuilder, ints } from '../src/graph/builder.ts';
import { tensor } from '../src/tensor.ts';
import { tempDir, writeModel } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));

describe('an op without a gradient rule, through the CLI', () => {
  const dir = tempDir();
  const g = new GraphBuilder('lp-pool', 17);
  const scaled = g.node(
    'Mul',
    [
      g.input('input', 'float32', [2, 1, 3, 3]),
      g.initializer('scale.weight', tensor('float32', [1], [1.5])),
    ],
    {},
    '/scale/Mul',
  );
  const sampled = g.node(
    'LpPool',
    [scaled],
    { kernel_shape: ints([2, 2]) },
    '/pool/LpPool',
    'sampled',
  ); // [2, 1, 2, 2]
  const flat = g.node('Flatten', [sampled], {}, '/flatten/Flatten');
  g.output(
    g.node(
      'MatMul',
      [
        flat,
        g.initializer(
          'head.weight',
          tensor('float32', [4, 2], [1, -1, 0.5, 2, -1.5, 0.3, 0.8, -0.2]),
        ),
      ],
      {},
      '/head/MatMul',
      'scores',
    ),
    'float32',
  );
  const model = writeModel(dir, 'lp-pool.onnx', g.build());
  writeFileSync(
    join(dir, 'x.npy'),
    encodeNpy(
      tensor(
        'float32',
        [2, 1, 3, 3],
        Array.from({ length: 18 }, (_, k) => Math.sin(k)),
      ),
    ),
  );
  writeFileSync(join(dir, 't.npy'), encodeNpy(tensor('int64', [2], [0, 1])));
  const teardown = (args: string[]) => {
    const cwd = tempDir();
    return { ...spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' }), cwd };
  };
  const grad = (wrt: string) =>
    teardown([
      'grad',
      model,
      '--input',
      `input=${join(dir, 'x.npy')}`,
      '--target',
      join(dir, 't.npy'),
      '--wrt',
      wrt,
      '--out',
      'g',
    ]);

  it('grad --wrt params exits 2 naming the op and node, what still works and how to get gradients, without a stack', () => {
    assert.equal(
      RULES.LpPool,
      undefined,
      'LpPool has no rule (pick another op for this test once it has one)',
    );
    const { status, stderr } = grad('params');
    assert.equal(status, 2, stderr);
    assert.match(stderr, /No gradient rule for op 'LpPool' \(node '\/pool\/LpPool', opset 17\)/);
    assert.match(
      stderr,
      /stop here: grad, train, audit --try-fixes, and inspect's gradient analyses/,
    );
    assert.match(
      stderr,
      /run \(with its interventions\), hooks, inspect's census, ablations, patch sweeps and circuits, and audit work without gradients/,
    );
    assert.match(
      stderr,
      /values after '\/pool\/LpPool' \(grad --wrt HOOK.*re-export the model.*torch\.onnx\.export/,
    );
    assert.doesNotMatch(stderr, /rules\.ts|\n\s+at /, 'no stack, no advice to edit teardown');
  });

  it('the advice holds: a gradient with respect to a value after the node is computed, and run works', () => {
    const after = grad('sampled');
    assert.equal(after.status, 0, after.stderr);
    const index = JSON.parse(readFileSync(join(after.cwd, 'g/index.json'), 'utf8'));
    assert.deepEqual(
      readNpy(join(after.cwd, 'g', index.gradients.sampled.file)).dims,
      [2, 1, 2, 2],
    );
    const run = teardown(['run', model, '--input', `input=${join(dir, 'x.npy')}`, '--out', 'r']);
    assert.equal(run.status, 0, run.stderr);
  });
});
