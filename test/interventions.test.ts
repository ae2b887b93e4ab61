/**
 * Interventions agree with independent computations: the mlp fixture's forward pass written out
 * in TypeScript with the units ablated by hand, and, for the gpt, the same edits evaluated two
 * ways (a stacked sweep vs one run per patch) plus the exact consequence of a whole-hook patch.
 */
import assert from 'node:assert/strict';
import { describe, it, after } from 'node:test';
import { ablate, patch, scale } from '../src/graph/interventions.ts';
import { tensorFromProto } from '../src/onnx/tensor-proto.ts';
import { runWithCache, runWithInterventions } from '../src/runtime/run.ts';
import { patchSweep } from '../src/inspect/patch-sweep.ts';
import { InterventionError } from '../src/errors.ts';
import { sliceRows, type Tensor } from '../src/tensor.ts';
import { assertClose, loadFixture } from './helpers.ts';

/** The mlp fixture by hand: head(tanh(fc2(edit(relu(fc1(x)))))), with Linear(x) = x·Wᵀ + b. */
function mlpByHand(
  weights: Map<string, Tensor>,
  x: Tensor,
  editAct1: (row: number, unit: number, value: number) => number,
): Tensor {
  const linear = (input: number[], name: string) => {
    const w = weights.get(`${name}.weight`)!;
    const b = weights.get(`${name}.bias`)!;
    const [outFeatures, inFeatures] = w.dims;
    return Array.from({ length: outFeatures }, (_, o) => {
      let sum = Number(b.data[o]);
      for (let i = 0; i < inFeatures; i++) sum += input[i] * Number(w.data[o * inFeatures + i]);
      return sum;
    });
  };
  const [rows, width] = x.dims;
  const out: number[] = [];
  for (let row = 0; row < rows; row++) {
    const input = Array.from(x.data.subarray(row * width, (row + 1) * width) as Float32Array);
    const act1 = linear(input, 'fc1').map((v, unit) => editAct1(row, unit, Math.max(0, v)));
    out.push(...linear(linear(act1, 'fc2').map(Math.tanh), 'head'));
  }
  return { dtype: 'float32', dims: [rows, out.length / rows], data: Float32Array.from(out) };
}

