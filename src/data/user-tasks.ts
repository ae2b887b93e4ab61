/**
 * Tasks from a user's own files, each split 80/20 by the data seed:
 *   csv:FILE                 a table with a header: the label column (--label-column) and float
 *                            features (every other column)
 *   npy:INPUTS.npy,LABELS.npy  one row per example: float32 inputs [N, F] (features) or
 *                            [N, C, H, W] (images), or integer tokens [N, L]; integer labels [N]
 *                            (tokens: scored on the last position) or [N, L] (every position)
 *
 * Attributes (the groups of reweighting and Just-Train-Twice's report, IRM's environments) come
 * with the task options: `NAME` for a column of the CSV (it stays one of the model's features) or
 * `NAME=FILE.npy` with one value per row of the whole data file, in its order (before the split).
 * Each attribute is categorical: its values become the codes 0..K−1 of its sorted distinct values.
 */
import { InputError, nearestNames } from '../errors.ts';
import { tensor, type Tensor } from '../tensor.ts';
import { readTable } from './csv.ts';
import { NpyFile } from './npy.ts';
import { requireLabels } from './validate.ts';
import { permutation, takeRows, type InputShape, type Split, type Task } from './tasks.ts';

/** Beyond this many distinct values an attribute is not a set of groups (bin it first). */
export const MAX_ATTRIBUTE_VALUES = 64;
const TRAIN_SHARE = 0.8;

interface UserData {
  inputs: Tensor;
  input: InputShape;
  labels: Tensor;
  lossPositions: 'all' | 'last';
  /** The features' names, when the data is a table with a header. */
  columns?: string[];
  what: string;
}

export function csvTask(
  path: string,
  labelColumn: string | undefined,
  attributes: readonly string[],
  seed: number,
): Task {
  if (!labelColumn) throw new InputError(`Task 'csv:${path}' needs --label-column NAME.`);
  const table = readTable(path, { labelColumn });
  const data: UserData = {
    inputs: table.features,
    input: { kind: 'features', features: table.featureNames.length },
    labels: table.labels!,
    lossPositions: 'all',
    columns: table.featureNames,
    what: `${path}: ${table.features.dims[0]} rows, ${table.featureNames.length} features, label '${labelColumn}'`,
  };
  return userTask(`csv:${path}`, path, data, attributes, seed);
}

/** `spec` is what follows `npy:`: INPUTS.npy,LABELS.npy. */
export function npyTask(spec: string, attributes: readonly string[], seed: number): Task {
  const paths = spec.split(',');
  if (paths.length !== 2 || paths.some((path) => !path))
    throw new InputError(
      `Task 'npy:${spec}' needs two files: npy:INPUTS.npy,LABELS.npy (inputs and integer labels, one row per example).`,
    );
  const [inputsPath, labelsPath] = paths;
  const inputs = new NpyFile(inputsPath).readAll();
  const labels = integerLabels(new NpyFile(labelsPath).readAll(), labelsPath);
  if (labels.dims[0] !== inputs.dims[0])
    throw new InputError(
      `Task 'npy:${spec}': '${inputsPath}' has ${inputs.dims[0]} examples but '${labelsPath}' has ${labels.dims[0]} labels: give one label per example.`,
    );
  const { input, values } = npyInputShape(inputs, inputsPath);
  const perPosition = input.kind === 'tokens' && labels.dims.length === 2;
  if (labels.dims.length !== 1 && !perPosition)
    throw new InputError(
      `Labels '${labelsPath}' have shape [${labels.dims.join(', ')}]: give one integer class per example, shape [${inputs.dims[0]}]${input.kind === 'tokens' ? `, or one per position, [${inputs.dims[0]}, ${input.length}]` : ''}.`,
    );
  const data: UserData = {
    inputs: values,
    input,
    labels,
    lossPositions: input.kind === 'tokens' && !perPosition ? 'last' : 'all',
    what: `${inputsPath}: ${inputs.dims[0]} examples of ${input.kind} [${inputs.dims.slice(1).join(', ')}], labels '${labelsPath}'`,
  };
  return userTask(`npy:${spec}`, inputsPath, data, attributes, seed);
}

function userTask(
  name: string,
  dataPath: string,
  data: UserData,
  attributeSpecs: readonly string[],
  seed: number,
): Task {
  const rows = data.inputs.dims[0];
  const attributes = attributeSpecs.map((text) => loadTaskAttribute(text, data, dataPath));
  const duplicate = attributes.find((a, i) => attributes.findIndex((b) => b.name === a.name) !== i);
  if (duplicate)
    throw new InputError(
      `Attribute '${duplicate.name}' is given twice for task '${name}': name each attribute once.`,
    );
  const order = permutation(rows, seed);
  const cut = Math.round(TRAIN_SHARE * rows);
  if (cut < 1 || cut >= rows)
    throw new InputError(`Task '${name}' has ${rows} examples: an 80/20 split needs at least 2.`);
  requireLabels(data.labels.data as BigInt64Array, `task '${name}'`, { training: true });
  const classes = maxOf(Array.from(data.labels.data as BigInt64Array, Number)) + 1;
  const split = (indices: number[]): Split => ({
    inputs: takeRows(data.inputs, indices),
    labels: takeRows(data.labels, indices),
    attributes: attributes.length
      ? Object.fromEntries(
          attributes.map((a) => [a.name, Int32Array.from(indices, (row) => a.codes[row])]),
        )
      : undefined,
    rows: indices,
  });
  const described = attributes.map(
    (a) =>
      `${a.name} (${a.values.length} values: ${a.values.slice(0, 6).join(', ')}${a.values.length > 6 ? ', …' : ''})`,
  );
  return {
    name,
    dataPath,
    input: data.input,
    classes,
    lossPositions: data.lossPositions,
    testDistribution: 'same',
    train: split(order.slice(0, cut)),
    test: split(order.slice(cut)),
    description: `${data.what} (${classes} classes), seeded 80/20 split (data seed ${seed})${described.length ? `; attributes ${described.join(', ')}` : ''}`,
  };
}

