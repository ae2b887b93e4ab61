/** Shared by the tests: the PyTorch reference fixtures and a few assertions. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { relativeError, type Tensor } from '../src/tensor.ts';

export const FIXTURE_NAMES = ['mlp', 'cnn', 'cnn-folded', 'gpt'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

export const fixtureDir = (name: FixtureName) =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

export interface Fixture {
  dir: string;
  modelPath: string;
  model: Model;
  input: Tensor;
  output: Tensor;
  /** Module paths of every activation PyTorch recorded. */
  activations: string[];
  activation(module: string): Tensor;
}

export function loadFixture(name: FixtureName): Fixture {
  const dir = fixtureDir(name);
  const manifest = JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8'));
  return {
    dir,
    modelPath: `${dir}/model.onnx`,
    model: Model.load(`${dir}/model.onnx`, { threads: 1 }),
    input: readNpy(`${dir}/input.npy`),
    output: readNpy(`${dir}/output.npy`),
    activations: Object.keys(manifest.activations),
    activation: (module) => readNpy(`${dir}/act/${module}.npy`),
  };
}

/** Max abs error over max abs expected value at most `tolerance` (the fixtures' 1e-5 relative). */
export function assertClose(
  actual: Tensor,
  expected: Tensor,
  tolerance = 1e-5,
  what = 'value',
): void {
  assert.deepEqual(actual.dims, expected.dims, `${what}: shape`);
  const error = relativeError(actual, expected);
  assert.ok(error <= tolerance, `${what}: relative error ${error.toExponential(2)} > ${tolerance}`);
}
