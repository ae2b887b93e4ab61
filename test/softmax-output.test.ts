/**
 * Models whose output is already a Softmax or LogSoftmax: cross-entropy is taken on the logits
 * before it, checked against the closed form of F.cross_entropy on those logits; `--output` picks
 * another output of a multi-output model; `grad` says which value the loss was taken on and over
 * how many positions its mean runs.
 *
 * The model: z = x·W + b (logits [batch, 4]); outputs 'probs' = Softmax(z) (or LogSoftmax), and
 * 'doubled' = 2z. For mean cross-entropy over N rows on scores s = c·z, dL/dW = c·xᵀ(softmax(s) − onehot(t)) / N.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { computeGradients } from '../src/autodiff/gradients.ts';
import { normalizedOutput } from '../src/autodiff/loss.ts';
import { encodeNpy } from '../src/data/npy.ts';
import { GraphBuilder, int } from '../src/graph/builder.ts';
import { seededRandom } from '../src/random.ts';
import { Model } from '../src/runtime/model.ts';
import { tensor, type Tensor } from '../src/tensor.ts';
import { tempDir, writeModel } from './model-files.ts';

const [BATCH, FEATURES, CLASSES] = [5, 3, 4];
const random = seededRandom(12);
const draw = (dims: number[]) =>
  tensor(
    'float64',
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => 2 * random() - 1),
  );
const weight = draw([FEATURES, CLASSES]);
const bias = draw([CLASSES]);
const x = draw([BATCH, FEATURES]);
const targets = [2, 0, 3, 3, 1];

function proto(final: 'Softmax' | 'LogSoftmax', axis?: number) {
  const g = new GraphBuilder('softmax-head', 17);
  const logits = g.node(
    'Add',
    [
      g.node(
        'MatMul',
        [g.input('input', 'float64', ['batch', FEATURES]), g.initializer('fc.weight', weight)],
        {},
        '/fc/MatMul',
      ),
      g.initializer('fc.bias', bias),
    ],
    {},
    '/fc/Add',
    'logits',
  );
  g.output(
    g.node(
      final,
      [logits],
      { axis: axis === undefined ? undefined : int(axis) },
      `/${final}`,
      'probs',
    ),
    'float64',
    ['batch', CLASSES],
  );
  g.output(
    g.node(
      'Mul',
      [logits, g.initializer('two', tensor('float64', [], [2]))],
      {},
      '/double/Mul',
      'doubled',
    ),
    'float64',
    ['batch', CLASSES],
  );
  return g.build();
}

/** Mean cross-entropy of scores c·z and its gradient with respect to W, in closed form. */
function closedForm(scale: number): { loss: number; weightGradient: number[] } {
  let loss = 0;
  const gradient = new Array(FEATURES * CLASSES).fill(0);
  for (let row = 0; row < BATCH; row++) {
    const scores = Array.from(
      { length: CLASSES },
      (_, c) =>
        scale *
        (Number(bias.data[c]) +
          Array.from(
            { length: FEATURES },
            (_, f) => Number(x.data[row * FEATURES + f]) * Number(weight.data[f * CLASSES + c]),
          ).reduce((a, b) => a + b)),
    );
    const top = Math.max(...scores);
    const sum = scores.reduce((total, s) => total + Math.exp(s - top), 0);
    const p = scores.map((s) => Math.exp(s - top) / sum);
    loss += (top + Math.log(sum) - scores[targets[row]]) / BATCH;
    for (let f = 0; f < FEATURES; f++)
      for (let c = 0; c < CLASSES; c++)
        gradient[f * CLASSES + c] +=
          (scale * Number(x.data[row * FEATURES + f]) * (p[c] - (c === targets[row] ? 1 : 0))) /
          BATCH;
  }
  return { loss, weightGradient: gradient };
}

async function gradientsOf(model: Model, output?: string) {
  return computeGradients(model, { input: x }, tensor('int64', [BATCH], targets), {
    loss: { kind: 'cross-entropy', output },
    wrt: ['params'],
  });
}

