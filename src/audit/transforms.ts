/**
 * Counterfactual and perturbation transforms: what the data would look like if one attribute
 * changed and nothing else. Images are [N, C, H, W] in [0, 1]; tables are [N, features].
 *
 *   channel-swap  reverse the channel order (for two channels: swap them; RGB → BGR)
 *   grayscale     every channel replaced by the mean over channels
 *   noise         add N(0, σ²) per pixel (σ = 0.1 by default), clipped to [0, 1], seeded per image
 *   occlude       a grey square (a quarter of the image's side) at a seeded place per image
 *   shuffle       permute the column across rows (seeded): keeps its distribution, breaks its link to the rest
 *   set-to-mean   the column's mean in every row
 *   flip          1 − x for a binary (0/1) column
 */
import { InputError } from '../errors.ts';
import { hashIndex, seededRandom } from '../random.ts';
import { permutation } from '../data/tasks.ts';
import { tensor, type DType, type Tensor } from '../tensor.ts';
import { columnOf, inMemory, mapBatches, type Examples } from './examples.ts';

export const IMAGE_TRANSFORMS = ['channel-swap', 'grayscale', 'noise', 'occlude'] as const;
export const TABLE_TRANSFORMS = ['shuffle', 'set-to-mean', 'flip'] as const;
export type TransformName = (typeof IMAGE_TRANSFORMS)[number] | (typeof TABLE_TRANSFORMS)[number];

/** What a dataset's examples are, as the transforms see them. */
export type DataLayout =
  | { kind: 'image'; channels: number; height: number; width: number }
  | { kind: 'table'; featureNames: string[] }
  | { kind: 'other'; dims: number[] };

/** `exampleDims`: the dims of one example (without the batch axis). */
export function layoutOf(
  exampleDims: readonly number[],
  dtype: DType,
  featureNames?: string[],
): DataLayout {
  if (exampleDims.length === 3 && dtype === 'float32')
    return {
      kind: 'image',
      channels: exampleDims[0],
      height: exampleDims[1],
      width: exampleDims[2],
    };
  if (exampleDims.length === 1 && dtype === 'float32')
    return {
      kind: 'table',
      featureNames:
        featureNames ?? Array.from({ length: exampleDims[0] }, (_, i) => `feature ${i}`),
    };
  return { kind: 'other', dims: [...exampleDims] };
}

