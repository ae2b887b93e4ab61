/**
 * The examples an audit reads, by row ranges, so that an .npy dataset larger than memory streams
 * through every detector in batches (--batch-size). Tables (CSV) and built-in tasks are
 * already in memory and are wrapped as they are.
 *
 * A model with several inputs (tokens and their attention mask) is fed one input that
 * counterfactuals and perturbations transform, and the others passed through unchanged: they are
 * read for the same rows as the transformed input, so every batch, resample and shuffle of rows
 * (a shuffle permutes one column of the transformed input across rows, never the rows of the
 * others) keeps each row's inputs together. Transforms (mapBatches) keep them as they are.
 */
import type { NpyFile } from '../data/npy.ts';
import { concatRows, sliceRows, type DType, type Feeds, type Tensor } from '../tensor.ts';

export interface Examples {
  rows: number;
  /** Dims of one example (the array's dims without the first axis). */
  dims: number[];
  dtype: DType;
  read(start: number, end: number): Tensor;
  /** The model input these examples feed; the model's first input when not named. */
  input?: string;
  /** The model's other inputs by name, fed unchanged with the same rows (same number of rows). */
  passThrough?: Record<string, Examples>;
}

export function inMemory(values: Tensor): Examples {
  return {
    rows: values.dims[0],
    dims: values.dims.slice(1),
    dtype: values.dtype,
    read: (start, end) => sliceRows(values, start, end),
  };
}

export function fromNpy(file: NpyFile): Examples {
  return {
    rows: file.rows,
    dims: file.header.dims.slice(1),
    dtype: file.header.dtype,
    read: (start, end) => file.readRows(start, end),
  };
}

/** Examples whose every batch is `transform(batch, index of its first row)`. */
export function mapBatches(
  examples: Examples,
  transform: (batch: Tensor, offset: number) => Tensor,
): Examples {
  return { ...examples, read: (start, end) => transform(examples.read(start, end), start) };
}

/** The feeds of rows [start, end): the examples under their input's name (`defaultInput` when unnamed) and every pass-through input's same rows. */
export function readFeeds(
  examples: Examples,
  start: number,
  end: number,
  defaultInput: string,
): Feeds {
  const feeds: Feeds = { [examples.input ?? defaultInput]: examples.read(start, end) };
  for (const [name, other] of Object.entries(examples.passThrough ?? {}))
    feeds[name] = other.read(start, end);
  return feeds;
}

/** Every model input the examples feed by name, theirs first; undefined for unnamed examples of a one-input model. */
export function inputNames(examples: Examples): string[] | undefined {
  return examples.input === undefined
    ? undefined
    : [examples.input, ...Object.keys(examples.passThrough ?? {})];
}

/** The given rows, in that order, read as runs of consecutive rows. */
export function takeExamples(examples: Examples, rows: readonly number[]): Tensor {
  const parts: Tensor[] = [];
  let first = 0;
  for (let k = 1; k <= rows.length; k++) {
    if (k < rows.length && rows[k] === rows[k - 1] + 1) continue;
    parts.push(examples.read(rows[first], rows[k - 1] + 1));
    first = k;
  }
  return concatRows(parts);
}

/** The feeds of the given rows, in that order: the examples under their input's name and every pass-through input's same rows. */
export function takeFeeds(
  examples: Examples,
  rows: readonly number[],
  defaultInput: string,
): Feeds {
  const feeds: Feeds = { [examples.input ?? defaultInput]: takeExamples(examples, rows) };
  for (const [name, other] of Object.entries(examples.passThrough ?? {}))
    feeds[name] = takeExamples(other, rows);
  return feeds;
}

/** One column of a table's examples ([rows, features]), read in batches. */
export function columnOf(examples: Examples, column: number, batchSize = 8192): Float64Array {
  const values = new Float64Array(examples.rows);
  const features = examples.dims[0];
  for (let start = 0; start < examples.rows; start += batchSize) {
    const batch = examples.read(start, Math.min(examples.rows, start + batchSize));
    for (let row = 0; row < batch.dims[0]; row++)
      values[start + row] = Number(batch.data[row * features + column]);
  }
  return values;
}