describe('interventions on the mlp fixture vs hand-written reference math', () => {
  const fixture = loadFixture('mlp');
  after(() => fixture.model.release());
  const weights = new Map(
    fixture.model.proto.graph.initializer.map((t) => [t.name, tensorFromProto(t)]),
  );
  const units = [0, 3, 7, 31];
  const feeds = { input: fixture.input };

  it('reproduces the unedited output by hand (the reference itself is right)', () => {
    assertClose(
      mlpByHand(weights, fixture.input, (_, __, v) => v),
      fixture.output,
      1e-5,
    );
  });

  it('zero ablation of act1 units', async () => {
    const { outputs, cache } = await runWithInterventions(
      fixture.model,
      feeds,
      [ablate('act1', 'zero', { units })],
      { cache: ['act1'] },
    );
    assertClose(
      outputs.output,
      mlpByHand(weights, fixture.input, (_, unit, v) => (units.includes(unit) ? 0 : v)),
    );
    for (let row = 0; row < 16; row++)
      for (const unit of units) assert.equal(cache.get('act1')!.data[row * 32 + unit], 0);
  });

  it('mean ablation of act1 units uses the mean over the reference examples', async () => {
    const act1 = (await runWithCache(fixture.model, feeds, ['act1'])).cache.get('act1')!;
    const mean = (unit: number) =>
      Array.from({ length: 16 }, (_, row) => Number(act1.data[row * 32 + unit])).reduce(
        (a, b) => a + b,
      ) / 16;
    const { outputs } = await runWithInterventions(fixture.model, feeds, [
      ablate('act1', 'mean', { units }),
    ]);
    assertClose(
      outputs.output,
      mlpByHand(weights, fixture.input, (_, unit, v) => (units.includes(unit) ? mean(unit) : v)),
    );
  });

  it('resample ablation takes each unit value from another example, seeded', async () => {
    const act1 = (await runWithCache(fixture.model, feeds, ['act1'])).cache.get('act1')!;
    const first = await runWithInterventions(
      fixture.model,
      feeds,
      [ablate('act1', 'resample', { units, seed: 5 })],
      { cache: ['act1'] },
    );
    const again = await runWithInterventions(
      fixture.model,
      feeds,
      [ablate('act1', 'resample', { units, seed: 5 })],
      { cache: ['act1'] },
    );
    assert.deepEqual(first.outputs.output.data, again.outputs.output.data);
    const resampled = first.cache.get('act1')!;
    // Each row's ablated units all come from one reference row, and the untouched units are its own.
    for (let row = 0; row < 16; row++) {
      const source = [...Array(16).keys()].find((candidate) =>
        units.every((unit) => resampled.data[row * 32 + unit] === act1.data[candidate * 32 + unit]),
      );
      assert.notEqual(source, undefined, `row ${row} has no source row`);
      assert.equal(resampled.data[row * 32 + 1], act1.data[row * 32 + 1]);
    }
    assertClose(
      first.outputs.output,
      mlpByHand(weights, fixture.input, (row, unit, v) =>
        units.includes(unit) ? Number(resampled.data[row * 32 + unit]) : v,
      ),
    );
  });

  it('scale and patch compose in the order given', async () => {
    const value: Tensor = { dtype: 'float32', dims: [1, 32], data: new Float32Array(32).fill(0.5) };
    const { outputs } = await runWithInterventions(fixture.model, feeds, [
      scale('act1', 3, { units: [1, 2] }),
      patch('act1', value, { units: [2, 4] }),
    ]);
    const expected = mlpByHand(weights, fixture.input, (_, unit, v) =>
      unit === 2 || unit === 4 ? 0.5 : unit === 1 ? 3 * v : v,
    );
    assertClose(outputs.output, expected);
  });

  it('intervenes on a graph input (zeroed input features) and on a graph output (scaled logits)', async () => {
    const zeroed = {
      ...fixture.input,
      data: (fixture.input.data as Float32Array).map((v, i) => (i % 20 === 4 ? 0 : v)),
    };
    const onInput = await runWithInterventions(
      fixture.model,
      feeds,
      [ablate('input', 'zero', { units: [4] })],
      { cache: ['input'] },
    );
    assertClose(
      onInput.outputs.output,
      (await runWithCache(fixture.model, { input: zeroed }, [])).outputs.output,
      1e-6,
    );
    assert.deepEqual(onInput.cache.get('input')!.data, zeroed.data);
    const doubled = await runWithInterventions(fixture.model, feeds, [scale('head', 2)]);
    assertClose(doubled.outputs.output, {
      ...fixture.output,
      data: (fixture.output.data as Float32Array).map((v) => 2 * v),
    });
  });

  it('refuses to intervene on integer values', async () => {
    const gpt = loadFixture('gpt');
    await assert.rejects(
      runWithInterventions(gpt.model, { input: gpt.input }, [ablate('input', 'zero')]),
      /only float values can be intervened on/,
    );
    await gpt.model.release();
  });

  it('refuses units out of range with the valid range', async () => {
    await assert.rejects(
      runWithInterventions(fixture.model, feeds, [ablate('act1', 'zero', { units: [32] })]),
      (error: Error) =>
        error instanceof InterventionError &&
        /Unit 32 is out of range for hook 'act1' of shape \[16, 32\]/.test(error.message),
    );
  });
});