function assertMatches(
  result: { loss: number; gradients: Map<string, Tensor> },
  expected: { loss: number; weightGradient: number[] },
) {
  assert.ok(
    Math.abs(result.loss - expected.loss) < 1e-12,
    `loss ${result.loss} vs ${expected.loss}`,
  );
  const gradient = Array.from(result.gradients.get('fc.weight')!.data as Float64Array);
  gradient.forEach((value, k) =>
    assert.ok(
      Math.abs(value - expected.weightGradient[k]) < 1e-12,
      `dW[${k}] ${value} vs ${expected.weightGradient[k]}`,
    ),
  );
}

describe('cross-entropy on a Softmax or LogSoftmax output is taken on the logits before it', () => {
  // (On a LogSoftmax output the old reading gave the same numbers: log_softmax is idempotent. Taking
  // the logits spares the second normalization and its rounding.)
  for (const final of ['Softmax', 'LogSoftmax'] as const) {
    it(`${final} output: F.cross_entropy of the logits, in closed form`, async () => {
      const model = Model.fromProto(proto(final), final, { threads: 1 });
      assertMatches(await gradientsOf(model), closedForm(1));
      await model.release();
    });
  }

  it('a Softmax over another axis than the classes is not a classifier head: the output is scored as it is', () => {
    const model = Model.fromProto(proto('Softmax', 0), 'axis0', { threads: 1 });
    assert.equal(normalizedOutput(model.graph, 'probs', 2), undefined);
    assert.equal(
      normalizedOutput(
        Model.fromProto(proto('Softmax', 1), 'axis1', { threads: 1 }).graph,
        'probs',
        2,
      )?.logits,
      'logits',
    );
  });

  it('the output option scores another output of a multi-output model', async () => {
    const model = Model.fromProto(proto('Softmax'), 'two-outputs', { threads: 1 });
    assertMatches(await gradientsOf(model, 'doubled'), closedForm(2));
    await model.release();
  });
});

describe('teardown grad on a Softmax output', () => {
  const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
  const dir = tempDir();
  const model = writeModel(dir, 'softmax-head.onnx', proto('Softmax'));
  writeFileSync(join(dir, 'x.npy'), encodeNpy(x));
  // Row 3's target is PyTorch's ignore_index: the mean runs over the other 4.
  writeFileSync(
    join(dir, 't.npy'),
    encodeNpy(
      tensor(
        'int64',
        [BATCH],
        targets.map((t, row) => (row === 3 ? -100 : t)),
      ),
    ),
  );
  const grad = (extra: string[]) => {
    return spawnSync(
      process.execPath,
      [
        BIN,
        'grad',
        model,
        '--input',
        `input=${join(dir, 'x.npy')}`,
        '--target',
        join(dir, 't.npy'),
        '--out',
        'g',
        ...extra,
      ],
      { cwd: tempDir(), encoding: 'utf8' },
    );
  };

  it('says the loss is taken on the logits before the Softmax, and over how many positions, in its text and JSON', () => {
    const json = join(dir, 'grad.json');
    const { status, stdout, stderr } = grad(['--json', json]);
    assert.equal(status, 0, stderr);
    assert.match(
      stdout,
      /Loss \(cross-entropy on 'probs', mean over 4 positions of 5 examples; 1 equal to the ignore index -100 left out\)/,
    );
    assert.match(
      stdout,
      /'probs' is the output of a Softmax \(node '\/Softmax'\): the cross-entropy is taken on its input 'logits'/,
    );
    const result = JSON.parse(readFileSync(json, 'utf8'));
    assert.deepEqual(result.loss.meanOver, { count: 4, unit: 'positions', ignored: 1 });
    assert.deepEqual(result.loss.logitsBefore, {
      output: 'probs',
      op: 'Softmax',
      node: '/Softmax',
      logits: 'logits',
    });
  });

  it('--output picks another output; an unknown one exits 2 naming the outputs', () => {
    const doubled = grad(['--output', 'doubled']);
    assert.equal(doubled.status, 0, doubled.stderr);
    assert.match(doubled.stdout, /Loss \(cross-entropy on 'doubled', mean over 4 positions/);
    assert.doesNotMatch(doubled.stdout, /Softmax/);
    const unknown = grad(['--output', 'nosuch']);
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(
      unknown.stderr,
      /--output 'nosuch' is not an output of .*; its outputs are 'probs', 'doubled'\./,
    );
    assert.doesNotMatch(unknown.stderr, /\n\s+at /, 'no stack');
  });
});
