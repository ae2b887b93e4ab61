/**
 * Gradients agree with PyTorch autograd: the mean cross-entropy's gradients with respect to the
 * input (float inputs) and every parameter of the reference fixtures — including gpt's merged
 * LayerNorm parameters, which must come out untied — within 1e-4 relative, and the loss itself.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { computeGradients, parameterNames } from '../src/autodiff/gradients.ts';
import { readNpy } from '../src/data/npy.ts';
import { GraphBuilder, ints } from '../src/graph/builder.ts';
import { Model } from '../src/runtime/model.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { assertClose, fixtureDir, loadFixture } from './helpers.ts';

for (const name of ['mlp', 'cnn', 'gpt'] as const) {
  describe(`gradients of fixture ${name}`, () => {
    it('match PyTorch for the input and every parameter, and the loss matches', async () => {
      const fixture = loadFixture(name);
      const dir = fixtureDir(name);
      const manifest = JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8'));
      const hasInputGrad = existsSync(`${dir}/grad/input.npy`);
      const { loss, gradients } = await computeGradients(
        fixture.model,
        { input: fixture.input },
        readNpy(`${dir}/target.npy`),
        {
          loss: { kind: 'cross-entropy' },
          wrt: hasInputGrad ? ['input', 'params'] : ['params'],
        },
      );
      const expectedLoss = JSON.parse(readFileSync(`${dir}/loss.json`, 'utf8')).loss;
      assert.ok(
        Math.abs(loss - expectedLoss) <= 1e-5 * Math.abs(expectedLoss),
        `loss ${loss} vs ${expectedLoss}`,
      );
      if (hasInputGrad)
        assertClose(
          gradients.get('input')!,
          readNpy(`${dir}/grad/input.npy`),
          1e-4,
          'input gradient',
        );
      for (const parameter of Object.keys(manifest.param_grads)) {
        assert.ok(gradients.has(parameter), `no gradient for parameter ${parameter}`);
        assertClose(
          gradients.get(parameter)!,
          readNpy(`${dir}/grad/param/${parameter}.npy`),
          1e-4,
          `d loss / d ${parameter}`,
        );
      }
      await fixture.model.release();
    });
  });
}

describe('merged parameters (gpt)', () => {
  it('lists every PyTorch parameter name, merged copies included', () => {
    const fixture = loadFixture('gpt');
    const names = new Set(parameterNames(fixture.model));
    const manifest = JSON.parse(readFileSync(`${fixtureDir('gpt')}/manifest.json`, 'utf8'));
    assert.deepEqual(
      Object.keys(manifest.params).filter((name) => !names.has(name)),
      [],
    );
  });
});

describe('gradients of fixture cnn-folded', () => {
  it('match PyTorch for the input and the loss; its stored parameter gradients are accumulated over two exports', async () => {
    const fixture = loadFixture('cnn-folded');
    const dir = fixtureDir('cnn-folded');
    const { loss, gradients } = await computeGradients(
      fixture.model,
      { input: fixture.input },
      readNpy(`${dir}/target.npy`),
      { loss: { kind: 'cross-entropy' }, wrt: ['input', 'params'] },
    );
    assert.ok(Math.abs(loss - JSON.parse(readFileSync(`${dir}/loss.json`, 'utf8')).loss) < 1e-5);
    assertClose(gradients.get('input')!, readNpy(`${dir}/grad/input.npy`), 1e-4, 'input gradient');
    // The fixture script exports cnn then cnn-folded from one module without zeroing .grad, so
    // cnn-folded's grad/param holds cnn's gradient plus its own: check exactly that.
    for (const parameter of [
      'conv1.weight',
      'conv1.bias',
      'fc.weight',
      'fc.bias',
      'head.weight',
      'head.bias',
    ]) {
      const ours = gradients.get(parameter)!;
      const cnn = readNpy(`${fixtureDir('cnn')}/grad/param/${parameter}.npy`);
      const accumulated = {
        ...ours,
        data: (ours.data as Float32Array).map((value, i) => value + Number(cnn.data[i])),
      };
      assertClose(accumulated, readNpy(`${dir}/grad/param/${parameter}.npy`), 1e-4, parameter);
    }
    await fixture.model.release();
  });
});

describe('cross-entropy options against the closed form', () => {
  // For scores z and target t, d(mean CE)/dz = (softmax(z) − onehot(t)) / (rows counted), zero on ignored rows.
  const build = () => {
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
    return Model.fromProto(g.build(), 'scores', { threads: 1 });
  };
  const random = seededRandom(3);
  const scores = tensor(
    'float64',
    [2, 3, 4],
    Array.from({ length: 24 }, () => 4 * random() - 2),
  );
  const softmaxRow = (row: number) => {
    const values = Array.from({ length: 4 }, (_, c) => Number(scores.data[row * 4 + c]));
    const max = Math.max(...values);
    const exps = values.map((v) => Math.exp(v - max));
    const sum = exps.reduce((a, b) => a + b);
    return exps.map((e) => e / sum);
  };
  const check = async (
    targets: number[],
    options: { ignoreIndex?: number; positions?: 'last' },
    rowsScored: number[],
  ) => {
    const model = build();
    const target = tensor('int64', options.positions === 'last' ? [2] : [2, 3], targets);
    const { loss, gradients } = await computeGradients(model, { input: scores }, target, {
      loss: { kind: 'cross-entropy', ...options },
      wrt: ['input'],
    });
    const labelOf = (row: number) =>
      options.positions === 'last' ? targets[Math.floor(row / 3)] : targets[row];
    const expectedLoss =
      rowsScored.reduce((sum, row) => sum - Math.log(softmaxRow(row)[labelOf(row)]), 0) /
      rowsScored.length;
    assert.ok(Math.abs(loss - expectedLoss) < 1e-12, `loss ${loss} vs ${expectedLoss}`);
    const grad = gradients.get('input')!;
    for (let row = 0; row < 6; row++)
      for (let c = 0; c < 4; c++) {
        const expected = rowsScored.includes(row)
          ? (softmaxRow(row)[c] - (c === labelOf(row) ? 1 : 0)) / rowsScored.length
          : 0;
        assert.ok(
          Math.abs(Number(grad.data[row * 4 + c]) - expected) < 1e-12,
          `row ${row} class ${c}`,
        );
      }
    await model.release();
  };

  it('ignore index: ignored positions leave the sum and the count', () =>
    check([0, 3, -100, 2, -100, 1], { ignoreIndex: -100 }, [0, 1, 3, 5]));
  it('last position only, one target per sequence', () =>
    check([2, 1], { positions: 'last' }, [2, 5]));
});

describe('MaxPool gradient with ties', () => {
  it('routes each window’s gradient to its first maximum in row-major order, as PyTorch does', async () => {
    const g = new GraphBuilder('pool', 17);
    const pooled = g.node(
      'MaxPool',
      [g.input('input', 'float32', ['batch', 1, 4, 4])],
      { kernel_shape: ints([2, 2]), strides: ints([2, 2]) },
      '/pool/MaxPool',
    );
    g.output(g.node('Flatten', [pooled], {}, '/flat/Flatten', 'scores'), 'float32');
    const model = Model.fromProto(g.build(), 'pool', { threads: 1 });
    // Windows (row-major): all 3s (tie of four) | max 5 at (0,3) and (1,2) | max 2 once at (3,0) | all 0s
    const x = tensor('float32', [1, 1, 4, 4], [3, 3, 1, 5, 3, 3, 5, 4, 1, 0, 0, 0, 2, 1, 0, 0]);
    const { gradients } = await computeGradients(
      model,
      { input: x },
      tensor('float32', [1, 4], [0, 0, 0, 0]),
      { loss: { kind: 'mse' }, wrt: ['input'] },
    );
    // mse = mean(y²) over 4 outputs: ∂/∂y = y / 2, all of it to the first maximum of each window
    const expected = [1.5, 0, 0, 2.5, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
    assert.deepEqual(Array.from(gradients.get('input')!.data as Float32Array), expected);
    await model.release();
  });
});
