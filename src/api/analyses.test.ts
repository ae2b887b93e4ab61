/**
 * The library's analysis functions against closed forms on a hand-built linear classifier
 * (scores = x·W·U + b·U), an abort between training steps, and an audit of a learner that is not
 * a network (a logistic regression written here).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NOT_A_NETWORK } from '../audit/audit.ts';
import { GraphBuilder } from '../graph/builder.ts';
import { seededRandom } from '../random.ts';
import { floatTensor } from '../tensor.ts';
import {
  addVector,
  attributeDirection,
  audit,
  gradients,
  inspect,
  integratedGradients,
  Model,
  projectOut,
  Tensor,
  train,
  type ProgressEvent,
} from '../index.ts';
import { outputsWithoutDirection } from '../inspect/direction.ts';

const [width, classes] = [3, 2];
const W = [0.5, -1, 0.25, 1, 0, -0.5, -0.2, 0.7, 1.5];
const b = [0.1, -0.2, 0.3];
const U = [1, -1, 0.5, 2, -0.3, 0.8];
/** W·U: ∂score_c/∂x_i, the same for every example of a linear model. */
const WU = Array.from({ length: width * classes }, (_, n) =>
  W.slice(Math.floor(n / classes) * width, Math.floor(n / classes) * width + width).reduce(
    (sum, w, j) => sum + w * U[j * classes + (n % classes)],
    0,
  ),
);

function linearClassifier(): Model {
  const g = new GraphBuilder('linear');
  const x = g.input('x', 'float32', ['batch', width]);
  const product = g.node('MatMul', [x, g.initializer('W', floatTensor([width, width], W))]);
  g.node('Add', [product, g.initializer('b', floatTensor([width], b))], {}, '/h', 'h');
  g.node(
    'MatMul',
    ['h', g.initializer('U', floatTensor([width, classes], U))],
    {},
    '/scores',
    'scores',
  );
  g.output('scores', 'float32');
  return Model.fromProto(g.build(), 'linear classifier', { threads: 1 });
}

const x = new Tensor(
  'float32',
  [4, width],
  Float32Array.from([1, 2, 3, -1, 0.5, 2, 0, 0, 1, 3, -2, 0.5]),
);

