import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeFileName, unescapeFileName } from './files.ts';

describe('file names from hook names', () => {
  const names = [
    'blocks.0.mlp.1',
    '/blocks/blocks.0/Add_1_output_0',
    'onnx::Conv_28',
    '.hidden',
    'a b%c',
    'ünïcode/π',
    '',
  ];
  for (const name of names) {
    it(`escapes '${name}' reversibly into a safe file name`, () => {
      const escaped = escapeFileName(name);
      assert.match(escaped, /^[A-Za-z0-9_%-][A-Za-z0-9_.%-]*$/);
      assert.equal(unescapeFileName(escaped), name);
    });
  }
  it('leaves safe names readable', () =>
    assert.equal(escapeFileName('blocks.0.mlp.1'), 'blocks.0.mlp.1'));
});
