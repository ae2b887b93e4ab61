/**
 * Patch sweeps that recompute only the positions from the patch on (inspect/causal-suffix.ts):
 * against PyTorch's forward-hook sweep on the gpt fixture (test/fixtures/gpt/patch-sweep.json, made
 * by test/fixtures/make-patch-sweep-oracle.ts), against the sweep that recomputes every position on
 * the corpus GPT-2 at opsets 14 and 17, and the fallback on the corpus encoder, whose attention has
 * no causal mask.
 */
import { floatActivationsEntering } from '../src/graph/scopes.ts';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { readNpy } from '../src/data/npy.ts';
import { patchSweep, type PatchSweepResult } from '../src/inspect/patch-sweep.ts';
import { derive } from '../src/graph/edit.ts';
import { Model } from '../src/runtime/model.ts';
import { tensor, type Feeds, type Tensor } from '../src/tensor.ts';
import { loadFixture } from './helpers.ts';

/** Mean logit of `token` at the last position, over the batch. */
const lastLogit = (token: number) => (logits: Tensor) => {
  const [batch, seq, vocab] = logits.dims;
  let sum = 0;
  for (let b = 0; b < batch; b++) sum += Number(logits.data[(b * seq + seq - 1) * vocab + token]);
  return sum / batch;
};

function largestDifference(a: PatchSweepResult, b: { effects: number[][] }): number {
  return Math.max(
    ...a.effects.flatMap((row, h) => row.map((effect, p) => Math.abs(effect - b.effects[h][p]))),
  );
}

/** The value each block reads from outside its scope: what PyTorch's forward pre-hook on the block swaps. */
function blockInput(model: Model, scope: string): string {
  const read = floatActivationsEntering(model.graph, scope);
  assert.equal(read.length, 1, `${scope} reads ${read.join(', ')}`);
  return read[0];
}

describe('patch sweep from the patched position on (gpt fixture, PyTorch oracle)', () => {
  const fixture = loadFixture('gpt');
  after(() => fixture.model.release());
  const oracle = JSON.parse(
    readFileSync(
      fileURLToPath(new URL('./fixtures/gpt/patch-sweep.json', import.meta.url)),
      'utf8',
    ),
  );
  const clean = { input: tensor('int64', [4, 12], oracle.clean) };
  const corrupted = { input: tensor('int64', [4, 12], oracle.corrupted) };
  // resid_pre of block i: what its first LayerNorm (one LayerNormalization node at opset 17) reads.
  const residPre = [0, 1].map(
    (block) =>
      fixture.model.graph.nodes[
        fixture.model.graph.producer.get(fixture.model.hooks.resolve(`blocks.${block}.ln1`).value)!
      ].input[0],
  );

  // maxRows 4 (the batch): one position a run, so each run starts at its own position and reads
  // the clean keys and values before it; by default small sweeps run every position from 0 at once.
  for (const [lastPosition, maxRows] of [
    [false, 4],
    [true, 4],
    [true, undefined],
  ] as const) {
    it(`equals PyTorch's effects at every block and position${lastPosition ? ', computing the last position only' : ''}${maxRows ? ', one position a run' : ''}`, async () => {
      const sweep = await patchSweep(
        fixture.model,
        clean,
        corrupted,
        residPre,
        'all',
        lastLogit(oracle.token),
        { lastPosition, maxRows },
      );
      assert.deepEqual(sweep.paths, ['suffix', 'suffix']);
      if (maxRows) assert.equal(sweep.runs, 2 * 12);
      assert.ok(
        largestDifference(sweep, oracle) < 1e-5,
        `largest difference ${largestDifference(sweep, oracle)}`,
      );
      // Not a sweep where nothing moves: the effects differ by position.
      assert.ok(Math.max(...oracle.effects[0]) - Math.min(...oracle.effects[0]) > 0.05);
    });
  }
});

const corpus = (name: string) => fileURLToPath(new URL(`./corpus/${name}/`, import.meta.url));
const corpusFeeds = (model: Model, dir: string, folder: string): Feeds =>
  Object.fromEntries(
    model.inputs.map((input) => [input.name, readNpy(join(dir, folder, `${input.name}.npy`))]),
  );

