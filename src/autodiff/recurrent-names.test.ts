/**
 * Packed recurrent initializers unpacked into PyTorch's parameters, on graphs laid out as the
 * TorchScript exporter writes them (one node per layer in the module's scope, W/R/B as
 * `onnx::<Op>_N`). The corpus test checks LSTM and GRU against PyTorch autograd; here every
 * element of a packed tensor holds its own index, so each parameter's values say exactly which
 * direction, bias half and ONNX gate block they were taken from.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, int, string as str } from '../graph/builder.ts';
import { GraphIndex } from '../graph/graph.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { recurrentPackings, underRecurrentNames } from './recurrent-names.ts';

const H = 2;
const INPUT = 3;
const iota = (dims: number[]) =>
  tensor(
    'float32',
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, k) => k),
  );

/** Two layers of `op`, bidirectional, W/R/B exporter-named; the gradients are the packed tensors themselves. */
function exported(op: 'LSTM' | 'GRU' | 'RNN', gates: number) {
  const g = new GraphBuilder('exported', 17);
  let x = g.input('x', 'float32', [5, 'batch', INPUT]);
  const gradients = new Map<string, Tensor>();
  for (let layer = 0; layer < 2; layer++) {
    const packed = [
      iota([2, gates * H, layer === 0 ? INPUT : 2 * H]),
      iota([2, gates * H, H]),
      iota([2, 2 * gates * H]),
    ];
    const names = packed.map((value, k) => g.initializer(`onnx::${op}_${10 * layer + k}`, value));
    names.forEach((name, k) => gradients.set(name, packed[k]));
    const [y] = g.nodeN(
      op,
      [x, ...names],
      { hidden_size: int(H), direction: str('bidirectional') },
      `/rnn/${op}${layer ? `_${layer}` : ''}`,
      1,
    );
    x = g.node('Reshape', [
      g.node('Transpose', [y], { perm: { type: 'ints', value: [0, 2, 1, 3] } }),
      g.initializer(`shape${layer}`, tensor('int64', [3], [0, 0, -1])),
    ]);
  }
  g.output(x, 'float32');
  return underRecurrentNames(gradients, recurrentPackings(new GraphIndex(g.build())));
}

/** Rows of ONNX gate block `block` of direction `direction` in a packed [2, gates·H, columns] iota. */
function rowsOf(direction: number, block: number, gates: number, columns: number): number[] {
  const start = (direction * gates * H + block * H) * columns;
  return Array.from({ length: H * columns }, (_, k) => start + k);
}

describe('packed recurrent weights under PyTorch names', () => {
  const CASES = [
    { op: 'LSTM' as const, gates: 4, pytorchBlocks: [0, 2, 3, 1] }, // i, f, g, o from ONNX i, o, f, c
    { op: 'GRU' as const, gates: 3, pytorchBlocks: [1, 0, 2] }, // r, z, n from ONNX z, r, h
    { op: 'RNN' as const, gates: 1, pytorchBlocks: [0] },
  ];
  for (const { op, gates, pytorchBlocks } of CASES) {
    it(`${op}: weight_ih/hh and bias_ih/hh per layer and direction, gate blocks in PyTorch's order`, () => {
      const renamed = exported(op, gates);
      assert.deepEqual(
        [...renamed.keys()].filter((name) => name.startsWith('onnx::')),
        [],
        'no packed name left',
      );
      for (const layer of [0, 1]) {
        for (const direction of [0, 1]) {
          const suffix = `l${layer}${direction ? '_reverse' : ''}`;
          const inputColumns = layer === 0 ? INPUT : 2 * H;
          const weightIh = renamed.get(`rnn.weight_ih_${suffix}`)!;
          assert.deepEqual(weightIh.dims, [gates * H, inputColumns]);
          assert.deepEqual(
            Array.from(weightIh.data as Float32Array),
            pytorchBlocks.flatMap((block) => rowsOf(direction, block, gates, inputColumns)),
          );
          assert.deepEqual(
            Array.from(renamed.get(`rnn.weight_hh_${suffix}`)!.data as Float32Array),
            pytorchBlocks.flatMap((block) => rowsOf(direction, block, gates, H)),
          );
          // B [2, 2·gates·H]: per direction [Wb | Rb], each in ONNX gate blocks of H
          const bias = (half: number) =>
            pytorchBlocks.flatMap((block) =>
              Array.from(
                { length: H },
                (_, k) => direction * 2 * gates * H + half * gates * H + block * H + k,
              ),
            );
          assert.deepEqual(
            Array.from(renamed.get(`rnn.bias_ih_${suffix}`)!.data as Float32Array),
            bias(0),
          );
          assert.deepEqual(
            Array.from(renamed.get(`rnn.bias_hh_${suffix}`)!.data as Float32Array),
            bias(1),
          );
          assert.deepEqual(renamed.get(`rnn.bias_hh_${suffix}`)!.dims, [gates * H]);
        }
      }
    });
  }
});
