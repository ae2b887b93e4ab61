import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadFixture } from '../../test/helpers.ts';
import { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { relativeError } from '../tensor.ts';
import { fuseMatMulBias } from './fuse-matmul-bias.ts';

test('linear layers of the PyTorch-exported gpt fixture become Gemms with the same output; kept values stay', async () => {
  const fixture = loadFixture('gpt');
  const count = (model: Model, op: string) =>
    model.proto.graph.node.filter((node) => node.opType === op).length;
  const fused = Model.fromProto(fuseMatMulBias(fixture.model.proto, new Set()), 'fused gpt', {
    threads: 1,
  });
  assert.equal(
    count(fused, 'Gemm'),
    9,
    'qkv, proj and the two MLP layers of both blocks, and the unembedding',
  );
  assert.equal(
    count(fused, 'MatMul'),
    count(fixture.model, 'MatMul') - 9,
    'attention products stay',
  );
  const [before, after] = [
    await runWithCache(fixture.model, { input: fixture.input }, []),
    await runWithCache(fused, { input: fixture.input }, []),
  ];
  assert.ok(relativeError(after.outputs.output, before.outputs.output) < 1e-6);

  const qkv = fixture.model.graph.nodes.find(
    (node) => node.name === '/blocks/blocks.0/attn/qkv/MatMul',
  )!.output[0];
  const keeping = fuseMatMulBias(fixture.model.proto, new Set([qkv]));
  assert.ok(
    keeping.graph.node.some((node) => node.output.includes(qkv)),
    'a kept MatMul output is still computed',
  );
  assert.equal(keeping.graph.node.filter((node) => node.opType === 'Gemm').length, 8);
  await fused.release();
  await fixture.model.release();
});
