/**
 * The data an audit runs on: examples (.npy for the model's input, or .csv features), labels
 * (--labels FILE.npy or --label-column) and per-example attributes (NAME=FILE.npy, or NAME for a
 * column of CSV data). Everything is checked against everything else before any model runs.
 */
import { InputError } from '../errors.ts';
import { readTable } from '../data/csv.ts';
import { NpyFile } from '../data/npy.ts';
import { requireLabels, requireRows } from '../data/validate.ts';
import type { Tensor } from '../tensor.ts';
import type { Model } from '../runtime/model.ts';
import { layoutOf, type DataLayout } from './transforms.ts';
import { columnOf, fromNpy, inMemory, inputNames, type Examples } from './examples.ts';

export interface Attribute {
  name: string;
  /** One value per example. */
  values: Float64Array;
  /** The table column holding it, when it is one of the model's features. */
  column?: number;
  /** The .npy file it was read from (NAME=FILE.npy). */
  file?: string;
}

export interface AuditData {
  path: string;
  /** Read in batches: an .npy file streams. */
  inputs: Examples;
  labels: Int32Array;
  layout: DataLayout;
  attributes: Attribute[];
}

export interface DataSpec {
  /** One-input models: .npy examples, or .csv features. */
  data?: string;
  /** Several inputs: every model input's .npy file by input name (one row per example in each). */
  inputs?: Record<string, string>;
  /** With `inputs`: the input that counterfactuals and perturbations transform; the others pass through. */
  transformInput?: string;
  labels?: string;
  labelColumn?: string;
  /** NAME=FILE.npy or, for CSV data, a column NAME. */
  attributes?: string[];
}

export function loadAuditData(spec: DataSpec, role = '--data'): AuditData {
  if (spec.inputs)
    return withLabelsAndAttributes(
      spec,
      role,
      namedInputs(
        spec.inputs,
        spec.transformInput!,
        role === '--data' ? '--input' : '--shifted-input',
      ),
    );
  const path = spec.data!;
  if (path.endsWith('.csv')) {
    const table = readTable(path, { labelColumn: spec.labelColumn });
    if (spec.labelColumn === undefined && spec.labels === undefined)
      throw new InputError(
        `${role} '${path}' is a table: name its label column with --label-column NAME (or give --labels FILE.npy).`,
      );
    return withLabelsAndAttributes(spec, role, {
      path,
      inputs: inMemory(table.features),
      labels: table.labels,
      featureNames: table.featureNames,
    });
  }
  if (spec.labelColumn)
    throw new InputError(
      `--label-column applies to .csv data; '${path}' is an array: give --labels FILE.npy.`,
    );
  return withLabelsAndAttributes(spec, role, { path, inputs: fromNpy(new NpyFile(path)) });
}

interface LoadedExamples {
  /** The file of the transformed input, named in messages and results. */
  path: string;
  inputs: Examples;
  labels?: Tensor;
  featureNames?: string[];
}

/** Every input's .npy file; the transformed one carries the others as pass-through inputs, checked to have as many rows. */
function namedInputs(
  files: Record<string, string>,
  transformInput: string,
  flag: string,
): LoadedExamples {
  const names = Object.keys(files);
  if (!names.includes(transformInput))
    throw new InputError(
      `--transform-input '${transformInput}' is not among the inputs given with ${flag} (${names.join(', ')}): name one of them.`,
    );
  const examples = Object.fromEntries(
    names.map((name) => [name, { ...fromNpy(new NpyFile(files[name])), input: name }]),
  );
  const main = examples[transformInput];
  for (const name of names) {
    if (examples[name].rows !== main.rows)
      throw new InputError(
        `${flag} '${name}' ('${files[name]}') has ${examples[name].rows} examples but '${transformInput}' ('${files[transformInput]}') has ${main.rows}: give every input one row per example, in the same order.`,
      );
  }
  const passThrough = Object.fromEntries(
    names.filter((name) => name !== transformInput).map((name) => [name, examples[name]]),
  );
  return { path: files[transformInput], inputs: { ...main, passThrough } };
}

