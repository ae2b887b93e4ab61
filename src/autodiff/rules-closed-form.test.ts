/**
 * Gradient rules checked against closed forms where finite differences cannot be used: MaxPool's
 * routing of tied windows (a kink) and Dropout in training mode (a fresh random mask every run).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, int, ints } from '../graph/builder.ts';
import { Model } from '../runtime/model.ts';
import { seededRandom } from '../random.ts';
import { tensor } from '../tensor.ts';
import { computeGradients } from './gradients.ts';

describe("MaxPool routes each window's gradient to its first maximum, ties included", () => {
  // Values from a handful of integers, so most windows tie; the oracle scans each window row-major
  // and keeps the first of equal values, as onnxruntime's and PyTorch's indices do.
  // One thread: tiling windows find their winners from the input's phases; two: from MaxPool's indices.
  const CASES = [
    { name: '2×2 windows tiling the input', dims: [3, 2, 4, 6], k: 2, relu: false, threads: 1 },
    {
      name: '2×2 windows tiling the input, 2 threads',
      dims: [3, 2, 4, 6],
      k: 2,
      relu: false,
      threads: 2,
    },
    { name: '3×3 windows tiling the input', dims: [2, 2, 6, 9], k: 3, relu: false, threads: 1 },
    {
      name: '2×2 windows, the last row left out',
      dims: [2, 2, 5, 6],
      k: 2,
      relu: false,
      threads: 1,
    },
    {
      name: 'Relu then 2×2 windows (the pair at once)',
      dims: [3, 2, 4, 6],
      k: 2,
      relu: true,
      threads: 1,
    },
    {
      name: 'Relu then 2×2 windows (the pair at once), 2 threads',
      dims: [3, 2, 4, 6],
      k: 2,
      relu: true,
      threads: 2,
    },
  ];
  for (const { name, dims, k, relu, threads } of CASES) {
    it(`${name}: matches a row-major scan that keeps the first of equal values`, async () => {
      const [n, channels, height, width] = dims;
      const [rows, columns] = [Math.floor(height / k), Math.floor(width / k)];
      const g = new GraphBuilder('pool', 17);
      const x = g.input('x', 'float32', ['batch', channels, height, width]);
      g.output(
        g.node(
          'MaxPool',
          [relu ? g.node('Relu', [x], {}, '/act/Relu') : x],
          { kernel_shape: ints([k, k]), strides: ints([k, k]) },
          '/pool/MaxPool',
          'y',
        ),
        'float32',
      );
      const model = Model.fromProto(g.build(), 'pool', { threads });
      const random = seededRandom(5);
      const size = n * channels * height * width;
      const input = tensor(
        'float32',
        dims,
        Array.from({ length: size }, () => Math.floor(random() * 4) - (relu ? 1 : 0)),
      );
      const outputs = n * channels * rows * columns;
      const target = tensor(
        'float32',
        [n, channels, rows, columns],
        Array.from({ length: outputs }, () => random()),
      );
      // MSE over the outputs: dL/dy = 2(y − t)/outputs, all of it to the window's first maximum (none through a Relu at 0)
      const expected = new Array<number>(size).fill(0);
      for (let plane = 0; plane < n * channels; plane++)
        for (let i = 0; i < rows; i++)
          for (let j = 0; j < columns; j++) {
            let best = -1;
            for (let a = 0; a < k; a++)
              for (let b = 0; b < k; b++) {
                const at = plane * height * width + (k * i + a) * width + k * j + b;
                if (best < 0 || input.data[at] > input.data[best]) best = at;
              }
            const y = relu ? Math.max(0, Number(input.data[best])) : Number(input.data[best]);
            if (!relu || y > 0)
              expected[best] =
                (2 * (y - Number(target.data[(plane * rows + i) * columns + j]))) / outputs;
          }
      const { gradients } = await computeGradients(model, { x: input }, target, {
        loss: { kind: 'mse' },
        wrt: ['input'],
      });
      const actual = Array.from(gradients.get('x')!.data as Float32Array);
      actual.forEach((value, at) =>
        assert.ok(Math.abs(value - expected[at]) < 1e-6, `x[${at}]: ${value} vs ${expected[at]}`),
      );
      await model.release();
    });
  }
});

describe('Dropout', () => {
  // Y = X·mask/(1 − r) with a fresh random mask per run, so no finite differences: with L = mean(Y²),
  // dL/dXᵢ = 2·Xᵢ·maskᵢ/(n·(1 − r)²) — each element 0 or 2Xᵢ/(n(1 − r)²), about 1 − r of them kept.
  // In inference (training_mode false) Y = X and dL/dXᵢ = 2Xᵢ/n.
  for (const training of [true, false]) {
    it(`training_mode ${training}: the gradient is 2X/n through the kept units, scaled by 1/(1 − r)²`, async () => {
      const ratio = 0.25;
      const g = new GraphBuilder('dropout', 17);
      const inputs = [
        g.input('x', 'float32', [4, 50]),
        g.initializer('ratio', tensor('float32', [], [ratio])),
        g.initializer('training', tensor('bool', [], [training ? 1 : 0])),
      ];
      g.output(g.node('Dropout', inputs, { seed: int(3) }, '/drop/Dropout'), 'float32');
      const model = Model.fromProto(g.build(), 'dropout', { threads: 1 });
      const random = seededRandom(9);
      const x = tensor(
        'float32',
        [4, 50],
        Array.from({ length: 200 }, () => 0.5 + random()),
      );
      const { gradients } = await computeGradients(model, { x }, tensor('float32', [4, 50]), {
        loss: { kind: 'mse' },
        wrt: ['input'],
      });
      const scale = training ? 2 / (200 * (1 - ratio) ** 2) : 2 / 200;
      const gradient = Array.from(gradients.get('x')!.data as Float32Array);
      gradient.forEach((value, k) =>
        assert.ok(
          value === 0 || Math.abs(value - scale * Number(x.data[k])) < 1e-6,
          `x[${k}]: ${value} vs 0 or ${scale * Number(x.data[k])}`,
        ),
      );
      const kept = gradient.filter((value) => value !== 0).length / 200;
      if (training)
        assert.ok(
          kept > 0.6 && kept < 0.9,
          `kept ${kept} of the units, expected about ${1 - ratio}`,
        );
      else assert.equal(kept, 1);
      await model.release();
    });
  }
});
