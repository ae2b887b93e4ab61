/**
 * A network trained without backprop, exported as a plain ONNX model: node for node, parameter
 * for parameter, what train/builders.ts builds for the same `mlp:hidden=…` spec (only the values
 * differ), and teardown's Model runs it to the classifier's own probabilities and reads its hooks
 * as on any MLP teardown trains.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Model } from '../src/api/model.ts';
import { buildModel } from '../src/train/builders.ts';
import type { ModelProto } from '../src/onnx/proto.ts';
import { directFeedbackAlignment } from '../src/race/dfa.ts';
import { forwardForward } from '../src/race/ff.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { gaussian, twoBlobs } from './race-oracles.ts';

/** Everything of a graph but the parameter values. */
function structure(proto: ModelProto) {
  const graph = proto.graph!;
  return {
    nodes: graph.node.map((n) => [n.name, n.opType, [...n.input], [...n.output]]),
    parameters: graph.initializer.map((t) => [t.name, t.dims.map(Number)]),
    inputs: graph.input.map((v) => v.name),
    outputs: graph.output.map((v) => v.name),
    opset: proto.opsetImport.map((o) => [o.domain, Number(o.version)]),
  };
}

describe('race: a network trained without backprop as an ONNX model', () => {
  it('is what the trainer builds for its spec, and runs to the same probabilities', async () => {
    const data = twoBlobs(200, 6, 9, 3);
    const contender = directFeedbackAlignment({ hidden: [8, 5], act: 'tanh', maxSteps: 50 });
    const classifier = await contender.train(data, { seed: 1, budgetSeconds: 30 });
    try {
      const proto = classifier.model!();
      const built = buildModel(
        { kind: 'mlp', hidden: [8, 5], act: 'tanh' },
        { kind: 'features', features: 6 },
        2,
        1,
      );
      assert.deepEqual(structure(proto), structure(built.proto));
      const model = Model.fromProto(proto, 'dfa.onnx');
      try {
        const { output, cache } = await model.runWithCache(data.inputs);
        const logits = output.data as Float32Array;
        const expected = (await classifier.predictProba(data.inputs)).data as Float32Array;
        for (let r = 0; r < 200; r++) {
          const [a, b] = [logits[2 * r], logits[2 * r + 1]];
          const first = 1 / (1 + Math.exp(b - a)); // softmax over two logits
          assert.ok(
            Math.abs(first - expected[2 * r]) < 1e-5,
            `row ${r}: ${first} vs ${expected[2 * r]}`,
          );
        }
        assert.deepEqual([...cache.keys()].sort(), ['act1', 'act2', 'fc1', 'fc2', 'head']);
      } finally {
        await model.release();
      }
    } finally {
      await classifier.release();
    }
  });

  it("gives forward-forward's total goodness per label, whose softmax is its predictProba", async () => {
    const data = threeClasses(150, 5, 2);
    const contender = forwardForward({ hidden: [7, 4], act: 'relu', maxSteps: 40 });
    const classifier = await contender.train(data, { seed: 3, budgetSeconds: 30 });
    const model = Model.fromProto(classifier.model!(), 'ff.onnx');
    try {
      const { output, cache } = await model.runWithCache(data.inputs);
      assert.deepEqual(output.dims, [150, 3]);
      const expected = (await classifier.predictProba(data.inputs)).data as Float32Array;
      const found = softmaxRows(output.data as Float32Array, 3);
      const worst = Math.max(...found.map((p, i) => Math.abs(p - expected[i])));
      assert.ok(worst < 1e-5, `largest probability difference ${worst}`);
      // Not a constant: the labels' scores differ from row to row.
      assert.ok(new Set(found.map((p) => p.toFixed(3))).size > 100);
      // Each hidden unit under each embedded label: [rows, classes, width].
      assert.deepEqual(cache.get('act1').dims, [150, 3, 7]);
      assert.deepEqual(cache.get('act2').dims, [150, 3, 4]);
    } finally {
      await model.release();
      await classifier.release();
    }
  });
});

/** Three Gaussian classes around random centres (σ = 1), labels 0, 1, 2 in turn. */
function threeClasses(rows: number, features: number, seed: number) {
  const random = seededRandom(seed);
  const centres = Array.from({ length: 3 }, () =>
    Array.from({ length: features }, () => 2 * gaussian(random)),
  );
  const labels = Int32Array.from({ length: rows }, (_, r) => r % 3);
  const values = new Float32Array(rows * features);
  labels.forEach((label, r) => {
    for (let f = 0; f < features; f++)
      values[r * features + f] = centres[label][f] + gaussian(random);
  });
  return { inputs: tensor('float32', [rows, features], values), labels, classes: 3 };
}

function softmaxRows(scores: Float32Array, classes: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < scores.length; start += classes) {
    const row = Array.from(scores.subarray(start, start + classes));
    const largest = Math.max(...row);
    const sum = row.reduce((total, s) => total + Math.exp(s - largest), 0);
    out.push(...row.map((s) => Math.exp(s - largest) / sum));
  }
  return out;
}
