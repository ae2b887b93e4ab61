/** Builders of deliberately broken or unusual model files for tests, all derived from the mlp fixture. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel, type ModelProto } from '../src/onnx/proto.ts';
import { fixtureDir } from './helpers.ts';

export const tempDir = (prefix = 'teardown-test-') => mkdtempSync(join(tmpdir(), prefix));

export function mlpProto(): ModelProto {
  return decodeModel(readFileSync(`${fixtureDir('mlp')}/model.onnx`));
}

export function writeModel(dir: string, name: string, proto: ModelProto): string {
  const path = join(dir, name);
  writeFileSync(path, encodeModel(proto));
  return path;
}

/** The mlp with `fc1.weight` moved to an external data file at `location` (relative to the model). */
export function withExternalWeight(
  proto: ModelProto,
  dir: string,
  location: string,
  dataFile = join(dir, location),
): ModelProto {
  const tensor = proto.graph.initializer.find((t) => t.name === 'fc1.weight')!;
  writeFileSync(dataFile, Buffer.concat([Buffer.alloc(16), tensor.rawData!])); // 16 bytes of padding to exercise the offset
  tensor.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: '16' },
    { key: 'length', value: String(tensor.rawData!.length) },
  ];
  tensor.dataLocation = 1;
  tensor.rawData = new Uint8Array(0);
  return proto;
}
