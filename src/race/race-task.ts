/**
 * A task as the race takes it: the training, in-distribution test and shifted rows every
 * contender sees, fixed by one data seed, and what the audit is told about them.
 *
 *   colored-mnist      train and test are the two training environments (colour agrees with the
 *                      label 90% / 80%), 80/20 by the data seed; shifted is the test environment
 *                      (colour agrees 10%); the audit's counterfactual swaps the colour channels
 *   mnist, modular-addition   the task's own split; no shifted set
 *   csv:FILE, npy:X.npy,Y.npy  the task's 80/20 split; shifted is the user's file in the same
 *                      format (`shifted`), read whole; attributes as the task takes them
 *
 * The rows are not listed in the result: the data seed regenerates them, and each set's sha256
 * (over its inputs' and labels' values) says whether a regenerated set is the same.
 *
 *   const task = raceTask('colored-mnist', { dataSeed: 0 });
 *   await race(contendersNamed('knn,dfa'), task.split, { seeds: [1], budgetSeconds: 10, audit: task.audit });
 */
import { createHash } from 'node:crypto';
import { parseCounterfactual } from '../audit/shortcut.ts';
import { layoutOf } from '../audit/transforms.ts';
import { readTable, type Table } from '../data/csv.ts';
import { NpyFile } from '../data/npy.ts';
import { loadTask, permutation, takeRows, type Split, type Task } from '../data/tasks.ts';
import { requireLabels } from '../data/validate.ts';
import { InputError } from '../errors.ts';
import { tensor, type Tensor } from '../tensor.ts';
import type { RaceData } from './contender.ts';
import type { RaceAuditOptions, RaceSplit } from './race.ts';
import type { SplitRecord } from './scorecard.ts';

export interface RaceTaskOptions {
  /** Seed of the split and of the data's own noise (default 0). */
  dataSeed?: number;
  /** csv: the label column. */
  labelColumn?: string;
  /** csv: and npy: tasks: attributes, each a CSV column NAME or NAME=FILE.npy. */
  attributes?: string[];
  /** csv: and npy: tasks: the shifted set, a file in the task's own format. */
  shifted?: string;
  /** 'NAME:TRANSFORM' per attribute for the audit, beside the task's own. */
  counterfactuals?: string[];
}

/**
 * How the rows were drawn, as the scorecard records it (race/scorecard.ts): the row counts, the
 * data seed that regenerates them, in words how, and each set's sha256 over its inputs' values
 * (as float64, little-endian) then its labels', in row order.
 */
export interface RaceSplitRecord extends SplitRecord {
  seed: number;
  method: string;
  sha256: { train: string; test: string; shifted?: string };
}

export interface RaceTask {
  name: string;
  description: string;
  classes: number;
  split: RaceSplit;
  audit: RaceAuditOptions;
  /** The attribute whose counterfactual flip rate the scorecard reports, where there is one. */
  shortcutAttribute?: string;
  record: RaceSplitRecord;
}

/** colored-mnist's counterfactual: the colour channels swapped, as `teardown audit` tests it. */
const COLOR_COUNTERFACTUAL = 'color:channel-swap';

/** The share of colored-mnist's training environments held out as the in-distribution test. */
const HELD_OUT_SHARE = 0.2;

const NO_SHIFTED_SET: Record<string, string> = {
  mnist: 'mnist has no shifted set',
  'modular-addition': 'modular-addition has no shifted set',
  'colored-mnist': 'colored-mnist brings its own shifted set (the test environment)',
};

export function raceTask(name: string, options: RaceTaskOptions = {}): RaceTask {
  const dataSeed = options.dataSeed ?? 0;
  const user = name.startsWith('csv:') || name.startsWith('npy:');
  if (options.shifted !== undefined && !user)
    throw new InputError(
      `${NO_SHIFTED_SET[name] ?? `Task '${name}' takes no shifted file`}: --shifted FILE ` +
        'applies to csv: and npy: tasks (a file in the same format as the task).',
    );
  const task = loadTask(name, {
    dataSeed,
    labelColumn: options.labelColumn,
    attributes: options.attributes,
  });
  const raced =
    name === 'colored-mnist'
      ? coloredMnist(task, dataSeed, options)
      : user
        ? userData(task, dataSeed, options)
        : plainTask(task, dataSeed, options);
  return withCheckedCounterfactuals(raced);
}

/**
 * Each counterfactual parsed against the test rows as the audit will see them, so that one the
 * data cannot take (channel-swap on a table) is refused before anything trains, not reported as
 * every contender failing.
 */
function withCheckedCounterfactuals(task: RaceTask): RaceTask {
  const { inputs } = task.split.test;
  const layout = layoutOf(inputs.dims.slice(1), inputs.dtype, task.audit.featureNames);
  for (const text of task.audit.counterfactuals ?? []) parseCounterfactual(text, layout);
  return task;
}

