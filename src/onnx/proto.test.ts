import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decodeModel, encodeModel } from './proto.ts';

describe('encodeModel', () => {
  // Initializers are spliced in after the graph's other fields, raw data after each tensor's: the
  // bytes differ from protobufjs' field order, the message must not.
  for (const file of [
    'test/fixtures/gpt/model.onnx',
    'test/fixtures/cnn-folded/model.onnx',
    'test/corpus/lstm/opset14.onnx',
    'test/corpus/resnet18/opset17.onnx',
  ]) {
    it(`decodes to the same message: ${file}`, () => {
      const original = decodeModel(readFileSync(new URL(`../../${file}`, import.meta.url)));
      const again = decodeModel(encodeModel(original));
      assert.equal(JSON.stringify(again), JSON.stringify(original));
    });
  }
});

describe('encodeModel with external regions', () => {
  it('writes the chosen initializers as external data (location, offset, length, no raw data) and the rest unchanged', () => {
    const original = decodeModel(
      readFileSync(new URL('../../test/fixtures/gpt/model.onnx', import.meta.url)),
    );
    const chosen = original.graph.initializer.filter(
      (tensor) => (tensor.rawData?.length ?? 0) >= 4096,
    );
    assert.ok(chosen.length > 0 && chosen.length < original.graph.initializer.length);
    const again = decodeModel(
      encodeModel(original, (tensor) =>
        chosen.includes(tensor)
          ? {
              location: 'weights.bin',
              offset: 4096 * chosen.indexOf(tensor),
              length: tensor.rawData!.length,
            }
          : undefined,
      ),
    );
    for (const [k, tensor] of again.graph.initializer.entries()) {
      const before = original.graph.initializer[k];
      const c = chosen.indexOf(before);
      if (c < 0) {
        assert.equal(JSON.stringify(tensor), JSON.stringify(before));
        continue;
      }
      assert.equal(tensor.dataLocation, 1);
      assert.equal(tensor.rawData?.length ?? 0, 0);
      assert.deepEqual(
        tensor.externalData.map((entry) => [entry.key, entry.value]),
        [
          ['location', 'weights.bin'],
          ['offset', String(4096 * c)],
          ['length', String(before.rawData!.length)],
        ],
      );
      assert.equal(
        JSON.stringify({
          ...tensor,
          externalData: [],
          dataLocation: undefined,
          rawData: undefined,
        }),
        JSON.stringify({
          ...before,
          externalData: [],
          dataLocation: undefined,
          rawData: undefined,
        }),
      );
    }
  });
});
