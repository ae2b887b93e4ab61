import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { loadFixture, assertClose } from '../../test/helpers.ts';
import { decodeModel, encodeModel } from '../onnx/proto.ts';
import { moduleCalls, scopesFromDynamo, scopesFromNodeName } from './scopes.ts';

describe('module scopes', () => {
  const cases: [string, string[]][] = [
    ['/blocks/blocks.0/mlp/mlp.1/Mul_1', ['blocks', 'blocks.0', 'blocks.0.mlp', 'blocks.0.mlp.1']],
    [
      '/blocks/blocks.0/attn/qkv/MatMul',
      ['blocks', 'blocks.0', 'blocks.0.attn', 'blocks.0.attn.qkv'],
    ],
    ['/layers.3/fc/Gemm', ['layers.3', 'layers.3.fc']],
    ['/fc1/Gemm', ['fc1']],
    ['/Add', []],
    ['Identity_0', []],
    ['', []],
  ];
  for (const [name, scopes] of cases)
    it(`TorchScript name '${name}'`, () => assert.deepEqual(scopesFromNodeName(name), scopes));

  it('dynamo name_scopes metadata: root and the node itself dropped', () => {
    assert.deepEqual(
      scopesFromDynamo("['', 'blocks.0', 'blocks.0.mlp', 'blocks.0.mlp.1', 'gelu']"),
      ['blocks.0', 'blocks.0.mlp', 'blocks.0.mlp.1'],
    );
    assert.deepEqual(scopesFromDynamo('["", "fc1", "addmm"]'), ['fc1']);
    assert.deepEqual(scopesFromDynamo("['', 'linear']"), []);
  });

  it('repeated module calls: relu_1 is the second call of relu when relu is a scope, else a module of its own', () => {
    const calls = moduleCalls([
      'layer1.0',
      'layer1.0.relu',
      'layer1.0.relu_1',
      'layer1.0.relu_2',
      'fc_1',
      'block.0_1',
    ]);
    assert.deepEqual(calls.get('layer1.0.relu'), { module: 'layer1.0.relu', index: 0 });
    assert.deepEqual(calls.get('layer1.0.relu_1'), { module: 'layer1.0.relu', index: 1 });
    assert.deepEqual(calls.get('layer1.0.relu_2'), { module: 'layer1.0.relu', index: 2 });
    assert.deepEqual(calls.get('fc_1'), { module: 'fc_1', index: 0 });
    assert.deepEqual(calls.get('block.0_1'), { module: 'block.0_1', index: 0 });
  });

  it('hooks from dynamo metadata find the same values as from TorchScript names', async () => {
    const fixture = loadFixture('gpt');
    const proto = decodeModel(encodeModel(fixture.model.proto));
    // Re-express every node's scope the dynamo way and strip the scoped names.
    for (const [index, node] of proto.graph.node.entries()) {
      const scopes = scopesFromNodeName(node.name);
      node.metadataProps = [
        {
          key: 'pkg.torch.onnx.name_scopes',
          value: `[${['', ...scopes, `node_${index}`].map((s) => `'${s}'`).join(', ')}]`,
        },
      ];
      node.name = `node_${index}`;
    }
    const dynamo = Model.fromProto(proto, 'gpt-dynamo.onnx', { threads: 1 });
    const { cache } = await runWithCache(dynamo, { input: fixture.input }, fixture.activations);
    for (const module of fixture.activations)
      assertClose(cache.get(module)!, fixture.activation(module), 1e-5, module);
    await dynamo.release();
    await fixture.model.release();
  });
});
