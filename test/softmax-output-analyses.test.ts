/**
 * inspect's loss metric and audit's probabilities on a model whose output is already a Softmax:
 * they must equal those of the same model with its logits as output (oracle: the two models give
 * the same class probabilities, so every loss and calibration figure must agree). Before, both
 * took the probabilities for logits and applied a second softmax.
 *
 * The models: z = x·W + b; one outputs 'probs' = Softmax(z), the other 'logits' = z.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { encodeNpy } from '../src/data/npy.ts';
import { GraphBuilder } from '../src/graph/builder.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { tempDir, writeModel } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const [EXAMPLES, FEATURES, CLASSES] = [240, 3, 4];
const random = seededRandom(21);
const draw = (dims: number[], scale = 1) =>
  tensor(
    'float32',
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => scale * (2 * random() - 1)),
  );
const weight = draw([FEATURES, CLASSES], 2);
const bias = draw([CLASSES], 0.5);
const x = draw([EXAMPLES, FEATURES]);
const labels = tensor(
  'int64',
  [EXAMPLES],
  Array.from({ length: EXAMPLES }, () => Math.floor(random() * CLASSES)),
);

function proto(softmax: boolean) {
  const g = new GraphBuilder(softmax ? 'softmax-head' : 'logits-head', 17);
  const matmul = g.node(
    'MatMul',
    [g.input('input', 'float32', ['batch', FEATURES]), g.initializer('fc.weight', weight)],
    {},
    '/fc/MatMul',
  );
  const logits = g.node('Add', [matmul, g.initializer('fc.bias', bias)], {}, '/fc/Add', 'logits');
  if (softmax)
    g.output(g.node('Softmax', [logits], {}, '/Softmax', 'probs'), 'float32', ['batch', CLASSES]);
  else g.output(logits, 'float32', ['batch', CLASSES]);
  return g.build();
}

describe('inspect and audit on a Softmax output', () => {
  const dir = tempDir();
  const models = {
    softmax: writeModel(dir, 'softmax.onnx', proto(true)),
    logits: writeModel(dir, 'logits.onnx', proto(false)),
  };
  writeFileSync(join(dir, 'x.npy'), encodeNpy(x));
  writeFileSync(join(dir, 'y.npy'), encodeNpy(labels));
  const resultOf = (command: string, model: string, extra: string[] = []) => {
    const json = join(tempDir(), `${command}.json`);
    const result = spawnSync(
      process.execPath,
      [
        BIN,
        command,
        model,
        '--data',
        join(dir, 'x.npy'),
        '--labels',
        join(dir, 'y.npy'),
        '--json',
        json,
        ...extra,
      ],
      { cwd: tempDir(), encoding: 'utf8' },
    );
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(readFileSync(json, 'utf8'));
  };

  it("inspect's loss-metric importance equals the logits model's", () => {
    const [softmax, logits] = [
      resultOf('inspect', models.softmax, ['--hooks', 'fc']),
      resultOf('inspect', models.logits, ['--hooks', 'fc']),
    ];
    const importance = (result: { units: { hook: string; unit: number; importance: number }[] }) =>
      new Map(result.units.map((unit) => [`${unit.hook}:${unit.unit}`, unit.importance]));
    const [ours, reference] = [importance(softmax), importance(logits)];
    assert.equal(ours.size, CLASSES);
    for (const [unit, value] of reference)
      assert.ok(
        Math.abs(ours.get(unit)! - value) <= 1e-5 * Math.max(1, Math.abs(value)),
        `${unit}: ${ours.get(unit)} vs ${value}`,
      );
  });

  it("audit's calibration and accuracy equal the logits model's", () => {
    const [softmax, logits] = [resultOf('audit', models.softmax), resultOf('audit', models.logits)];
    assert.deepEqual(softmax.accuracy, logits.accuracy);
    assert.ok(
      Math.abs(softmax.calibration.ece - logits.calibration.ece) <= 1e-6,
      `ECE ${softmax.calibration.ece} vs ${logits.calibration.ece}`,
    );
  });
});