/** Held-out rows of the training environments are the test; the test environment is shifted. */
function coloredMnist(task: Task, dataSeed: number, options: RaceTaskOptions): RaceTask {
  const rows = task.train.inputs.dims[0];
  const order = permutation(rows, dataSeed);
  const cut = Math.round(HELD_OUT_SHARE * rows);
  const test = rowsOf(task.train, order.slice(0, cut));
  const train = rowsOf(task.train, order.slice(cut));
  const shifted = rowsOf(task.test, [...Array(task.test.inputs.dims[0]).keys()]);
  const method =
    `the training environments' ${rows} rows in a permutation drawn from the data seed: the ` +
    `first ${cut} are the in-distribution test, the other ${rows - cut} the training rows; ` +
    `shifted: the test environment's ${shifted.data.inputs.dims[0]} rows`;
  const classes = task.classes;
  const split = {
    train: { ...train.data, classes },
    test: { ...test.data, classes },
    shifted: { ...shifted.data, classes },
  };
  const extra = (options.counterfactuals ?? []).filter((text) => text !== COLOR_COUNTERFACTUAL);
  return {
    name: task.name,
    description: task.description,
    classes: task.classes,
    split,
    audit: {
      attributes: { color: test.attributes!.color },
      counterfactuals: [COLOR_COUNTERFACTUAL, ...extra],
    },
    shortcutAttribute: 'color',
    record: record(dataSeed, method, split),
  };
}

function plainTask(task: Task, dataSeed: number, options: RaceTaskOptions): RaceTask {
  const split = { train: raceData(task.train, task), test: raceData(task.test, task) };
  return {
    name: task.name,
    description: task.description,
    classes: task.classes,
    split,
    audit: { counterfactuals: options.counterfactuals ?? [] },
    record: record(dataSeed, `the task's own split`, split),
  };
}

function userData(task: Task, dataSeed: number, options: RaceTaskOptions): RaceTask {
  const table = task.name.startsWith('csv:')
    ? readTable(task.dataPath!, { labelColumn: options.labelColumn })
    : undefined;
  const shifted =
    options.shifted === undefined ? undefined : readShifted(options.shifted, task, table, options);
  const split = {
    train: raceData(task.train, task),
    test: raceData(task.test, task),
    ...(shifted ? { shifted } : {}),
  };
  const method =
    `the task's 80/20 split of its rows by the data seed` +
    (shifted ? `; shifted: every row of '${options.shifted}'` : '');
  return {
    name: task.name,
    description: task.description,
    classes: task.classes,
    split,
    audit: {
      attributes: task.test.attributes,
      featureNames: table?.featureNames,
      counterfactuals: options.counterfactuals ?? [],
    },
    shortcutAttribute:
      options.counterfactuals?.[0]?.split(':')[0] ?? Object.keys(task.test.attributes ?? {})[0],
    record: record(dataSeed, method, split),
  };
}

/** The user's shifted file, whole, checked against the task's examples and classes. */
function readShifted(
  path: string,
  task: Task,
  table: Table | undefined,
  options: RaceTaskOptions,
): RaceData {
  const data = table
    ? shiftedTable(path.replace(/^csv:/, ''), table, options.labelColumn!)
    : shiftedArrays(path.replace(/^npy:/, ''));
  const expected = task.train.inputs.dims.slice(1).join(', ');
  const given = data.inputs.dims.slice(1).join(', ');
  if (given !== expected || data.inputs.dtype !== task.train.inputs.dtype)
    throw new InputError(
      `--shifted '${path}' has examples of ${data.inputs.dtype} [${given}], but task ` +
        `'${task.name}' has ${task.train.inputs.dtype} [${expected}]: give the shifted set in ` +
        'the same format and with the same columns.',
    );
  const labels = data.labels as Tensor;
  requireLabels(labels.data as BigInt64Array, `--shifted '${path}'`, { classes: task.classes });
  return { ...data, classes: task.classes };
}

/** A CSV with the task's columns; label names map to the training table's classes. */
function shiftedTable(path: string, train: Table, labelColumn: string): RaceData {
  const shifted = readTable(path, { labelColumn });
  const names = shifted.featureNames.join(', ');
  if (names !== train.featureNames.join(', '))
    throw new InputError(
      `--shifted '${path}' has the columns ${names}, but the task's table has ` +
        `${train.featureNames.join(', ')}: give the shifted table the same columns in the same order.`,
    );
  if (!train.classes !== !shifted.classes)
    throw new InputError(
      `--shifted '${path}': its label column '${labelColumn}' holds ` +
        `${shifted.classes ? 'names' : 'integers'} where the task's holds ` +
        `${train.classes ? 'names' : 'integers'}: give the classes the same way in both.`,
    );
  if (!shifted.classes || !train.classes)
    return { inputs: shifted.features, labels: shifted.labels! };
  const codes = Array.from(shifted.labels!.data as BigInt64Array, (code) => {
    const index = train.classes!.indexOf(shifted.classes![Number(code)]);
    if (index < 0)
      throw new InputError(
        `--shifted '${path}' has the class '${shifted.classes![Number(code)]}', which the ` +
          `task's table does not (its classes: ${train.classes!.join(', ')}).`,
      );
    return index;
  });
  return { inputs: shifted.features, labels: tensor('int64', [codes.length], codes) };
}

