/**
 * The LSTM builder against nn.LSTM's equations written out in JavaScript from the model's own
 * PyTorch-layout parameters (gate order i, f, g, o; the ONNX packing is not used), and one
 * training step through the recurrent gradient rules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { tensorFromProto } from '../onnx/tensor-proto.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { computeGradients } from '../autodiff/gradients.ts';
import { buildModel, type InputShape } from './builders.ts';
import { parseModelSpec } from './model-spec.ts';

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** nn.LSTM over `sequence` [T][features] for one example: per step the directions' h concatenated, and each direction's last h. */
function referenceLstm(
  parameter: (name: string) => Float32Array,
  sequence: number[][],
  layers: number,
  directions: number,
  H: number,
) {
  let inputs = sequence;
  let finals: number[][] = [];
  for (let layer = 0; layer < layers; layer++) {
    const outputs = inputs.map(() => [] as number[]);
    finals = [];
    for (let d = 0; d < directions; d++) {
      const suffix = `l${layer}${d === 1 ? '_reverse' : ''}`;
      const [wih, whh, bih, bhh] = ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].map((kind) =>
        parameter(`lstm.${kind}_${suffix}`),
      );
      const width = inputs[0].length;
      let h = new Array<number>(H).fill(0);
      let c = new Array<number>(H).fill(0);
      const order = inputs.map((_, t) => (d === 1 ? inputs.length - 1 - t : t));
      for (const t of order) {
        const gate = (row: number) =>
          bih[row] +
          bhh[row] +
          inputs[t].reduce((s, v, k) => s + wih[row * width + k] * v, 0) +
          h.reduce((s, v, k) => s + whh[row * H + k] * v, 0);
        const next = Array.from({ length: H }, (_, j) => {
          const [i, f, g, o] = [
            sigmoid(gate(j)),
            sigmoid(gate(H + j)),
            Math.tanh(gate(2 * H + j)),
            sigmoid(gate(3 * H + j)),
          ];
          const cell = f * c[j] + i * g;
          return { cell, hidden: o * Math.tanh(cell) };
        });
        c = next.map((n) => n.cell);
        h = next.map((n) => n.hidden);
        outputs[t].push(...h);
      }
      finals.push(h);
    }
    inputs = outputs;
  }
  return { outputs: inputs, finals: finals.flat() };
}

async function check(specText: string, input: InputShape, feed: Tensor) {
  const spec = parseModelSpec(specText);
  if (spec.kind !== 'lstm') throw new Error('an lstm spec');
  const built = buildModel(spec, input, 3, 0);
  const model = Model.fromProto(built.proto, specText, { threads: 1 });
  try {
    const logits = (await runWithCache(model, { input: feed }, [])).outputs.logits;
    const initializers = new Map(
      built.proto.graph.initializer.map((t) => [t.name, tensorFromProto(t).data as Float32Array]),
    );
    const parameter = (name: string) => initializers.get(name)!;
    const directions = spec.bidirectional ? 2 : 1;
    const [head, headBias] = [parameter('head.weight'), parameter('head.bias')];
    const expected: number[] = [];
    for (let b = 0; b < feed.dims[0]; b++) {
      const sequence =
        input.kind === 'tokens'
          ? Array.from({ length: input.length }, (_, t) =>
              Array.from(
                parameter('embed.weight').subarray(
                  Number(feed.data[b * input.length + t]) * spec.embed,
                  (Number(feed.data[b * input.length + t]) + 1) * spec.embed,
                ),
              ),
            )
          : imageRows(feed, b, input as Extract<InputShape, { kind: 'image' }>);
      const { outputs, finals } = referenceLstm(
        parameter,
        sequence,
        spec.layers,
        directions,
        spec.hidden,
      );
      const scored = input.kind === 'tokens' ? outputs : [finals];
      for (const features of scored)
        for (let k = 0; k < 3; k++)
          expected.push(
            headBias[k] + features.reduce((s, v, j) => s + head[k * features.length + j] * v, 0),
          );
    }
    const worst = Math.max(
      ...Array.from(logits.data as Float32Array, (value, k) => Math.abs(value - expected[k])),
    );
    assert.ok(worst < 1e-5, `logits differ from nn.LSTM's equations by ${worst}`);
    // One gradient through the packing and the recurrent rules reaches every PyTorch parameter.
    const target = tensor(
      'int64',
      logits.dims.slice(0, -1),
      Array.from({ length: logits.data.length / 3 }, (_, k) => k % 3),
    );
    const { gradients } = await computeGradients(model, { input: feed }, target, {
      loss: { kind: 'cross-entropy' },
      wrt: ['params'],
    });
    for (const [name, gradient] of gradients)
      if (name.startsWith('lstm.'))
        assert.ok(
          Array.from(gradient.data as Float32Array).some((v) => v !== 0),
          `${name} gets a gradient`,
        );
  } finally {
    await model.release();
  }
}

/** Image rows as steps: row y of every channel, [C·W] features. */
function imageRows(
  feed: Tensor,
  b: number,
  input: Extract<InputShape, { kind: 'image' }>,
): number[][] {
  const { channels, height, width } = input;
  return Array.from({ length: height }, (_, y) =>
    Array.from({ length: channels * width }, (_, k) => {
      const [channel, x] = [Math.floor(k / width), k % width];
      return Number(feed.data[((b * channels + channel) * height + y) * width + x]);
    }),
  );
}

describe('lstm model builder', () => {
  it("tokens, 2 bidirectional layers: logits on every position equal nn.LSTM's", () =>
    check(
      'lstm:hidden=3,layers=2,embed=4,bidirectional=true',
      { kind: 'tokens', length: 5, vocab: 7 },
      tensor('int64', [2, 5], [0, 3, 6, 1, 2, 5, 5, 4, 0, 1]),
    ));
  it("images read row by row, 1 layer: logits from the last state equal nn.LSTM's", () =>
    check(
      'lstm:hidden=4',
      { kind: 'image', channels: 2, height: 3, width: 2 },
      tensor(
        'float32',
        [2, 2, 3, 2],
        Array.from({ length: 24 }, (_, k) => Math.sin(k)),
      ),
    ));
});
