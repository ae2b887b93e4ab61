/**
 * The race's training rows as teardown tasks, for the backprop contenders: the trainer and
 * sweep()'s training trials read a task by name, so the rows are written as
 * `npy:INPUTS.npy,LABELS.npy` (data/user-tasks.ts) into a temporary folder. An npy task splits
 * its T rows by its data seed: with π = permutation(T, dataSeed) and cut = round(0.8·T), rows
 * π[0 … cut − 1] are its training rows, in that order, and the others its test rows.
 *
 *   - searchTask: the N training rows as they are; the task's test rows are the validation
 *     split, carved from the race's training rows only and fixed by the data seed.
 *   - wholeTask: T > N rows with round(0.8·T) = N, training row k written at π[k], so that the
 *     task's training rows are all N rows in their own order. Its test rows are copies of the
 *     first training rows, there only because a task has some: the trainer evaluates on them
 *     and nothing reads that figure.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy } from '../data/npy.ts';
import { permutation, takeRows } from '../data/tasks.ts';
import { InputError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';

/** Examples as the trainer reads them: float32 inputs [N, …] and int64 labels [N]. */
export interface TaskRows {
  inputs: Tensor;
  labels: Tensor;
}

/** A task name with the data seed that fixes its split. */
export interface NamedTask {
  task: string;
  taskOptions: { dataSeed: number };
}

/** The share of an npy task's rows it trains on (data/user-tasks.ts splits 80/20). */
const TRAIN_SHARE = 0.8;

/** A temporary folder of task files, removed with everything in it by remove(). */
export class TaskFolder {
  private constructor(readonly path: string) {}

  static create(): TaskFolder {
    return new TaskFolder(mkdtempSync(join(tmpdir(), 'teardown-backprop-')));
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }

  /** Writes NAME-inputs.npy and NAME-labels.npy; the task that reads them. */
  write(name: string, rows: TaskRows): string {
    const inputs = join(this.path, `${name}-inputs.npy`);
    const labels = join(this.path, `${name}-labels.npy`);
    writeFileSync(inputs, encodeNpy(rows.inputs));
    writeFileSync(labels, encodeNpy(rows.labels));
    return `npy:${inputs},${labels}`;
  }
}

/** Rows of `count` that an npy task trains on: its 80%. */
export const searchTrainingRows = (count: number): number => Math.round(TRAIN_SHARE * count);

/** The rows as they are: the task trains on 80% of them and tests (validates) on the rest. */
export function searchTask(folder: TaskFolder, rows: TaskRows, dataSeed: number): NamedTask {
  const count = rows.labels.dims[0];
  if (searchTrainingRows(count) >= count) {
    throw new InputError(
      `The backprop contenders' search needs at least 3 training rows, to hold some out for ` +
        `validation; it got ${count}.`,
    );
  }
  return { task: folder.write('search', rows), taskOptions: { dataSeed } };
}

/** A task whose training rows are exactly `rows`, in their order (see the file's comment). */
export function wholeTask(folder: TaskFolder, rows: TaskRows, dataSeed: number): NamedTask {
  const count = rows.labels.dims[0];
  const total = wholeTaskRows(count);
  const order = permutation(total, dataSeed);
  // File row order[k] holds training row k; the test rows repeat training rows 0, 1, ….
  const source = new Array<number>(total);
  order.forEach((fileRow, k) => (source[fileRow] = k < count ? k : (k - count) % count));
  const arranged = { inputs: takeRows(rows.inputs, source), labels: takeRows(rows.labels, source) };
  return { task: folder.write('whole', arranged), taskOptions: { dataSeed } };
}

/** The fewest rows T > N whose 80% is N (T exists for every N ≥ 2, since 0.8 < 1). */
function wholeTaskRows(count: number): number {
  for (let total = count + 1; searchTrainingRows(total) <= count; total++) {
    if (searchTrainingRows(total) === count) return total;
  }
  throw new InputError(`The backprop contenders need at least 2 training rows; they got ${count}.`);
}

/** Whether the rows a trainer trained on are `rows`, value for value and in order. */
export function sameRows(trained: TaskRows, rows: TaskRows): boolean {
  return sameTensor(trained.inputs, rows.inputs) && sameTensor(trained.labels, rows.labels);
}

function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.dims.join() !== b.dims.join()) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}
