import assert from 'node:assert/strict';
import { readFileSync, symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ModelError } from '../errors.ts';
import { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { FIXTURE_NAMES, fixtureDir, assertClose, loadFixture } from '../../test/helpers.ts';
import { mlpProto, tempDir, withExternalWeight, writeModel } from '../../test/model-files.ts';
import { decodeModel, encodeModel } from './proto.ts';
import { readModelFile } from './model-file.ts';

describe('ONNX read/write', () => {
  for (const name of FIXTURE_NAMES) {
    it(`round-trips ${name}/model.onnx byte for byte`, () => {
      const bytes = readFileSync(`${fixtureDir(name)}/model.onnx`);
      assert.deepEqual(Buffer.from(encodeModel(decodeModel(bytes))), bytes);
    });
  }

  it('keeps fields newer than ONNX 1.10: node metadata_props (dynamo module paths), value_info metadata, model functions', () => {
    const proto = mlpProto();
    proto.graph.node[0].metadataProps = [
      { key: 'pkg.torch.onnx.name_scopes', value: "['', 'fc1', 'linear']" },
    ];
    proto.graph.node[0].docString = 'first layer';
    proto.metadataProps = [{ key: 'teardown.spec', value: '{"seed": 1}' }];
    const again = decodeModel(encodeModel(proto));
    assert.deepEqual(
      again.graph.node[0].metadataProps.map((e) => [e.key, e.value]),
      [['pkg.torch.onnx.name_scopes', "['', 'fc1', 'linear']"]],
    );
    assert.equal(again.graph.node[0].docString, 'first layer');
    assert.deepEqual(
      again.metadataProps.map((e) => [e.key, e.value]),
      [['teardown.spec', '{"seed": 1}']],
    );
    assert.equal(again.producerName, 'pytorch');
  });
});

describe('external data', () => {
  it('reads tensors from a file beside the model, honouring offset and length', async () => {
    const dir = tempDir();
    const path = writeModel(dir, 'model.onnx', withExternalWeight(mlpProto(), dir, 'weights.bin'));
    const fixture = loadFixture('mlp');
    const model = Model.load(path, { threads: 1 });
    const { outputs } = await runWithCache(model, { input: fixture.input }, []);
    assertClose(outputs.output, fixture.output);
    await model.release();
  });

  it('refuses a location that leaves the model folder', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'models'));
    const path = writeModel(
      join(dir, 'models'),
      'model.onnx',
      withExternalWeight(mlpProto(), dir, '../weights.bin', join(dir, 'weights.bin')),
    );
    assert.throws(
      () => readModelFile(path),
      (error: Error) =>
        error instanceof ModelError &&
        /outside the model's folder/.test(error.message) &&
        /fc1\.weight/.test(error.message),
    );
  });

  it('refuses an absolute location and a link that points outside', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'models'));
    const absolute = writeModel(
      join(dir, 'models'),
      'a.onnx',
      withExternalWeight(mlpProto(), dir, join(dir, 'weights.bin'), join(dir, 'weights.bin')),
    );
    assert.throws(() => readModelFile(absolute), /outside the model's folder/);
    symlinkSync(join(dir, 'weights.bin'), join(dir, 'models', 'link.bin'));
    const proto = withExternalWeight(mlpProto(), dir, 'link.bin', join(dir, 'weights.bin'));
    const linked = writeModel(join(dir, 'models'), 'b.onnx', proto);
    assert.throws(() => readModelFile(linked), /a link that leads outside/);
  });

  it('names a missing external data file', () => {
    const dir = tempDir();
    const proto = withExternalWeight(mlpProto(), dir, 'weights.bin', join(dir, 'elsewhere.bin'));
    assert.throws(
      () => readModelFile(writeModel(dir, 'model.onnx', proto)),
      /needs the external data file 'weights.bin'/,
    );
  });
});

describe('validation', () => {
  it('names the node, its op and the undefined value it reads', () => {
    const proto = mlpProto();
    proto.graph.node[1].input = ['/nowhere'];
    assert.throws(
      () => Model.fromProto(proto, 'broken.onnx'),
      /node '\/act1\/Relu' \(Relu\) in 'broken.onnx' reads value '\/nowhere'/,
    );
  });

  it('names a domain the model does not import', () => {
    const proto = mlpProto();
    proto.graph.node[1].domain = 'com.example';
    assert.throws(
      () => Model.fromProto(proto, 'custom.onnx'),
      /uses domain 'com.example', which the model does not import/,
    );
  });
});