/** INPUTS.npy,LABELS.npy: the inputs as stored, integer labels one per example. */
function shiftedArrays(spec: string): RaceData {
  const paths = spec.split(',');
  if (paths.length !== 2 || paths.some((path) => !path))
    throw new InputError(
      `--shifted '${spec}' needs two files for an npy: task: INPUTS.npy,LABELS.npy.`,
    );
  const inputs = new NpyFile(paths[0]).readAll();
  const raw = new NpyFile(paths[1]).readAll();
  if (raw.dims.length !== 1 || raw.dims[0] !== inputs.dims[0] || !raw.dtype.startsWith('int'))
    throw new InputError(
      `--shifted labels '${paths[1]}' are ${raw.dtype} [${raw.dims.join(', ')}]: give one ` +
        `integer class per example of '${paths[0]}', shape [${inputs.dims[0]}].`,
    );
  const labels = Array.from(raw.data as ArrayLike<number | bigint>, Number);
  const values =
    inputs.dtype === 'int32'
      ? tensor('int64', [...inputs.dims], Array.from(inputs.data as Int32Array))
      : inputs;
  return { inputs: values, labels: tensor('int64', [labels.length], labels) };
}

function raceData(split: Split, task: Task): RaceData {
  return { inputs: split.inputs, labels: split.labels, classes: task.classes };
}

function rowsOf(
  split: Split,
  rows: number[],
): { data: RaceData; attributes?: Record<string, Int32Array> } {
  const attributes = split.attributes
    ? Object.fromEntries(
        Object.entries(split.attributes).map(([name, values]) => [
          name,
          Int32Array.from(rows, (row) => values[row]),
        ]),
      )
    : undefined;
  const data = { inputs: takeRows(split.inputs, rows), labels: takeRows(split.labels, rows) };
  return { data, attributes };
}

function record(seed: number, method: string, split: RaceSplit): RaceSplitRecord {
  return {
    train: split.train.inputs.dims[0],
    test: split.test.inputs.dims[0],
    ...(split.shifted ? { shifted: split.shifted.inputs.dims[0] } : {}),
    seed,
    method,
    sha256: {
      train: rowsHash(split.train),
      test: rowsHash(split.test),
      ...(split.shifted ? { shifted: rowsHash(split.shifted) } : {}),
    },
  };
}

/** sha256 of the values as float64 (so the hash does not depend on the dtype): inputs, labels. */
export function rowsHash(data: RaceData): string {
  const hash = createHash('sha256');
  const labels = 'dims' in data.labels ? data.labels.data : data.labels;
  for (const values of [data.inputs.data, labels] as ArrayLike<number | bigint>[]) {
    const bytes =
      values instanceof BigInt64Array || !ArrayBuffer.isView(values)
        ? Float64Array.from(values as ArrayLike<number>, Number)
        : new Float64Array(values as unknown as ArrayLike<number>);
    hash.update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
  return hash.digest('hex');
}

/** The task with each set cut to its first `rows` rows (a smoke run), attributes with them. */
export function firstRowsOfTask(task: RaceTask, rows: number): RaceTask {
  const cut = (data: RaceData): RaceData => {
    const take = [...Array(Math.min(rows, data.inputs.dims[0])).keys()];
    const labels =
      'dims' in data.labels
        ? takeRows(data.labels, take)
        : take.map((r) => Number((data.labels as ArrayLike<number>)[r]));
    return { ...data, inputs: takeRows(data.inputs, take), labels };
  };
  const split: RaceSplit = {
    train: cut(task.split.train),
    test: cut(task.split.test),
    ...(task.split.shifted ? { shifted: cut(task.split.shifted) } : {}),
  };
  const attributes = task.audit.attributes
    ? Object.fromEntries(
        Object.entries(task.audit.attributes).map(([name, values]) => [
          name,
          Array.from(values).slice(0, split.test.inputs.dims[0]),
        ]),
      )
    : undefined;
  const method = `${task.record.method}; each set cut to its first ${rows} rows (smoke)`;
  return {
    ...task,
    split,
    audit: { ...task.audit, attributes },
    record: record(task.record.seed, method, split),
  };
}