function withLabelsAndAttributes(spec: DataSpec, role: string, loaded: LoadedExamples): AuditData {
  const { path, inputs, featureNames } = loaded;
  const labels = spec.labels ? new NpyFile(spec.labels).readAll() : loaded.labels;
  if (!labels)
    throw new InputError(
      `${role} '${path}' has no labels: give --labels FILE.npy${featureNames ? ' or --label-column NAME' : ''}.`,
    );
  const examples = inputs.rows;
  requireRows(examples, `${role} '${path}'`);
  const layout = layoutOf(inputs.dims, inputs.dtype, featureNames);
  const labelValues = integerValues(labels, `labels of ${role} '${path}'`);
  if (labelValues.length !== examples)
    throw new InputError(
      `${role} '${path}' has ${examples} examples but its labels${spec.labels ? ` '${spec.labels}'` : ''} have ${labelValues.length}: give one label per example.`,
    );
  const attributes = (spec.attributes ?? []).map((text) =>
    loadAttribute(text, inputs, featureNames, examples, path),
  );
  return { path, inputs, labels: labelValues, layout, attributes };
}

function loadAttribute(
  text: string,
  inputs: Examples,
  featureNames: string[] | undefined,
  examples: number,
  dataPath: string,
): Attribute {
  const at = text.indexOf('=');
  if (at < 0) {
    const column = featureNames?.indexOf(text) ?? -1;
    if (column < 0)
      throw new InputError(
        `--attribute '${text}' is neither NAME=FILE.npy nor a column of '${dataPath}'${featureNames ? ` (columns: ${featureNames.slice(0, 12).join(', ')})` : ''}.`,
      );
    return { name: text, column, values: columnOf(inputs, column) };
  }
  const name = text.slice(0, at);
  const file = new NpyFile(text.slice(at + 1));
  const tensor = file.readAll();
  if (tensor.dims[0] !== examples || tensor.data.length !== examples) {
    throw new InputError(
      `Attribute '${name}' ('${file.path}') has shape [${tensor.dims.join(', ')}] but '${dataPath}' has ${examples} examples: give one value per example, shape [${examples}].`,
    );
  }
  return {
    name,
    file: file.path,
    values: Float64Array.from(tensor.data as ArrayLike<number | bigint>, Number),
  };
}

function integerValues(labels: Tensor, what: string): Int32Array {
  if (labels.dims.length !== 1)
    throw new InputError(
      `The ${what} have shape [${labels.dims.join(', ')}]: give one integer class per example, shape [N].`,
    );
  requireLabels(labels.data as ArrayLike<number | bigint>, what);
  return Int32Array.from(labels.data as ArrayLike<number | bigint>, Number);
}

/**
 * Refuses data that does not feed exactly the model's inputs: --data for a one-input model, or
 * every input by name (--input NAME=FILE.npy) for a model with several.
 */
export function checkInputs(model: Model, data: AuditData, role = '--data'): void {
  const wanted = model.inputs.map((input) => input.name);
  const given = inputNames(data.inputs);
  if (!given) {
    if (wanted.length === 1) return;
    const flag = role === '--data' ? '--input' : '--shifted-input';
    throw new InputError(
      `'${model.path}' has ${wanted.length} inputs (${model.describeInputs()}); ${role} feeds one: give each input with ${flag} NAME=FILE.npy (${wanted.map((name) => `${flag} ${name}=...`).join(' ')}).`,
    );
  }
  const missing = wanted.filter((name) => !given.includes(name));
  const unknown = given.filter((name) => !wanted.includes(name));
  if (missing.length || unknown.length) {
    throw new InputError(
      `The inputs given for ${role} (${given.join(', ')}) do not match the inputs of '${model.path}' (${wanted.join(', ')})${missing.length ? `: missing ${missing.join(', ')}` : ''}${unknown.length ? `${missing.length ? ';' : ':'} not inputs of the model: ${unknown.join(', ')}` : ''}. Give every model input once.`,
    );
  }
}

/** Refuses labels the model cannot predict. */
export function checkLabels(data: AuditData, classes: number, role = '--data'): void {
  requireLabels(data.labels, `${role} '${data.path}'`, { classes });
}

/** The distinct values of an attribute, sorted, when it has few enough to be categories. */
export function categoriesOf(values: Float64Array, maxCategories = 20): number[] | undefined {
  const distinct = new Set<number>();
  for (const value of values) {
    distinct.add(value);
    if (distinct.size > maxCategories) return undefined;
  }
  return [...distinct].sort((a, b) => a - b);
}
