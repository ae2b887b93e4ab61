/**
 * What a model's labels score, decided from the shape of its scores — never from its inputs (an
 * int64 [batch, seq] input is as likely a sequence classifier as a language model):
 *   'example'  scores [batch, classes], one label per example: image, sequence and token
 *              classifiers that pool or pick a position inside the model;
 *   'last'     scores [batch, seq, classes], one label per example: the last position is scored
 *              (a next-token model asked one question per sequence, as modular addition);
 *   'every'    scores [batch, seq, classes], labels [batch, seq]: every position is scored.
 *
 * Probes and roles read a sequence hook ([batch, seq, d]) where the labels are scored: at every
 * position for 'every', at the last for 'last', and for 'example' at the one position the scores
 * read (a classifier on the last step or on a class token), found by patching one position at a
 * time with another example's values; a hook whose positions are all read alike (mean pooling,
 * attention before the pooling) is read as its mean over positions.
 */
import { InputError } from '../errors.ts';
import { patch } from '../graph/interventions.ts';
import { defaultUnitAxis } from '../graph/units.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import {
  concatRows,
  elementCount,
  shapeString,
  sliceRows,
  type Feeds,
  type Tensor,
} from '../tensor.ts';
import { sweepOutputs } from './sweep.ts';

export type Scoring = 'example' | 'last' | 'every';

/** Where a hook is read for probes and roles: one position, every position (one row each), or the mean over positions. */
export type ReadAt = { position: number } | 'every' | 'mean';

export function scoringOf(output: string, scores: readonly number[], labels: Tensor): Scoring {
  if (scores.length === 2) {
    if (labels.dims.length !== 1)
      throw new InputError(
        `The labels have shape ${shapeString(labels.dims)} (one per position) but the model's scores '${output}' have shape ${shapeString(scores)}, one row per example: give one label per example.`,
      );
    return 'example';
  }
  if (scores.length === 3) {
    if (labels.dims.length === 1) return 'last';
    if (labels.dims.length === 2 && labels.dims[1] === scores[1]) return 'every';
    throw new InputError(
      `The labels have shape ${shapeString(labels.dims)} but the model's scores '${output}' have shape ${shapeString(scores)}: give one label per example ([examples]) or one per position ([examples, ${scores[1]}]).`,
    );
  }
  throw new InputError(
    `The model's scores '${output}' have shape ${shapeString(scores)}: labels score classifiers whose classes are the last axis ([batch, classes] or [batch, seq, classes]). Inspect it without --labels (importance is then the change of the output).`,
  );
}

/** Positions scored by a gradient of the label's score: the last only, or all of them. */
export function gradientPositions(scoring: Scoring): 'all' | 'last' {
  return scoring === 'last' ? 'last' : 'all';
}

/**
 * Where each hook is read. Only sequence hooks ([batch, seq, d], rank 3) have a choice; the
 * dependence test for 'example' scoring runs on the first (up to) 8 examples of `sample`.
 */
export async function readPositions(
  model: Model,
  hooks: readonly string[],
  shapes: Map<string, (number | string)[]>,
  scoring: Scoring,
  sample: Feeds,
): Promise<Map<string, ReadAt>> {
  const result = new Map<string, ReadAt>();
  for (const hook of hooks) {
    const dims = shapes.get(hook)!;
    // A Conv1d map [batch, channels, length] is rank 3 too, but its units are channels.
    if (
      dims.length !== 3 ||
      dims[0] !== 'batch' ||
      typeof dims[1] !== 'number' ||
      model.hooks.resolve(hook).channelMap
    ) {
      result.set(hook, 'mean');
      continue;
    }
    if (scoring === 'every') result.set(hook, 'every');
    else if (scoring === 'last') result.set(hook, { position: dims[1] - 1 });
    else result.set(hook, await positionRead(model, hook, dims[1], sample));
  }
  return result;
}

/**
 * The position of a sequence hook that the scores read: each position p is patched with the next
 * example's value (example i gets example i+1's), and the mean |change| of the scores measured.
 * One position whose change is at least twice every other's is "the" position; otherwise 'mean'.
 */
async function positionRead(
  model: Model,
  hook: string,
  positions: number,
  sample: Feeds,
): Promise<ReadAt> {
  const examples = Math.min(8, Object.values(sample)[0].dims[0]);
  if (examples < 2 || positions < 2) return 'mean';
  const feeds = Object.fromEntries(
    Object.entries(sample).map(([name, value]) => [name, sliceRows(value, 0, examples)]),
  );
  const { outputs, cache } = await runWithCache(model, feeds, [hook]);
  const clean = outputs[model.outputNames[0]];
  const values = cache.get(hook)!;
  const rolled = concatRows([sliceRows(values, 1, examples), sliceRows(values, 0, 1)]); // example i gets example i+1's value
  const changes: number[] = [];
  await sweepOutputs(
    model,
    feeds,
    Array.from({ length: positions }, (_, p) => [patch(hook, rolled, { positions: [p] })]),
    (variant, output) => {
      let sum = 0;
      for (let i = 0; i < output.data.length; i++)
        sum += Math.abs(Number(output.data[i]) - Number(clean.data[i]));
      changes[variant] = sum / output.data.length;
    },
  );
  const largest = Math.max(...changes);
  const strongest = changes.indexOf(largest);
  const others = changes.filter((_, p) => p !== strongest);
  return largest > 0 && others.every((change) => 2 * change <= largest)
    ? { position: strongest }
    : 'mean';
}

/**
 * A hook's rows for probes and roles: [rows][units], one row per example (at one position or the
 * mean over positions) or, for 'every', one per (example, position) in row-major order.
 */
export function hookRows(
  values: Tensor,
  at: ReadAt,
  unitAxis = defaultUnitAxis(values.dims.length),
): Float64Array[] {
  if (at === 'mean') return perExampleUnitMeans(values, unitAxis);
  const [examples, positions, units] = values.dims;
  const row = (example: number, position: number) =>
    Float64Array.from({ length: units }, (_, unit) =>
      Number(values.data[(example * positions + position) * units + unit]),
    );
  if (at === 'every')
    return Array.from({ length: examples * positions }, (_, r) =>
      row(Math.floor(r / positions), r % positions),
    );
  return Array.from({ length: examples }, (_, example) => row(example, at.position));
}

/** Per example, each unit's mean over its positions: [examples][units]. */
function perExampleUnitMeans(values: Tensor, axis: number): Float64Array[] {
  const units = values.dims[axis];
  const inner = elementCount(values.dims.slice(axis + 1));
  const perExample = elementCount(values.dims.slice(1));
  const positions = perExample / units;
  return Array.from({ length: values.dims[0] }, (_, example) => {
    const row = new Float64Array(units);
    for (let offset = 0; offset < perExample; offset++)
      row[Math.floor(offset / inner) % units] +=
        Number(values.data[example * perExample + offset]) / positions;
    return row;
  });
}