describe('patching the gpt fixture', () => {
  const fixture = loadFixture('gpt');
  after(() => fixture.model.release());
  const clean = { input: fixture.input };
  // The corrupted input: each sequence shifted to another example's tokens.
  const corrupted = {
    input: {
      ...fixture.input,
      data: (fixture.input.data as BigInt64Array).map((_, i, all) => all[(i + 12) % all.length]),
    },
  };

  it("patching all of blocks.0 with another input's values gives that input's output (everything downstream reads only blocks.0)", async () => {
    const corruptedRun = await runWithCache(fixture.model, corrupted, ['blocks.0']);
    const { outputs } = await runWithInterventions(fixture.model, clean, [
      patch('blocks.0', corruptedRun.cache.get('blocks.0')!),
    ]);
    assertClose(outputs.output, corruptedRun.outputs.output, 1e-6);
  });

  const metric = (output: Tensor) => {
    // mean logit of token 7 at the last position
    const [batch, seq, vocab] = output.dims;
    let sum = 0;
    for (let b = 0; b < batch; b++) sum += Number(output.data[(b * seq + seq - 1) * vocab + 7]);
    return sum / batch;
  };

  it('a stacked sweep equals one run per (hook, position)', async () => {
    const hooks = ['blocks.0', 'blocks.1.attn', 'embed'];
    const sweep = await patchSweep(fixture.model, clean, corrupted, hooks, 'all', metric, {
      maxRows: 20,
    });
    assert.equal(sweep.positions.length, 12);
    assert.ok(sweep.runs > 1, 'maxRows forces several chunks');
    const corruptedCache = (await runWithCache(fixture.model, corrupted, hooks)).cache;
    for (const [h, hook] of hooks.entries()) {
      for (const position of [0, 5, 11]) {
        const one = await runWithInterventions(fixture.model, clean, [
          patch(hook, corruptedCache.get(hook)!, { positions: [position] }),
        ]);
        assert.ok(
          Math.abs(metric(one.outputs.output) - sweep.effects[h][position]) < 1e-5,
          `${hook}@${position}`,
        );
      }
    }
    // Causal attention: patching the last position of blocks.0 moves the last-position metric, patching earlier positions of the final hook cannot.
    assert.notEqual(sweep.effects[0][11], sweep.cleanMetric);
  });

  it("computing only the last position (lastPosition) gives the full sweep's effects, the patched last position included, also for hooks after the last attention", async () => {
    const hooks = ['blocks.0', 'blocks.1.ln1', 'blocks.1.attn', 'blocks.1.mlp', 'embed'];
    const full = await patchSweep(fixture.model, clean, corrupted, hooks, 'all', metric);
    const last = await patchSweep(fixture.model, clean, corrupted, hooks, 'all', metric, {
      lastPosition: true,
    });
    for (const [h, hook] of hooks.entries()) {
      full.effects[h].forEach((effect, p) =>
        assert.ok(
          Math.abs(effect - last.effects[h][p]) < 1e-6,
          `${hook}@${p}: ${last.effects[h][p]} vs ${effect}`,
        ),
      );
    }
    assert.ok(Math.abs(last.cleanMetric - full.cleanMetric) < 1e-6);
  });

  it('patches only the chosen positions and leaves the others', async () => {
    const corruptedCache = (await runWithCache(fixture.model, corrupted, ['blocks.0'])).cache.get(
      'blocks.0',
    )!;
    const { cache } = await runWithInterventions(
      fixture.model,
      clean,
      [patch('blocks.0', corruptedCache, { positions: [2, -1] })],
      { cache: ['blocks.0'] },
    );
    const cleanCache = (await runWithCache(fixture.model, clean, ['blocks.0'])).cache.get(
      'blocks.0',
    )!;
    const patched = cache.get('blocks.0')!;
    for (let b = 0; b < 4; b++)
      for (let p = 0; p < 12; p++) {
        const source = p === 2 || p === 11 ? corruptedCache : cleanCache;
        const row = (sliceRows(patched, b, b + 1).data as Float32Array).subarray(
          p * 32,
          p * 32 + 32,
        );
        assert.deepEqual(
          Array.from(row),
          Array.from(
            source.data.subarray((b * 12 + p) * 32, (b * 12 + p) * 32 + 32) as Float32Array,
          ),
        );
      }
  });

  it('ablates attention heads on the head axis of the softmax pattern', async () => {
    const { cache } = await runWithInterventions(
      fixture.model,
      clean,
      [ablate('blocks.0.attn.softmax', 'zero', { units: [1] })],
      { cache: ['blocks.0.attn.softmax'] },
    );
    const pattern = cache.get('blocks.0.attn.softmax')!; // [batch, heads, query, key]
    assert.deepEqual(pattern.dims, [4, 4, 12, 12]);
    const head = (b: number, h: number) =>
      Array.from(pattern.data.subarray((b * 4 + h) * 144, (b * 4 + h + 1) * 144) as Float32Array);
    assert.ok(head(0, 1).every((v) => v === 0));
    assert.ok(head(0, 0).some((v) => v !== 0));
  });
});
