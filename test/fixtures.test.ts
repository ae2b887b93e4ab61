/** Hooks agree with PyTorch: every module activation of the four reference fixtures, and the outputs. */
import assert from 'node:assert/strict';
import { describe, it, after } from 'node:test';
import { runWithCache } from '../src/runtime/run.ts';
import { HookError } from '../src/errors.ts';
import { FIXTURE_NAMES, assertClose, loadFixture } from './helpers.ts';

for (const name of FIXTURE_NAMES) {
  describe(`fixture ${name}`, () => {
    const fixture = loadFixture(name);
    after(() => fixture.model.release());
    // In cnn-folded the export folded bn2 into conv2: conv2's hook carries bn2's output.
    const folded = name === 'cnn-folded';
    const modules = fixture.activations.filter((module) => !(folded && module === 'bn2'));

    it('returns every module activation in one run, within 1e-5 of PyTorch', async () => {
      const { outputs, cache } = await runWithCache(
        fixture.model,
        { input: fixture.input },
        modules,
      );
      assertClose(outputs.output, fixture.output, 1e-5, 'model output');
      for (const module of modules) {
        const expected = fixture.activation(folded && module === 'conv2' ? 'bn2' : module);
        assertClose(cache.get(module)!, expected, 1e-5, `hook ${module}`);
      }
    });

    it('lists every module as a module hook with its op and dtype', () => {
      for (const module of modules) {
        const hook = fixture.model.hooks.resolve(module);
        assert.equal(hook.kind, 'module');
        assert.equal(hook.dtype, 'float32');
      }
    });
  });
}

describe('folded BatchNorm (cnn-folded)', () => {
  const fixture = loadFixture('cnn-folded');
  after(() => fixture.model.release());

  it("says conv2's hook carries the BatchNorm output", () => {
    assert.match(
      fixture.model.hooks.resolve('conv2').note ?? '',
      /BatchNorm folded into this Conv/,
    );
    assert.equal(loadFixture('cnn').model.hooks.resolve('conv2').note, undefined);
  });

  it('reports bn2 absent with the reason, never mapped to another value', () => {
    assert.throws(
      () => fixture.model.hooks.resolve('bn2'),
      (error: Error) =>
        error instanceof HookError &&
        /folded a BatchNorm into 'conv2'/.test(error.message) &&
        /onnx::Conv_/.test(error.message),
    );
  });

  it('conv2 differs from the raw PyTorch convolution, which the folded graph no longer has', async () => {
    const { cache } = await runWithCache(fixture.model, { input: fixture.input }, ['conv2']);
    assert.throws(() => assertClose(cache.get('conv2')!, fixture.activation('conv2')));
  });
});
