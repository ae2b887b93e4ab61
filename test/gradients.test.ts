/**
 * Gradients agree with PyTorch autograd: the mean cross-entropy's gradients with respect to the
 * input (float inputs) and every parameter of the reference fixtures — including gpt's merged
 * LayerNorm parameters, which must come out untied — within 1e-4 relative, and the loss itself.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { computeGradients, parameterNames } from '../src/autodiff/gradients.ts';
import { readNpy } from '../src/data/npy.ts';
import { assertClose, fixtureDir, loadFixture } from './helpers.ts';

for (const name of ['mlp', 'cnn', 'gpt'] as const) {
  describe(`gradients of fixture ${name}`, () => {
    it('match PyTorch for the input and every parameter, and the loss matches', async () => {
      const fixture = loadFixture(name);
      const dir = fixtureDir(name);
      const manifest = JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8'));
      const hasInputGrad = existsSync(`${dir}/grad/input.npy`);
      const { loss, gradients } = await computeGradients(fixture.model, { input: fixture.input }, readNpy(`${dir}/target.npy`), {
        loss: { kind: 'cross-entropy' }, wrt: hasInputGrad ? ['input', 'params'] : ['params'],
      });
      const expectedLoss = JSON.parse(readFileSync(`${dir}/loss.json`, 'utf8')).loss;
      assert.ok(Math.abs(loss - expectedLoss) <= 1e-5 * Math.abs(expectedLoss), `loss ${loss} vs ${expectedLoss}`);
      if (hasInputGrad) assertClose(gradients.get('input')!, readNpy(`${dir}/grad/input.npy`), 1e-4, 'input gradient');
      for (const parameter of Object.keys(manifest.param_grads)) {
        assert.ok(gradients.has(parameter), `no gradient for parameter ${parameter}`);
        assertClose(gradients.get(parameter)!, readNpy(`${dir}/grad/param/${parameter}.npy`), 1e-4, `d loss / d ${parameter}`);
      }
      await fixture.model.release();
    });
  });
}

describe('merged parameters (gpt)', () => {
  it('lists every PyTorch parameter name, merged copies included', () => {
    const fixture = loadFixture('gpt');
    const names = new Set(parameterNames(fixture.model));
    const manifest = JSON.parse(readFileSync(`${fixtureDir('gpt')}/manifest.json`, 'utf8'));
    assert.deepEqual(Object.keys(manifest.params).filter((name) => !names.has(name)), []);
  });
});

describe('gradients of fixture cnn-folded', () => {
  it('match PyTorch for the input and the loss; its stored parameter gradients are accumulated over two exports', async () => {
    const fixture = loadFixture('cnn-folded');
    const dir = fixtureDir('cnn-folded');
    const { loss, gradients } = await computeGradients(fixture.model, { input: fixture.input }, readNpy(`${dir}/target.npy`), { loss: { kind: 'cross-entropy' }, wrt: ['input', 'params'] });
    assert.ok(Math.abs(loss - JSON.parse(readFileSync(`${dir}/loss.json`, 'utf8')).loss) < 1e-5);
    assertClose(gradients.get('input')!, readNpy(`${dir}/grad/input.npy`), 1e-4, 'input gradient');
    // The fixture script exports cnn then cnn-folded from one module without zeroing .grad, so
    // cnn-folded's grad/param holds cnn's gradient plus its own: check exactly that.
    for (const parameter of ['conv1.weight', 'conv1.bias', 'fc.weight', 'fc.bias', 'head.weight', 'head.bias']) {
      const ours = gradients.get(parameter)!;
      const cnn = readNpy(`${fixtureDir('cnn')}/grad/param/${parameter}.npy`);
      const accumulated = { ...ours, data: (ours.data as Float32Array).map((value, i) => value + Number(cnn.data[i])) };
      assertClose(accumulated, readNpy(`${dir}/grad/param/${parameter}.npy`), 1e-4, parameter);
    }
    await fixture.model.release();
  });
});
