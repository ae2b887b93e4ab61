/**
 * CSV tables (with a header row) as feature matrices: every column but the label becomes a
 * float32 feature; the label column becomes int64 class indices — as written when they are
 * integers, or indices into the sorted distinct values when they are names. Parsing (quotes,
 * embedded commas, CRLF) is csv-parse's.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { InputError, nearestNames } from '../errors.ts';
import { requireFile } from '../files.ts';
import { tensor, type Tensor } from '../tensor.ts';

export interface Table {
  /** [rows, features] float32. */
  features: Tensor;
  featureNames: string[];
  /** [rows] int64 class indices, when a label column was named. */
  labels?: Tensor;
  labelName?: string;
  /** Label names by class index, when the labels were not integers. */
  classes?: string[];
}

export function readTable(path: string, options: { labelColumn?: string } = {}): Table {
  requireFile(path, 'Table file');
  let records: string[][];
  try {
    records = parse(readFileSync(path, 'utf8'), { skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    throw new InputError(`'${path}' is not a readable CSV table: ${(error as Error).message}`);
  }
  const [header, ...rows] = records;
  if (!header || rows.length === 0) throw new InputError(`'${path}' needs a header row and at least one data row.`);
  const duplicate = header.find((name, index) => header.indexOf(name) !== index);
  if (duplicate !== undefined) throw new InputError(`'${path}' has two columns named '${duplicate}': rename one.`);
  const labelIndex = options.labelColumn === undefined ? -1 : header.indexOf(options.labelColumn);
  if (options.labelColumn !== undefined && labelIndex < 0) {
    throw new InputError(`'${path}' has no column '${options.labelColumn}' for --label-column. Nearest columns: ${nearestNames(options.labelColumn, header, 3).join(', ')}.`);
  }
  const featureColumns = header.map((_, index) => index).filter((index) => index !== labelIndex);
  const values = new Float32Array(rows.length * featureColumns.length);
  rows.forEach((row, r) => {
    featureColumns.forEach((column, f) => {
      const cell = row[column];
      const value = cell === '' || cell === undefined ? NaN : Number(cell);
      if (Number.isNaN(value)) {
        const problem = cell === '' || cell === undefined ? 'is empty' : `holds '${cell}', not a number`;
        throw new InputError(`'${path}' row ${r + 2}, column '${header[column]}' ${problem}: feature columns must be numeric (encode categories as numbers, fill or drop missing values).`);
      }
      values[r * featureColumns.length + f] = value;
    });
  });
  const table: Table = { features: tensor('float32', [rows.length, featureColumns.length], values), featureNames: featureColumns.map((index) => header[index]) };
  if (labelIndex >= 0) Object.assign(table, { labelName: header[labelIndex], ...labelsOf(rows.map((row) => row[labelIndex] ?? '')) });
  return table;
}

function labelsOf(cells: string[]): { labels: Tensor; classes?: string[] } {
  if (cells.every((cell) => /^-?\d+$/.test(cell))) return { labels: tensor('int64', [cells.length], cells.map(Number)) };
  const classes = [...new Set(cells)].sort();
  return { labels: tensor('int64', [cells.length], cells.map((cell) => classes.indexOf(cell))), classes };
}
