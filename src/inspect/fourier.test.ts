/**
 * The Fourier analysis on a model with planted periodic structure: logits exactly
 * 5·Σ_{k∈{3,7}} cos(2πk(a+b−c)/P) for P = 23, built from cos/sin token embeddings — the
 * algorithm Nanda et al. found in grokked transformers, written by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, int } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { tensor } from '../tensor.ts';
import type { ProgressEvent } from '../progress.ts';
import { fourierAnalysis } from './fourier.ts';

const P = 23;
const KEYS = [3, 7];

function plantedPeriodicModel(): Model {
  const w = (k: number, x: number) => (2 * Math.PI * k * x) / P;
  const g = new GraphBuilder('periodic', 17);
  const tokens = g.input('input', 'int64', ['batch', 3]);
  // E[x] = [cos w₁x, sin w₁x, cos w₂x, sin w₂x]; E′[x] = [−sin w₁x, cos w₁x, −sin w₂x, cos w₂x]; row P (=) is 0.
  const table = (row: (x: number) => number[]) =>
    tensor(
      'float32',
      [P + 1, 4],
      Array.from({ length: P + 1 }, (_, x) => (x === P ? [0, 0, 0, 0] : row(x))).flat(),
    );
  const embed = g.initializer(
    'embed.weight',
    table((x) => KEYS.flatMap((k) => [Math.cos(w(k, x)), Math.sin(w(k, x))])),
  );
  const shifted = g.initializer(
    'embed_shifted',
    table((x) => KEYS.flatMap((k) => [-Math.sin(w(k, x)), Math.cos(w(k, x))])),
  );
  const at = (position: number, name: string) =>
    g.initializer(name, tensor('int64', [], [position]));
  const tokenA = g.node('Gather', [tokens, at(0, 'position0')], { axis: int(1) }); // [batch]
  const tokenB = g.node('Gather', [tokens, at(1, 'position1')], { axis: int(1) });
  const ea = g.node('Gather', [embed, tokenA], { axis: int(0) }, '/embed/Gather'); // [batch, 4]
  const products = g.node(
    'Concat',
    [
      g.node('Mul', [ea, g.node('Gather', [embed, tokenB], { axis: int(0) })]),
      g.node('Mul', [ea, g.node('Gather', [shifted, tokenB], { axis: int(0) })]),
    ],
    { axis: int(1) },
  ); // [batch, 8]
  // [C_k, S_k] = [cos w(a+b), sin w(a+b)] = [ca·cb − sa·sb, sa·cb + ca·sb]
  const combine = tensor(
    'float32',
    [8, 4],
    [
      1, 0, 0, 0, -1, 0, 0, 0, 0, 0, 1, 0, 0, 0, -1, 0, 0, -1, 0, 0, 0, 1, 0, 0, 0, 0, 0, -1, 0, 0,
      0, 1,
    ],
  );
  const waves = g.node('MatMul', [products, g.initializer('combine', combine)], {}, '/mix/MatMul'); // [batch, 4]
  // logit_c = 5·Σ_k C_k cos w_k c + S_k sin w_k c = 5·Σ_k cos(w_k(a + b − c))
  const unembed = tensor(
    'float32',
    [4, P],
    KEYS.flatMap((k) => [
      Array.from({ length: P }, (_, c) => 5 * Math.cos(w(k, c))),
      Array.from({ length: P }, (_, c) => 5 * Math.sin(w(k, c))),
    ]).flat(),
  );
  g.output(
    g.node(
      'MatMul',
      [waves, g.initializer('unembed.weight', unembed)],
      {},
      '/unembed/MatMul',
      'logits',
    ),
    'float32',
  );
  return Model.fromProto(g.build(), 'periodic', { threads: 1 });
}

describe('Fourier analysis (--fourier)', () => {
  it('finds the planted frequencies; restricted loss equals the full loss and excluded loss is far above it', async () => {
    const result = await fourierAnalysis(plantedPeriodicModel(), P);
    assert.deepEqual(result.keyFrequencies, KEYS);
    assert.ok(result.varianceExplained > 0.999, `variance explained ${result.varianceExplained}`);
    assert.equal(result.significantComponents, KEYS.length); // cos(w(a+b−c)) only: no sine components
    assert.ok(
      Math.abs(result.loss.restricted - result.loss.full) < 1e-4 * Math.max(1, result.loss.full),
      JSON.stringify(result.loss),
    );
    assert.ok(result.loss.excluded > result.loss.full + 2, JSON.stringify(result.loss));
    assert.ok(KEYS.reduce((sum, k) => sum + result.embeddingEnergy[k - 1], 0) > 0.999);
  });

  it('reports the run over every pair, then each hook, and stops when aborted', async () => {
    const model = plantedPeriodicModel();
    const events: ProgressEvent[] = [];
    const hooks = ['/mix/MatMul_output_0'];
    const result = await fourierAnalysis(model, P, {
      hooks,
      onProgress: (event) => events.push(event),
    });
    assert.deepEqual(
      events.map((event) => [event.task, event.done, event.total]),
      [
        ['fourier', 1, 2],
        ['fourier', 2, 2],
      ],
    );
    assert.equal(result.units[hooks[0]].length, 4);
    const controller = new AbortController();
    await assert.rejects(
      fourierAnalysis(model, P, {
        hooks,
        signal: controller.signal,
        onProgress: () => controller.abort(),
      }),
      { name: 'AbortError' },
    );
  });

  it('refuses a model without integer token inputs', async () => {
    const g = new GraphBuilder('floats', 17);
    g.output(
      g.node('Relu', [g.input('x', 'float32', ['batch', 3])], {}, '/act/Relu', 'y'),
      'float32',
    );
    await assert.rejects(
      fourierAnalysis(Model.fromProto(g.build(), 'floats', { threads: 1 }), P),
      /--fourier needs a model whose input is a sequence of integer tokens/,
    );
  });
});