interface TaskAttribute {
  name: string;
  /** Per row of the whole data: the index of its value in `values`. */
  codes: Int32Array;
  /** The distinct values, sorted. */
  values: number[];
}

/** `NAME` (a column of a table) or `NAME=FILE.npy` (one value per row of the data). */
function loadTaskAttribute(text: string, data: UserData, dataPath: string): TaskAttribute {
  const rows = data.inputs.dims[0];
  const at = text.indexOf('=');
  if (at < 0) {
    const column = data.columns?.indexOf(text) ?? -1;
    if (column < 0) {
      const columns = data.columns
        ? ` Columns: ${nearestNames(text, data.columns, 5).join(', ')}.`
        : '';
      throw new InputError(
        `Attribute '${text}' is not a column of '${dataPath}': give a feature column by name, or NAME=FILE.npy with one value per row of '${dataPath}' (${rows} rows).${columns}`,
      );
    }
    const width = data.inputs.dims[1];
    return categorical(
      text,
      Float64Array.from({ length: rows }, (_, row) =>
        Number(data.inputs.data[row * width + column]),
      ),
      `column '${text}' of '${dataPath}'`,
    );
  }
  const name = text.slice(0, at);
  const path = text.slice(at + 1);
  if (!name || !path)
    throw new InputError(`Attribute '${text}': give NAME=FILE.npy or a column NAME.`);
  const values = new NpyFile(path).readAll();
  if (values.dims[0] !== rows || values.data.length !== rows) {
    throw new InputError(
      `Attribute '${name}' ('${path}') has shape [${values.dims.join(', ')}] but '${dataPath}' has ${rows} rows: give one value per row of the whole data file, in its order, shape [${rows}].`,
    );
  }
  return categorical(
    name,
    Float64Array.from(values.data as ArrayLike<number | bigint>, Number),
    `'${path}'`,
  );
}

function categorical(name: string, raw: Float64Array, source: string): TaskAttribute {
  const values = [...new Set(raw)].sort((a, b) => a - b);
  if (values.some(Number.isNaN))
    throw new InputError(
      `Attribute '${name}' (${source}) holds NaN: fill or drop the missing values.`,
    );
  if (values.length > MAX_ATTRIBUTE_VALUES)
    throw new InputError(
      `Attribute '${name}' (${source}) has ${values.length} distinct values: attributes are groups, at most ${MAX_ATTRIBUTE_VALUES}; bin it into a few categories first.`,
    );
  const code = new Map(values.map((value, index) => [value, index]));
  return { name, values, codes: Int32Array.from(raw, (value) => code.get(value)!) };
}

function npyInputShape(inputs: Tensor, path: string): { input: InputShape; values: Tensor } {
  const dims = inputs.dims.slice(1);
  if (inputs.dtype === 'float32' && dims.length === 1)
    return { input: { kind: 'features', features: dims[0] }, values: inputs };
  if (inputs.dtype === 'float32' && dims.length === 3)
    return {
      input: { kind: 'image', channels: dims[0], height: dims[1], width: dims[2] },
      values: inputs,
    };
  if ((inputs.dtype === 'int64' || inputs.dtype === 'int32') && dims.length === 1) {
    const tokens = Array.from(inputs.data as ArrayLike<number | bigint>, Number);
    if (tokens.some((t) => t < 0))
      throw new InputError(`Tokens '${path}' hold negative values: token ids must be ≥ 0.`);
    return {
      input: { kind: 'tokens', length: dims[0], vocab: maxOf(tokens) + 1 },
      values: tensor('int64', [...inputs.dims], tokens),
    };
  }
  throw new InputError(
    `Inputs '${path}' are ${inputs.dtype} [${inputs.dims.join(', ')}]: give float32 features [N, F], float32 images [N, C, H, W] or integer tokens [N, L] (e.g. x.astype(np.float32)).`,
  );
}

function integerLabels(labels: Tensor, path: string): Tensor {
  if (labels.dtype === 'float32' || labels.dtype === 'float64' || labels.dtype === 'bool')
    throw new InputError(
      `Labels '${path}' are ${labels.dtype}: give integer classes (e.g. y.astype(np.int64)).`,
    );
  const values = Array.from(labels.data as ArrayLike<number | bigint>, Number);
  requireLabels(values, `labels '${path}'`);
  return tensor('int64', [...labels.dims], values);
}

/** The largest value (a loop: spreading a large array into Math.max overflows the stack). */
function maxOf(values: readonly number[]): number {
  let max = -Infinity;
  for (const value of values) if (value > max) max = value;
  return max;
}
