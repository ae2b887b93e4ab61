/**
 * The cross-entropy gradient over many classes (≥ 1024: rules/losses.ts scatters p_{i,yᵢ} − 1 at
 * the labels instead of subtracting a one-hot) against its closed form
 * d(mean CE)/dz = (softmax(z) − onehot(t)) / (rows counted), zero on ignored rows.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeGradients } from '../gradients.ts';
import { GraphBuilder } from '../../graph/builder.ts';
import { Model } from '../../runtime/model.ts';
import { seededRandom } from '../../random.ts';
import { tensor, type DType } from '../../tensor.ts';

const CLASSES = 1100;
const ROWS = 5;

async function check(
  dtype: DType,
  targets: number[],
  ignoreIndex: number | undefined,
  tolerance: number,
): Promise<void> {
  const g = new GraphBuilder('scores', 17);
  g.output(
    g.node(
      'Identity',
      [g.input('input', dtype, ['batch', CLASSES])],
      {},
      '/scores/Identity',
      'scores',
    ),
    dtype,
  );
  const model = Model.fromProto(g.build(), 'scores', { threads: 1 });
  const random = seededRandom(5);
  const values = Array.from({ length: ROWS * CLASSES }, () => 8 * random() - 4);
  const scores = tensor(dtype, [ROWS, CLASSES], values);
  const { loss, gradients } = await computeGradients(
    model,
    { input: scores },
    tensor('int64', [ROWS], targets),
    { loss: { kind: 'cross-entropy', ignoreIndex }, wrt: ['input'] },
  );
  await model.release();
  const kept = targets
    .map((t, row) => [t, row])
    .filter(([t]) => t !== ignoreIndex)
    .map(([, row]) => row);
  const softmax = (row: number) => {
    const z = values.slice(row * CLASSES, (row + 1) * CLASSES);
    const max = Math.max(...z);
    const sum = z.reduce((s, v) => s + Math.exp(v - max), 0);
    return z.map((v) => Math.exp(v - max) / sum);
  };
  const expectedLoss =
    kept.reduce((s, row) => s - Math.log(softmax(row)[targets[row]]), 0) / kept.length;
  assert.ok(
    Math.abs(loss - expectedLoss) < tolerance * Math.abs(expectedLoss),
    `loss ${loss} vs ${expectedLoss}`,
  );
  const grad = gradients.get('input')!;
  for (let row = 0; row < ROWS; row++) {
    const p = softmax(row);
    for (let c = 0; c < CLASSES; c++) {
      const expected = kept.includes(row) ? (p[c] - (c === targets[row] ? 1 : 0)) / kept.length : 0;
      const actual = Number(grad.data[row * CLASSES + c]);
      assert.ok(
        Math.abs(actual - expected) < tolerance,
        `row ${row} class ${c}: ${actual} vs ${expected}`,
      );
    }
  }
}

describe('cross-entropy gradient over many classes against the closed form', () => {
  it('float64, ignored rows (ignore_index −100) zero and out of the count', () =>
    check('float64', [0, 1099, -100, 517, -100], -100, 1e-12));
  it('float32, the first and last class as labels', () =>
    check('float32', [1099, 0, 3, 1098, 0], undefined, 1e-6));
});
