import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decodeModel, encodeModel } from './proto.ts';

describe('encodeModel', () => {
  // Initializers are spliced in after the graph's other fields, raw data after each tensor's: the
  // bytes differ from protobufjs' field order, the message must not.
  for (const file of ['test/fixtures/gpt/model.onnx', 'test/fixtures/cnn-folded/model.onnx', 'test/corpus/lstm/opset14.onnx', 'test/corpus/resnet18/opset17.onnx']) {
    it(`decodes to the same message: ${file}`, () => {
      const original = decodeModel(readFileSync(new URL(`../../${file}`, import.meta.url)));
      const again = decodeModel(encodeModel(original));
      assert.equal(JSON.stringify(again), JSON.stringify(original));
    });
  }
});
