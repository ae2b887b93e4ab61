/**
 * The checks every reader of user data applies, once, so that every command refuses the same bad
 * data with the same message (docs/errors.md):
 *   - non-finite numbers (NaN, ±Inf) in float inputs, unless the caller allows them;
 *   - data with no rows;
 *   - labels that are not integer classes of the model (or, for a new model, not a sane count).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { InputError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';

/**
 * Whether non-finite float inputs are let through (`--allow-non-finite`). A library caller sets
 * it for the process with allowNonFinite(); a command line sets it for its own call only: main()
 * runs each call inside withNonFinitePolicy, so two in-process calls (tests, the fuzzer, a
 * server) with and without the flag do not see each other's choice.
 */
const callPolicy = new AsyncLocalStorage<{ allowed: boolean }>();
let processAllowed = false;

/** Lets non-finite inputs through (or not) for the current call, or the process outside one. */
export function allowNonFinite(allowed: boolean): void {
  const call = callPolicy.getStore();
  if (call) call.allowed = allowed;
  else processAllowed = allowed;
}

/** Runs `work` with its own non-finite policy, refusing until allowNonFinite(true) is called. */
export function withNonFinitePolicy<T>(work: () => T): T {
  return callPolicy.run({ allowed: false }, work);
}

export function nonFiniteIsAllowed(): boolean {
  return callPolicy.getStore()?.allowed ?? processAllowed;
}

/** How many bad rows, and bad columns of each, a message names before "…". */
const NAMED_ROWS = 3;
const NAMED_COLUMNS = 4;

/**
 * Refuses NaN or ±Inf in a float block of rows (`firstRow` is the block's first row in the file).
 * The message names the first bad rows and, in each, the first bad columns (the flat position
 * within a row, or a column's name when given) with their values.
 */
export function requireFinite(
  block: Tensor,
  source: string,
  options: { firstRow?: number; columnNames?: readonly string[] } = {},
): void {
  if (nonFiniteIsAllowed() || (block.dtype !== 'float32' && block.dtype !== 'float64')) return;
  const data = block.data as Float32Array | Float64Array;
  const width = block.dims.length <= 1 ? 1 : data.length / Math.max(1, block.dims[0]);
  const badRows = new Map<number, string[]>();
  let count = 0;
  let moreRows = false;
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i])) continue;
    count++;
    const row = (options.firstRow ?? 0) + Math.floor(i / width);
    if (!badRows.has(row)) {
      if (badRows.size === NAMED_ROWS) {
        moreRows = true;
        continue;
      }
      badRows.set(row, []);
    }
    const columns = badRows.get(row)!;
    if (columns.length < NAMED_COLUMNS)
      columns.push(`${options.columnNames?.[i % width] ?? i % width} = ${data[i]}`);
    else if (columns.length === NAMED_COLUMNS) columns.push('…');
  }
  if (count === 0) return;
  const named = [...badRows]
    .map(
      ([row, columns]) =>
        `row ${row} (column${columns.length > 1 ? 's' : ''} ${columns.join(', ')})`,
    )
    .join('; ');
  throw new InputError(
    `${source} holds ${count} non-finite value${count > 1 ? 's' : ''} (NaN or ±Inf), first in ${named}${moreRows ? '; …' : ''}. Fill or drop those rows, or pass --allow-non-finite to go on with them (as an additive attention mask of −inf needs; docs/errors.md says what each command then does).`,
  );
}

/** Refuses data with no examples: every statistic over zero rows is undefined. */
export function requireRows(rows: number, source: string): void {
  if (rows === 0)
    throw new InputError(`${source} has no rows (0 examples): give at least one example.`);
}

/** The largest class count a new model may get from its labels: more classes than examples is a mistake (a stray label such as 1000000). */
function saneClassCount(examples: number): number {
  return Math.max(2, examples);
}

export interface LabelRule {
  /** The model's classes; labels must lie in 0..classes−1. */
  classes?: number;
  /** Training: at least two distinct classes, and (for a new model) a class count no larger than the examples. */
  training?: boolean;
}

/**
 * Labels as integer class indices, checked by one rule for every command: integers, ≥ 0, below
 * the model's class count when known, and for training at least two classes and a sane count.
 * `source` names the data in messages: "--data 'x.npy'", "labels 'y.npy'".
 */
export function requireLabels(
  values: ArrayLike<number | bigint>,
  source: string,
  rule: LabelRule = {},
): void {
  let max = -Infinity;
  const seen = new Set<number>();
  for (let i = 0; i < values.length; i++) {
    const value = Number(values[i]);
    if (!Number.isInteger(value) || value < 0) {
      throw new InputError(
        `Label ${values[i]} (example ${i} of ${source}) is not a class: labels must be integers ≥ 0, the classes numbered 0, 1, …, K−1.`,
      );
    }
    if (rule.classes !== undefined && value >= rule.classes) {
      throw new InputError(
        `Label ${value} (example ${i} of ${source}) is outside the model's ${rule.classes} classes (0–${rule.classes - 1}): check the labels file or the model.`,
      );
    }
    if (value > max) max = value;
    if (seen.size < 2) seen.add(value);
  }
  if (!rule.training) return;
  if (seen.size < 2)
    throw new InputError(
      `The labels of ${source} hold a single class${seen.size ? ` (${[...seen][0]})` : ''}: training needs examples of at least two classes.`,
    );
  const classes = max + 1;
  if (rule.classes === undefined && classes > saneClassCount(values.length)) {
    throw new InputError(
      `The largest label of ${source}, ${max}, would make a ${classes}-class model from ${values.length} examples: classes are numbered 0…K−1 with K no larger than the number of examples. Renumber the classes (e.g. numpy.unique(y, return_inverse=True)).`,
    );
  }
}
