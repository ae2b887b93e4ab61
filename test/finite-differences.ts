/**
 * Central finite differences of a one-output model's MSE loss, element by element, against the
 * gradients teardown builds: the oracle of the gradient-rule tests. float64 models get a step of
 * 1e-6 and a relative tolerance of 1e-6; float32 ones (ops onnxruntime's CPU build runs in float32
 * only) 1e-2 and 3e-2.
 */
import assert from 'node:assert/strict';
import { computeGradients } from '../src/autodiff/gradients.ts';
import type { Model } from '../src/runtime/model.ts';
import { runWithCache } from '../src/runtime/run.ts';
import { seededRandom } from '../src/random.ts';
import { tensor, type Feeds, type Tensor } from '../src/tensor.ts';

/** L = mean((Y − T)²), computed in JavaScript from the forward output. */
function mse(output: Tensor, target: Tensor): number {
  let sum = 0;
  for (let i = 0; i < output.data.length; i++)
    sum += (Number(output.data[i]) - Number(target.data[i])) ** 2;
  return sum / output.data.length;
}

/** Asserts d mean((Y − T)²) / d feed, for every float feed, equals central differences (T fixed, random). */
export async function checkAgainstFiniteDifferences(
  label: string,
  model: Model,
  feeds: Feeds,
): Promise<void> {
  const dtype = Object.values(feeds)[0].dtype;
  const output = (await runWithCache(model, feeds, [])).outputs[model.outputNames[0]];
  const random = seededRandom(11);
  const target = tensor(
    output.dtype,
    output.dims,
    Array.from(output.data as Float64Array, () => 2 * random() - 1),
  );
  const { gradients } = await computeGradients(model, feeds, target, {
    loss: { kind: 'mse' },
    wrt: ['input'],
  });
  const step = dtype === 'float64' ? 1e-6 : 1e-2;
  const tolerance = dtype === 'float64' ? 1e-6 : 3e-2;
  for (const [name, value] of Object.entries(feeds)) {
    const analytic = gradients.get(name)!;
    let worst = 0;
    let scale = 1e-12;
    for (let k = 0; k < value.data.length; k++) {
      const at = async (delta: number) => {
        const data = (value.data as Float64Array).slice();
        data[k] += delta;
        return mse(
          (await runWithCache(model, { ...feeds, [name]: { ...value, data } }, [])).outputs[
            model.outputNames[0]
          ],
          target,
        );
      };
      const numeric = ((await at(step)) - (await at(-step))) / (2 * step);
      worst = Math.max(worst, Math.abs(numeric - Number(analytic.data[k])));
      scale = Math.max(scale, Math.abs(numeric));
    }
    assert.ok(
      worst / scale <= tolerance,
      `${label}: d/d${name} differs from finite differences by ${(worst / scale).toExponential(2)} (relative), tolerance ${tolerance}`,
    );
  }
}
