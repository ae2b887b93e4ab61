/**
 * The data an audit runs on: examples (.npy for the model's input, or .csv features), labels
 * (--labels FILE.npy or --label-column) and per-example attributes (NAME=FILE.npy, or NAME for a
 * column of CSV data). Everything is checked against everything else before any model runs.
 */
import { InputError } from '../errors.ts';
import { readTable } from '../data/csv.ts';
import { NpyFile } from '../data/npy.ts';
import type { Tensor } from '../tensor.ts';
import { layoutOf, type DataLayout } from './transforms.ts';
import { columnOf, fromNpy, inMemory, type Examples } from './examples.ts';

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
  data: string;
  labels?: string;
  labelColumn?: string;
  /** NAME=FILE.npy or, for CSV data, a column NAME. */
  attributes?: string[];
}

export function loadAuditData(spec: DataSpec, role = '--data'): AuditData {
  let inputs: Examples;
  let labels: Tensor | undefined;
  let featureNames: string[] | undefined;
  if (spec.data.endsWith('.csv')) {
    const table = readTable(spec.data, { labelColumn: spec.labelColumn });
    inputs = inMemory(table.features);
    featureNames = table.featureNames;
    labels = table.labels;
    if (spec.labelColumn === undefined && spec.labels === undefined) throw new InputError(`${role} '${spec.data}' is a table: name its label column with --label-column NAME (or give --labels FILE.npy).`);
  } else {
    if (spec.labelColumn) throw new InputError(`--label-column applies to .csv data; '${spec.data}' is an array: give --labels FILE.npy.`);
    inputs = fromNpy(new NpyFile(spec.data));
  }
  if (spec.labels) labels = new NpyFile(spec.labels).readAll();
  if (!labels) throw new InputError(`${role} '${spec.data}' has no labels: give --labels FILE.npy${featureNames ? ' or --label-column NAME' : ''}.`);
  const examples = inputs.rows;
  const layout = layoutOf(inputs.dims, inputs.dtype, featureNames);
  const labelValues = integerValues(labels, `labels of ${role} '${spec.data}'`);
  if (labelValues.length !== examples) throw new InputError(`${role} '${spec.data}' has ${examples} examples but its labels${spec.labels ? ` '${spec.labels}'` : ''} have ${labelValues.length}: give one label per example.`);
  const attributes = (spec.attributes ?? []).map((text) => loadAttribute(text, inputs, featureNames, examples, spec.data));
  return { path: spec.data, inputs, labels: labelValues, layout, attributes };
}

function loadAttribute(text: string, inputs: Examples, featureNames: string[] | undefined, examples: number, dataPath: string): Attribute {
  const at = text.indexOf('=');
  if (at < 0) {
    const column = featureNames?.indexOf(text) ?? -1;
    if (column < 0) throw new InputError(`--attribute '${text}' is neither NAME=FILE.npy nor a column of '${dataPath}'${featureNames ? ` (columns: ${featureNames.slice(0, 12).join(', ')})` : ''}.`);
    return { name: text, column, values: columnOf(inputs, column) };
  }
  const name = text.slice(0, at);
  const file = new NpyFile(text.slice(at + 1));
  const tensor = file.readAll();
  if (tensor.dims[0] !== examples || tensor.data.length !== examples) {
    throw new InputError(`Attribute '${name}' ('${file.path}') has shape [${tensor.dims.join(', ')}] but '${dataPath}' has ${examples} examples: give one value per example, shape [${examples}].`);
  }
  return { name, file: file.path, values: Float64Array.from(tensor.data as ArrayLike<number | bigint>, Number) };
}

function integerValues(labels: Tensor, what: string): Int32Array {
  if (labels.dims.length !== 1) throw new InputError(`The ${what} have shape [${labels.dims.join(', ')}]: give one integer class per example, shape [N].`);
  const values = Int32Array.from(labels.data as ArrayLike<number | bigint>, Number);
  values.forEach((value, i) => {
    if (value !== Number(labels.data[i]) || value < 0) throw new InputError(`The ${what} must be non-negative integer classes; entry ${i} is ${labels.data[i]}.`);
  });
  return values;
}

/** Refuses labels the model cannot predict. */
export function checkLabels(data: AuditData, classes: number, role = '--data'): void {
  const bad = data.labels.findIndex((label) => label >= classes);
  if (bad >= 0) throw new InputError(`Label ${data.labels[bad]} (example ${bad} of ${role} '${data.path}') is outside the model's ${classes} classes (0–${classes - 1}): check the labels file or the model.`);
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
