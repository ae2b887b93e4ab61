import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder, int } from '../graph/builder.ts';
import { seededRandom } from '../random.ts';
import { Model } from '../runtime/model.ts';
import { tensor } from '../tensor.ts';
import { attributeDirection, outputsWithoutDirection } from './direction.ts';

test('finds a planted attribute direction exactly, and projecting it out makes the output blind to the attribute', async () => {
  const random = seededRandom(4);
  const w = Array.from({ length: 16 }, () => random() - 0.5); // hidden = W·x, W 4×4 (row j: hidden unit j)
  const g = new GraphBuilder('planted-direction', 17);
  const hidden = g.node(
    'Gemm',
    [
      g.input('input', 'float32', ['batch', 4]),
      g.initializer('hidden.weight', tensor('float32', [4, 4], w)),
    ],
    { transB: int(1) },
    '/hidden/Gemm',
  );
  g.output(
    g.node(
      'Gemm',
      [
        hidden,
        g.initializer(
          'head.weight',
          tensor(
            'float32',
            [2, 4],
            Array.from({ length: 8 }, () => random() - 0.5),
          ),
        ),
      ],
      { transB: int(1) },
      '/head/Gemm',
      'logits',
    ),
    'float32',
  );
  const model = Model.fromProto(g.build(), 'planted', { threads: 1 });
  // The attribute is feature 0; the counterfactual flips it. Everything else is random.
  const n = 64;
  const x = Array.from({ length: n * 4 }, (_, k) =>
    k % 4 === 0 ? (random() < 0.5 ? 0 : 1) : random(),
  );
  const original = tensor('float32', [n, 4], x);
  const counterfactual = tensor(
    'float32',
    [n, 4],
    x.map((v, k) => (k % 4 === 0 ? 1 - v : v)),
  );
  const found = (await attributeDirection(model, 'hidden', original, counterfactual))!;
  // Dᵢ = W·(xᵢ − x′ᵢ) = ±W·e₀: the direction is W's first column, normalised.
  const column = [0, 1, 2, 3].map((j) => w[j * 4]);
  const norm = Math.hypot(...column);
  const alignment = Math.abs(
    column.reduce((sum, c, j) => sum + (c / norm) * found.direction[j], 0),
  );
  assert.ok(alignment > 1 - 1e-6, `alignment ${alignment}`);
  assert.ok(found.energyShare > 1 - 1e-6, `energy share ${found.energyShare}`);
  const [before] = await outputsWithoutDirection(model, found, original);
  const [after] = await outputsWithoutDirection(model, found, counterfactual);
  for (let k = 0; k < before.data.length; k++)
    assert.ok(
      Math.abs(Number(before.data[k]) - Number(after.data[k])) < 1e-5,
      'the output no longer sees feature 0',
    );
  await model.release();
});