export function checkTransform(name: string, layout: DataLayout, column?: string): TransformName {
  const all: readonly string[] = [...IMAGE_TRANSFORMS, ...TABLE_TRANSFORMS];
  if (!all.includes(name))
    throw new InputError(
      `Unknown transform '${name}': use one of ${IMAGE_TRANSFORMS.join(', ')} (images) or ${TABLE_TRANSFORMS.join(', ')} (table columns).`,
    );
  const forImages = (IMAGE_TRANSFORMS as readonly string[]).includes(name);
  const shape =
    layout.kind === 'other'
      ? `[N, ${layout.dims.join(', ')}]`
      : layout.kind === 'image'
        ? `images [N, ${layout.channels}, ${layout.height}, ${layout.width}]`
        : `a table of ${layout.featureNames.length} features`;
  if (forImages && layout.kind !== 'image')
    throw new InputError(
      `Transform '${name}' works on images [N, C, H, W]; the data is ${shape}: use ${TABLE_TRANSFORMS.join(', ')} on a table column.`,
    );
  if (!forImages && layout.kind !== 'table')
    throw new InputError(
      `Transform '${name}' works on a table column; the data is ${shape}: use ${IMAGE_TRANSFORMS.join(', ')} on images.`,
    );
  if (
    (name === 'channel-swap' || name === 'grayscale') &&
    layout.kind === 'image' &&
    layout.channels < 2
  )
    throw new InputError(
      `Transform '${name}' needs images with at least 2 channels; the data has ${layout.channels}.`,
    );
  if (
    !forImages &&
    layout.kind === 'table' &&
    (column === undefined || !layout.featureNames.includes(column))
  ) {
    throw new InputError(
      `Transform '${name}' needs a table column to act on; ${column === undefined ? 'none was named' : `'${column}' is not one`} (columns: ${layout.featureNames.slice(0, 12).join(', ')}${layout.featureNames.length > 12 ? ', …' : ''}).`,
    );
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

/**
 * The examples as the transform makes them, batch by batch. Random draws are seeded per example
 * (by its row), so a batch reads the same whatever the batch size; shuffle and set-to-mean read
 * the column once for its permutation or mean.
 */
export function transformExamples(
  name: TransformName,
  examples: Examples,
  options: TransformOptions = {},
): Examples {
  const seed = options.seed ?? 0;
  if (name === 'shuffle' || name === 'set-to-mean' || name === 'flip') {
    const column = options.column!;
    const values = columnOf(examples, column);
    if (name === 'flip') {
      const bad = values.findIndex((v) => v !== 0 && v !== 1);
      if (bad >= 0)
        throw new InputError(
          `Transform 'flip' needs a binary (0/1) column; row ${bad} holds ${values[bad]}: use shuffle or set-to-mean.`,
        );
    }
    const order = name === 'shuffle' ? permutation(examples.rows, seed) : [];
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    const replacement = (row: number) =>
      name === 'shuffle' ? values[order[row]] : name === 'set-to-mean' ? mean : 1 - values[row];
    return mapBatches(examples, (batch, offset) =>
      withColumn(batch, column, (row) => replacement(offset + row)),
    );
  }
  return mapBatches(examples, (batch, offset) =>
    transformImages(name, batch, offset, seed, options.sigma ?? 0.1),
  );
}

/** A transformed copy of a tensor of examples (rows numbered from 0). */
export function applyTransform(
  name: TransformName,
  inputs: Tensor,
  options: TransformOptions = {},
): Tensor {
  return transformExamples(name, inMemory(inputs), options).read(0, inputs.dims[0]);
}

function transformImages(
  name: TransformName,
  inputs: Tensor,
  offset: number,
  seed: number,
  sigma: number,
): Tensor {
  const source = inputs.data as Float32Array;
  const out = tensor('float32', [...inputs.dims]);
  const data = out.data as Float32Array;
  data.set(source);
  const [n, channels, height, width] = inputs.dims;
  const plane = height * width;
  for (let i = 0; i < n; i++) {
    const base = i * channels * plane;
    if (name === 'channel-swap') {
      for (let c = 0; c < channels; c++)
        data.set(
          source.subarray(base + (channels - 1 - c) * plane, base + (channels - c) * plane),
          base + c * plane,
        );
    } else if (name === 'grayscale') {
      for (let p = 0; p < plane; p++) {
        let sum = 0;
        for (let c = 0; c < channels; c++) sum += source[base + c * plane + p];
        for (let c = 0; c < channels; c++) data[base + c * plane + p] = sum / channels;
      }
    } else if (name === 'noise') {
      const random = seededRandom(hashIndex(seed, offset + i));
      for (let k = base; k < base + channels * plane; k++)
        data[k] = Math.min(1, Math.max(0, source[k] + sigma * gaussian(random)));
    } else {
      const side = Math.max(1, Math.round(Math.min(height, width) / 4));
      const random = seededRandom(hashIndex(seed, offset + i));
      const top = Math.floor(random() * (height - side + 1));
      const left = Math.floor(random() * (width - side + 1));
      for (let c = 0; c < channels; c++)
        for (let y = top; y < top + side; y++)
          data.fill(
            0.5,
            base + c * plane + y * width + left,
            base + c * plane + y * width + left + side,
          );
    }
  }
  return out;
}

/** A copy of a table batch with one column replaced. */
function withColumn(batch: Tensor, column: number, value: (row: number) => number): Tensor {
  const out = tensor('float32', [...batch.dims], Float32Array.from(batch.data as Float32Array));
  const features = batch.dims[1];
  for (let row = 0; row < batch.dims[0]; row++)
    (out.data as Float32Array)[row * features + column] = value(row);
  return out;
}

/** Gaussian perturbation of a table: each feature gets N(0, (relative·sd of the feature)²), seeded per row. */
export function perturbTable(examples: Examples, relative: number, seed: number): Examples {
  const features = examples.dims[0];
  // The spread of each column's finite values (data let through with --allow-non-finite keeps its
  // NaN/±Inf cells as they are; they must not make every row's noise NaN).
  const sd = Float64Array.from({ length: features }, (_, f) => {
    const values = columnOf(examples, f).filter(Number.isFinite);
    if (values.length === 0) return 0;
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    return Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length);
  });
  return mapBatches(examples, (batch, offset) => {
    const out = tensor('float32', [...batch.dims], Float32Array.from(batch.data as Float32Array));
    const data = out.data as Float32Array;
    for (let row = 0; row < batch.dims[0]; row++) {
      const random = seededRandom(hashIndex(seed, offset + row));
      for (let f = 0; f < features; f++)
        data[row * features + f] += relative * sd[f] * gaussian(random);
    }
    return out;
  });
}

/** A standard normal draw (Box–Muller). */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
