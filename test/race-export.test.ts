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
import { twoBlobs } from './race-oracles.ts';

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
});
