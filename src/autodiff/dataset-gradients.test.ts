/**
 * The dataset loss streamed in batches is the mean over every scored term, whatever the batches:
 * with --loss-positions last, a batch weighs by the sequences it scores (each one's last target,
 * unless it is the ignore index), not by every target it holds. Checked against the same data in
 * one batch, and against the closed form mean of −log softmax over the scored last positions.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { datasetGradients } from './dataset-gradients.ts';
import { encodeNpy, NpyFile } from '../data/npy.ts';
import { GraphBuilder } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { tensor } from '../tensor.ts';
import { tempDir } from '../../test/model-files.ts';

describe('dataset gradients over batches, last positions scored', () => {
  it('weigh each batch by the sequences it scores: the loss equals one batch and the closed form', async () => {
    const g = new GraphBuilder('scores', 17);
    g.output(
      g.node(
        'Identity',
        [g.input('input', 'float64', ['batch', 3, 4])],
        {},
        '/scores/Identity',
        'scores',
      ),
      'float64',
    );
    const model = Model.fromProto(g.build(), 'scores', { threads: 1 });
    const dir = tempDir();
    const scores = Array.from({ length: 3 * 3 * 4 }, (_, k) => Math.sin(1.7 * k));
    writeFileSync(join(dir, 'x.npy'), encodeNpy(tensor('float64', [3, 3, 4], scores)));
    // Ignored targets sit before the last position, where they must not count; row 2's last one is ignored.
    const targets = [1, -100, 2, -100, -100, 3, 0, 1, -100];
    writeFileSync(join(dir, 't.npy'), encodeNpy(tensor('int64', [3, 3], targets)));
    const run = (batchSize: number, out: string) =>
      datasetGradients(
        model,
        { input: new NpyFile(join(dir, 'x.npy')) },
        new NpyFile(join(dir, 't.npy')),
        { loss: { kind: 'cross-entropy', positions: 'last', ignoreIndex: -100 }, wrt: ['input'] },
        { batchSize, out: join(dir, out) },
      );
    const whole = await run(3, 'whole');
    const batched = await run(1, 'batched');
    // Rows 0 and 1 are scored at their last position (targets 2 and 3).
    const logSoftmaxAt = (row: number, label: number) => {
      const logits = scores.slice((row * 3 + 2) * 4, (row * 3 + 3) * 4);
      const top = Math.max(...logits);
      return (
        logits[label] -
        top -
        Math.log(logits.reduce((sum, value) => sum + Math.exp(value - top), 0))
      );
    };
    const expected = -(logSoftmaxAt(0, 2) + logSoftmaxAt(1, 3)) / 2;
    assert.ok(Math.abs(whole.loss - expected) < 1e-12, `one batch: ${whole.loss} vs ${expected}`);
    assert.ok(
      Math.abs(batched.loss - expected) < 1e-12,
      `batches of 1: ${batched.loss} vs ${expected}`,
    );
    assert.deepEqual(batched.meanOver, { count: 2, unit: 'positions', ignored: 1 });
    await model.release();
  });
});