describe('gradients and integrated gradients on a linear classifier', () => {
  const model = linearClassifier();
  after(() => model.release());

  it('mse gradient with respect to the input is (2/n)(y − t)·(WU)ᵀ', async () => {
    const target = new Tensor('float32', [4, classes], new Float32Array(8).fill(0.5));
    const { output } = await model.run(x);
    const { loss, gradients: grads } = await gradients(model, x, {
      target,
      loss: 'mse',
      wrt: ['input'],
    });
    const residual = Array.from(output.data as Float32Array, (y) => y - 0.5);
    assert.ok(Math.abs(loss - residual.reduce((sum, r) => sum + r * r, 0) / 8) < 1e-5);
    const gradient = grads.x;
    for (let row = 0; row < 4; row++) {
      for (let i = 0; i < width; i++) {
        const expected =
          (2 / 8) * (residual[row * 2] * WU[i * 2] + residual[row * 2 + 1] * WU[i * 2 + 1]);
        assert.ok(
          Math.abs(gradient.at(row, i) - expected) < 1e-5,
          `row ${row} input ${i}: ${gradient.at(row, i)} vs ${expected}`,
        );
      }
    }
  });

  it('integrated gradients from a zero baseline are x_i·(WU)_ic exactly', async () => {
    const target = new Tensor('int64', [4], BigInt64Array.from([0n, 1n, 1n, 0n]));
    const { attributions, completenessError } = await integratedGradients(model, x, {
      target,
      steps: 8,
    });
    for (let row = 0; row < 4; row++) {
      const c = Number(target.data[row]);
      for (let i = 0; i < width; i++)
        assert.ok(Math.abs(attributions.at(row, i) - x.at(row, i) * WU[i * 2 + c]) < 1e-5);
    }
    assert.ok(completenessError < 1e-5);
    const events: ProgressEvent[] = [];
    const controller = new AbortController();
    // 8 steps of 4 examples at 8 rows a run: 4 gradient runs; aborted after the second.
    await assert.rejects(
      integratedGradients(model, x, {
        target,
        steps: 8,
        maxRows: 8,
        signal: controller.signal,
        onProgress: (event) => {
          events.push(event);
          if (event.done === 2) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    assert.deepEqual(
      events.map((event) => [event.done, event.total]),
      [
        [1, 4],
        [2, 4],
      ],
    );
  });

  it('audit of the network: its accuracy is the argmax of its scores; an abort stops it between detectors', async () => {
    const random = seededRandom(2);
    const data = new Tensor(
      'float32',
      [200, width],
      Float32Array.from({ length: 200 * width }, () => 2 * random() - 1),
    );
    const labels = Array.from({ length: 200 }, (_, row) => (data.at(row, 0) > 0 ? 1 : 0));
    const scores = (await model.run(data)).output;
    const right = labels.filter(
      (label, row) => (scores.at(row, 1) > scores.at(row, 0) ? 1 : 0) === label,
    ).length;
    const events: ProgressEvent[] = [];
    const result = await audit(
      model,
      { inputs: data, labels },
      { onProgress: (event) => events.push(event) },
    );
    assert.equal(result.accuracy.data.value, right / 200);
    assert.ok(!result.notes.includes(NOT_A_NETWORK));
    assert.equal(events.at(-1)!.done, events.at(-1)!.total);
    const controller = new AbortController();
    await assert.rejects(
      audit(
        model,
        { inputs: data, labels },
        { signal: controller.signal, onProgress: () => controller.abort() },
      ),
      { name: 'AbortError' },
    );
  });

  it("projectOut plus addVector(mean·u) equals the audit's own projection of its attribute direction (inspect/direction.ts, in JavaScript)", async () => {
    const counterfactual = new Tensor(
      'float32',
      x.dims,
      (x.data as Float32Array).map((value, i) => (i % width === 0 ? -value : value)),
    );
    const found = (await attributeDirection(model, 'h', x, counterfactual))!;
    const u = Array.from(found.direction.data as Float64Array);
    assert.ok(Math.abs(Math.hypot(...u) - 1) < 1e-9);
    const ours = await model.run(x, {
      hooks: ['h'],
      interventions: [
        projectOut('h', u),
        addVector(
          'h',
          u.map((value) => value * found.mean),
        ),
      ],
    });
    const theirs = await outputsWithoutDirection(
      model.runtime,
      { ...found, direction: Float64Array.from(u) },
      x,
    );
    const expected = theirs[0];
    for (let k = 0; k < expected.data.length; k++)
      assert.ok(
        Math.abs(Number(ours.output.data[k]) - Number(expected.data[k])) < 1e-5,
        `output ${k}`,
      );
    const h = ours.cache.get('h');
    for (let row = 0; row < 4; row++)
      assert.ok(
        Math.abs(u.reduce((sum, value, j) => sum + value * h.at(row, j), 0) - found.mean) < 1e-5,
      );
  });

  it('inspect reports progress, and an abort stops it with an AbortError', async () => {
    const data = new Tensor(
      'float32',
      [64, width],
      Float32Array.from({ length: 64 * width }, seededRandom(1)),
    );
    const labels = new Tensor(
      'int64',
      [64],
      BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i % 2)),
    );
    const events: ProgressEvent[] = [];
    const result = await inspect(model, data, {
      labels,
      hooks: ['h'],
      batchSize: 16,
      onProgress: (event) => events.push(event),
    });
    assert.equal(result.examples, 64);
    assert.deepEqual(
      events.map((event) => event.done),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.ok(events.every((event) => event.task === 'inspect' && event.total === 8));
    const controller = new AbortController();
    await assert.rejects(
      inspect(model, data, {
        labels,
        hooks: ['h'],
        batchSize: 16,
        signal: controller.signal,
        onProgress: (event) => {
          if (event.done === 2) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
  });
});

describe('train with an AbortSignal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'teardown-api-train-'));
  after(() => rmSync(dir, { recursive: true }));
  const random = seededRandom(9);
  const rows = Array.from({ length: 200 }, () => [2 * random() - 1, 2 * random() - 1]);
  writeFileSync(
    join(dir, 'points.csv'),
    `x,y,above\n${rows.map(([px, py]) => `${px},${py},${px + py > 0 ? 1 : 0}`).join('\n')}\n`,
  );
  const spec = {
    task: `csv:${join(dir, 'points.csv')}`,
    taskOptions: { labelColumn: 'above' },
    model: 'mlp:hidden=8',
    steps: 40,
    batch: 16,
    evalEvery: 40,
    lr: 0.01,
  };

  it('stops between steps, rejects with an AbortError and writes no model', async () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const out = join(dir, 'aborted.onnx');
    await assert.rejects(
      train(spec, {
        threads: 1,
        out,
        signal: controller.signal,
        onProgress: (event) => {
          steps.push(event.done);
          if (event.done === 3) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    assert.deepEqual(steps, [0, 1, 2, 3]);
    assert.equal(existsSync(out), false);
  });

  it('runs to the end without one, reports every step and writes the model', async () => {
    const events: ProgressEvent[] = [];
    const out = join(dir, 'trained.onnx');
    const result = await train(spec, {
      threads: 1,
      out,
      onProgress: (event) => events.push(event),
    });
    assert.equal(events.at(-1)!.done, 40);
    assert.ok(existsSync(out));
    const reloaded = Model.load(out, { threads: 1 });
    const sample = new Tensor('float32', [2, 2], Float32Array.from([0.5, 0.5, -0.5, -0.5]));
    assert.deepEqual(
      (await reloaded.run(sample)).output.data,
      (await result.trained.run(sample)).output.data,
    );
    await reloaded.release();
    await result.trained.release();
  });
});

describe('audit of a classifier that is not a network', () => {
  // Planted: the label is [x0 + x1 > 0]; feature 2 is a group that agrees with the label 90% of the time.
  const random = seededRandom(4);
  const n = 600;
  const rows = Array.from({ length: n }, () => [2 * random() - 1, 2 * random() - 1]);
  const labels = rows.map(([a, c]) => (a + c > 0 ? 1 : 0));
  const group = labels.map((label) => (random() < 0.9 ? label : 1 - label));
  const inputs = new Tensor(
    'float32',
    [n, 3],
    Float32Array.from(rows.flatMap(([a, c], i) => [a, c, group[i]])),
  );
  /** A logistic regression leaning on the group: P(1) = σ(2·x0 + 2·x1 + 3·(group − ½)). */
  const logistic = {
    classes: 2,
    predictProba(batch: Tensor) {
      const out = new Float64Array(batch.dims[0] * 2);
      for (let row = 0; row < batch.dims[0]; row++) {
        const p =
          1 /
          (1 +
            Math.exp(
              -(2 * batch.at(row, 0) + 2 * batch.at(row, 1) + 3 * (batch.at(row, 2) - 0.5)),
            ));
        out[row * 2] = 1 - p;
        out[row * 2 + 1] = p;
      }
      return out;
    },
  };

  it("runs the prediction detectors, skips those that need a network, and its accuracy is the learner's", async () => {
    const result = await audit(
      logistic,
      { inputs, labels, featureNames: ['x0', 'x1', 'group'], attributes: { group } },
      { counterfactuals: ['group:flip'] },
    );
    const predicted = Array.from({ length: n }, (_, row) =>
      logistic.predictProba(inputs.slice(0, row, row + 1))[1] > 0.5 ? 1 : 0,
    );
    const right = predicted.filter((p, i) => p === labels[i]).length;
    assert.equal(result.accuracy.data.value, right / n);
    assert.ok(result.notes.includes(NOT_A_NETWORK));
    assert.deepEqual(result.shortcutUnits, []);
    assert.ok(
      result.findings.some(
        (finding) => finding.detector === 'shortcut-attribute' && finding.attribute === 'group',
      ),
      JSON.stringify(result.findings.map((f) => [f.detector, f.attribute ?? f.feature])),
    );
  });
});
