/**
 * Counterfactual and perturbation transforms: what the data would look like if one attribute
 * changed and nothing else. Images are [N, C, H, W] in [0, 1]; tables are [N, features].
 *
 *   channel-swap  reverse the channel order (for two channels: swap them; RGB → BGR)
 *   grayscale     every channel replaced by the mean over channels
 *   noise         add N(0, σ²) per pixel (σ = 0.1 by default), clipped to [0, 1]
 *   occlude       a grey square (a quarter of the image's side) at a seeded place per image
 *   shuffle       permute the column across rows (seeded): keeps its distribution, breaks its link to the rest
 *   set-to-mean   the column's mean in every row
 *   flip          1 − x for a binary (0/1) column
 */
import { InputError } from '../errors.ts';
import { hashIndex, seededRandom } from '../random.ts';
import { permutation } from '../data/tasks.ts';
import { tensor, type Tensor } from '../tensor.ts';

export const IMAGE_TRANSFORMS = ['channel-swap', 'grayscale', 'noise', 'occlude'] as const;
export const TABLE_TRANSFORMS = ['shuffle', 'set-to-mean', 'flip'] as const;
export type TransformName = (typeof IMAGE_TRANSFORMS)[number] | (typeof TABLE_TRANSFORMS)[number];

/** What a dataset's examples are, as the transforms see them. */
export type DataLayout = { kind: 'image'; channels: number; height: number; width: number } | { kind: 'table'; featureNames: string[] } | { kind: 'other'; dims: number[] };

export function layoutOf(inputs: Tensor, featureNames?: string[]): DataLayout {
  const dims = inputs.dims;
  if (dims.length === 4 && inputs.dtype === 'float32') return { kind: 'image', channels: dims[1], height: dims[2], width: dims[3] };
  if (dims.length === 2 && inputs.dtype === 'float32') return { kind: 'table', featureNames: featureNames ?? Array.from({ length: dims[1] }, (_, i) => `feature ${i}`) };
  return { kind: 'other', dims };
}

export function checkTransform(name: string, layout: DataLayout, column?: string): TransformName {
  const all: readonly string[] = [...IMAGE_TRANSFORMS, ...TABLE_TRANSFORMS];
  if (!all.includes(name)) throw new InputError(`Unknown transform '${name}': use one of ${IMAGE_TRANSFORMS.join(', ')} (images) or ${TABLE_TRANSFORMS.join(', ')} (table columns).`);
  const forImages = (IMAGE_TRANSFORMS as readonly string[]).includes(name);
  const shape = layout.kind === 'other' ? `[${layout.dims.join(', ')}]` : layout.kind === 'image' ? `images [N, ${layout.channels}, ${layout.height}, ${layout.width}]` : `a table of ${layout.featureNames.length} features`;
  if (forImages && layout.kind !== 'image') throw new InputError(`Transform '${name}' works on images [N, C, H, W]; the data is ${shape}: use ${TABLE_TRANSFORMS.join(', ')} on a table column.`);
  if (!forImages && layout.kind !== 'table') throw new InputError(`Transform '${name}' works on a table column; the data is ${shape}: use ${IMAGE_TRANSFORMS.join(', ')} on images.`);
  if ((name === 'channel-swap' || name === 'grayscale') && layout.kind === 'image' && layout.channels < 2) throw new InputError(`Transform '${name}' needs images with at least 2 channels; the data has ${layout.channels}.`);
  if (!forImages && layout.kind === 'table' && (column === undefined || !layout.featureNames.includes(column))) {
    throw new InputError(`Transform '${name}' needs a table column to act on; ${column === undefined ? 'none was named' : `'${column}' is not one`} (columns: ${layout.featureNames.slice(0, 12).join(', ')}${layout.featureNames.length > 12 ? ', …' : ''}).`);
  }
  return name as TransformName;
}

export interface TransformOptions {
  seed?: number;
  /** noise: standard deviation (images: in pixel units; default 0.1). */
  sigma?: number;
  /** Table transforms: the column. */
  column?: number;
}

/** A transformed copy of `inputs`; `inputs` is left as it is. */
export function applyTransform(name: TransformName, inputs: Tensor, options: TransformOptions = {}): Tensor {
  const source = inputs.data as Float32Array;
  const out = tensor('float32', [...inputs.dims]);
  const data = out.data as Float32Array;
  data.set(source);
  const seed = options.seed ?? 0;
  const [n] = inputs.dims;
  if (name === 'channel-swap' || name === 'grayscale' || name === 'occlude') {
    const [, channels, height, width] = inputs.dims;
    const plane = height * width;
    for (let i = 0; i < n; i++) {
      const base = i * channels * plane;
      if (name === 'channel-swap') {
        for (let c = 0; c < channels; c++) data.set(source.subarray(base + (channels - 1 - c) * plane, base + (channels - c) * plane), base + c * plane);
      } else if (name === 'grayscale') {
        for (let p = 0; p < plane; p++) {
          let sum = 0;
          for (let c = 0; c < channels; c++) sum += source[base + c * plane + p];
          for (let c = 0; c < channels; c++) data[base + c * plane + p] = sum / channels;
        }
      } else {
        const side = Math.max(1, Math.round(Math.min(height, width) / 4));
        const random = seededRandom(hashIndex(seed, i));
        const top = Math.floor(random() * (height - side + 1));
        const left = Math.floor(random() * (width - side + 1));
        for (let c = 0; c < channels; c++) for (let y = top; y < top + side; y++) data.fill(0.5, base + c * plane + y * width + left, base + c * plane + y * width + left + side);
      }
    }
    return out;
  }
  if (name === 'noise') {
    const sigma = options.sigma ?? 0.1;
    const random = seededRandom(seed);
    for (let k = 0; k < data.length; k++) data[k] = Math.min(1, Math.max(0, source[k] + sigma * gaussian(random)));
    return out;
  }
  const features = inputs.dims[1];
  const column = options.column!;
  const cell = (row: number) => row * features + column;
  if (name === 'shuffle') {
    const order = permutation(n, seed);
    for (let row = 0; row < n; row++) data[cell(row)] = source[cell(order[row])];
  } else if (name === 'set-to-mean') {
    let sum = 0;
    for (let row = 0; row < n; row++) sum += source[cell(row)];
    for (let row = 0; row < n; row++) data[cell(row)] = sum / n;
  } else {
    for (let row = 0; row < n; row++) {
      const value = source[cell(row)];
      if (value !== 0 && value !== 1) throw new InputError(`Transform 'flip' needs a binary (0/1) column; row ${row} holds ${value}: use shuffle or set-to-mean.`);
      data[cell(row)] = 1 - value;
    }
  }
  return out;
}

/** Gaussian perturbation for tables: each feature gets N(0, (relative·sd of the feature)²), seeded. */
export function perturbTable(inputs: Tensor, relative: number, seed: number): Tensor {
  const [n, features] = inputs.dims;
  const source = inputs.data as Float32Array;
  const sd = new Float64Array(features);
  for (let f = 0; f < features; f++) {
    let sum = 0, squares = 0;
    for (let row = 0; row < n; row++) { const v = source[row * features + f]; sum += v; squares += v * v; }
    sd[f] = Math.sqrt(Math.max(0, squares / n - (sum / n) ** 2));
  }
  const random = seededRandom(seed);
  const out = tensor('float32', [...inputs.dims]);
  const data = out.data as Float32Array;
  for (let k = 0; k < data.length; k++) data[k] = source[k] + relative * sd[k % features] * gaussian(random);
  return out;
}

/** A standard normal draw (Box–Muller). */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
