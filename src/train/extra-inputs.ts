/**
 * Model inputs besides the task's examples (`train --from … --input attention_mask=mask.npy`): one
 * .npy file per input with one row per row of the user's data file, read for the same rows as
 * the examples wherever they are batched, so each example keeps its own mask.
 */
import { InputError } from '../errors.ts';
import { NpyFile } from '../data/npy.ts';
import { takeRows, type Split, type Task } from '../data/tasks.ts';
import type { Feeds, Tensor } from '../tensor.ts';

export interface ExtraInputs {
  names: string[];
  /** The extra inputs of examples `indices` (positions in `split`). */
  feeds(split: Split, indices: readonly number[]): Feeds;
}

export const NO_EXTRA_INPUTS: ExtraInputs = { names: [], feeds: () => ({}) };

export function loadExtraInputs(
  files: Record<string, string> | undefined,
  task: Task,
): ExtraInputs {
  const entries = Object.entries(files ?? {});
  if (!entries.length) return NO_EXTRA_INPUTS;
  const { rows: trainRows } = task.train;
  const { rows: testRows } = task.test;
  if (!trainRows || !testRows)
    throw new InputError(
      `--input ${entries[0][0]}=… gives a model input row for row with your own data (csv: or npy: tasks); task '${task.name}' has no data file: use csv:FILE or npy:INPUTS.npy,LABELS.npy.`,
    );
  const rows = trainRows.length + testRows.length;
  const values = new Map<string, Tensor>(
    entries.map(([name, path]) => {
      const tensor = new NpyFile(path).readAll();
      if (tensor.dims[0] !== rows)
        throw new InputError(
          `--input ${name}='${path}' has ${tensor.dims[0]} rows but the task's data '${task.dataPath}' has ${rows}: give one row per row of the data file, in its order.`,
        );
      return [name, tensor];
    }),
  );
  return {
    names: [...values.keys()],
    feeds: (split, indices) =>
      Object.fromEntries(
        [...values].map(([name, tensor]) => [
          name,
          takeRows(
            tensor,
            indices.map((k) => split.rows![k]),
          ),
        ]),
      ),
  };
}
