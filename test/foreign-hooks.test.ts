/**
 * Module hooks of a constant-folded torchvision ResNet-18 against PyTorch (test/corpus/resnet18,
 * forward hooks recorded per module call by make.py): every call of a module called twice is its
 * own hook (`layer1.0.relu`, `layer1.0.relu_1`) mapped to the module and call PyTorch ran, and
 * every folded BatchNorm gives exactly one note, on its Conv's own hook, naming the BatchNorm
 * whose output (PyTorch's) the Conv's hook carries.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../src/data/npy.ts';
import { HookError } from '../src/errors.ts';
import { Model } from '../src/runtime/model.ts';
import { runWithCache } from '../src/runtime/run.ts';
import { assertClose } from './helpers.ts';

const dir = fileURLToPath(new URL('./corpus/resnet18', import.meta.url));
const manifest = JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8')) as {
  hooks: { hook: string; module: string; call: number; type: string; file: string }[];
  inputs: { name: string; file: string }[];
};
const batchNorms = manifest.hooks.filter((hook) => hook.type === 'BatchNorm2d');

for (const opset of ['14', '17']) {
  describe(`resnet18, opset ${opset} (constant folded)`, () => {
    const model = Model.load(`${dir}/opset${opset}.onnx`, { threads: 1 });

    it('one hook per module call, mapped to the module and call PyTorch recorded', () => {
      const calls = manifest.hooks.filter((hook) => hook.type !== 'BatchNorm2d');
      for (const recorded of calls) {
        const hook = model.hooks.resolve(recorded.hook);
        assert.deepEqual(
          hook.call,
          { module: recorded.module, index: recorded.call },
          recorded.hook,
        );
      }
      assert.ok(
        calls.some((hook) => hook.call === 1),
        'the corpus has repeated calls (BasicBlock.relu)',
      );
    });

    it('each module call reads what PyTorch recorded for it (relu and relu_1 differ)', async () => {
      const input = readNpy(`${dir}/${manifest.inputs[0].file}`);
      const names = ['layer1.0.relu', 'layer1.0.relu_1', 'layer4.1.relu', 'layer4.1.relu_1'];
      const { cache } = await runWithCache(model, { [manifest.inputs[0].name]: input }, names);
      for (const name of names)
        assertClose(cache.get(name)!, readNpy(`${dir}/act/${name}.npy`), 1e-5, name);
    });

    it('one note per folded BatchNorm, on its Conv, naming the BatchNorm whose output the Conv carries', async () => {
      const folded = model.hooks.foldings;
      assert.equal(
        folded.length,
        batchNorms.length,
        `foldings ${folded.map((f) => f.conv).join(', ')}`,
      );
      assert.equal(model.hooks.foldingNotes.length, batchNorms.length);
      assert.deepEqual(
        folded.map((f) => f.batchNorm).sort(),
        batchNorms.map((hook) => hook.module).sort(),
      );
      const noted = model.hooks.hooks.filter((hook) => hook.note);
      assert.deepEqual(noted.map((hook) => hook.name).sort(), folded.map((f) => f.conv).sort());
      for (const hook of noted) assert.equal(hook.op, 'Conv', hook.name);
      for (const container of ['layer1', 'layer1.0', 'layer2.0.downsample'])
        assert.equal(model.hooks.get(container)?.note, undefined, container);
      for (const note of model.hooks.foldingNotes) assert.doesNotMatch(note, /'layer\d\.weight'/);
      // The oracle: the Conv's hook equals PyTorch's output of the BatchNorm the note names.
      const input = readNpy(`${dir}/${manifest.inputs[0].file}`);
      const { cache } = await runWithCache(
        model,
        { [manifest.inputs[0].name]: input },
        folded.map((f) => f.conv),
      );
      for (const folding of folded)
        assertClose(
          cache.get(folding.conv)!,
          readNpy(`${dir}/act/${folding.batchNorm}.npy`),
          1e-5,
          `${folding.conv} vs ${folding.batchNorm}`,
        );
    });

    it("a folded BatchNorm's name explains itself and points at its Conv", () => {
      assert.throws(
        () => model.hooks.resolve('layer2.0.downsample.1'),
        (error: Error) =>
          error instanceof HookError &&
          /folded a BatchNorm into 'layer2\.0\.downsample\.0'/.test(error.message) &&
          /Read 'layer2\.0\.downsample\.0' instead/.test(error.message),
      );
    });

    it('releases', () => model.release());
  });
}