describe('patch sweep from the patched position on (corpus GPT-2, against every position recomputed)', () => {
  const dir = corpus('gpt2');
  for (const opset of [14, 17]) {
    for (const lastPosition of [false, true]) {
      it(`opset ${opset}${lastPosition ? ', last position only' : ''}: hooks before, inside and after attention`, async () => {
        const model = Model.load(join(dir, `opset${opset}.onnx`), { threads: 1 });
        const [clean, corrupted] = [
          corpusFeeds(model, dir, 'inputs'),
          corpusFeeds(model, dir, 'corrupted'),
        ];
        const hooks = [
          'wte',
          blockInput(model, '/h.1/'),
          'h.0.attn',
          'h.1.attn.c_attn',
          'h.1.ln_2',
          'h.1',
        ];
        const metric = lastLogit(7);
        const suffix = await patchSweep(model, clean, corrupted, hooks, 'all', metric, {
          lastPosition,
          maxRows: 4, // one position a run: every run but the first reads clean keys and values
        });
        assert.equal(suffix.runs, hooks.length * 10);
        const every = await patchSweep(model, clean, corrupted, hooks, 'all', metric, {
          lastPosition,
          causalSuffix: false,
        });
        assert.deepEqual(
          suffix.paths,
          hooks.map(() => 'suffix'),
        );
        assert.deepEqual(
          every.paths,
          hooks.map(() => 'downstream'),
        );
        assert.ok(
          largestDifference(suffix, every) < 1e-5,
          `largest difference ${largestDifference(suffix, every)}`,
        );
        assert.ok(
          suffix.effects.every((row) => new Set(row).size > 1),
          'effects vary with the position',
        );
        await model.release();
      });
    }
  }
});

describe('patch sweep on a model not shown causal (corpus encoder)', () => {
  it('recomputes every position before an attention without a causal mask, and says why; after the last attention, from the patch on', async () => {
    const dir = corpus('encoder');
    const model = Model.load(join(dir, 'opset17.onnx'), { threads: 1 });
    const clean = corpusFeeds(model, dir, 'inputs');
    const corrupted = {
      ...corpusFeeds(model, dir, 'corrupted'),
      attention_mask: clean.attention_mask,
    };
    const firstLogit = (logits: Tensor) => Number(logits.data[0]) + Number(logits.data[4]);
    const hooks = ['embed', 'encoder.layers.0', 'encoder.layers.1.norm1'];
    const suffix = await patchSweep(model, clean, corrupted, hooks, 'all', firstLogit, {
      maxRows: 4,
    });
    const every = await patchSweep(model, clean, corrupted, hooks, 'all', firstLogit, {
      causalSuffix: false,
    });
    assert.deepEqual(suffix.paths, ['downstream', 'downstream', 'suffix']);
    assert.equal(suffix.notes.length, 2);
    assert.match(
      suffix.notes[0],
      /Hook 'embed'.*mixes positions through a pattern with no constant mask hiding later keys/,
    );
    assert.ok(largestDifference(suffix, every) < 1e-5);
    // A patch at a late position moves the first position's pooled output here: it is not causal.
    assert.ok(Math.abs(every.effects[0][9] - every.cleanMetric) > 1e-4);
    await model.release();
  });
});

describe('patch sweep on a decoder without its causal mask (corpus GPT-2, mask bypassed)', () => {
  it('recomputes every position for hooks before an attention, and matches the every-position sweep', async () => {
    const dir = corpus('gpt2');
    const causal = Model.load(join(dir, 'opset14.onnx'), { threads: 1 });
    // Each attention's Softmax reads the scores before the Where that hides later keys.
    const graph = causal.proto.graph;
    const unmasked = graph.node.map((node) => {
      if (node.opType !== 'Softmax') return node;
      const where = graph.node.find((other) => other.output[0] === node.input[0])!;
      assert.equal(where.opType, 'Where');
      return derive(node, { input: [where.input[2]] });
    });
    const model = Model.fromProto(
      derive(causal.proto, { graph: derive(graph, { node: unmasked }) }),
      'gpt2 without mask',
      { threads: 1 },
    );
    const [clean, corrupted] = [
      corpusFeeds(model, dir, 'inputs'),
      corpusFeeds(model, dir, 'corrupted'),
    ];
    const hooks = ['wte', 'h.0.attn', 'h.1.ln_2'];
    const metric = lastLogit(7);
    const suffix = await patchSweep(model, clean, corrupted, hooks, 'all', metric, { maxRows: 4 });
    const every = await patchSweep(model, clean, corrupted, hooks, 'all', metric, {
      causalSuffix: false,
    });
    // After the last attention every node is position-wise: that hook alone is recomputed from the patch on.
    assert.deepEqual(suffix.paths, ['downstream', 'downstream', 'suffix']);
    assert.match(suffix.notes[0], /no constant mask hiding later keys/);
    assert.ok(largestDifference(suffix, every) < 1e-5);
    await model.release();
    await causal.release();
  });
});
