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
import { requireFinite, requireLabels } from './validate.ts';

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
  const text = tableText(path);
  let records: string[][];
  try {
    records = parse(text, { skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    throw new InputError(`'${path}' is not a readable CSV table: ${(error as Error).message}`);
  }
  const [header, ...rows] = records;
  if (!header || rows.length === 0)
    throw new InputError(`'${path}' needs a header row and at least one data row.`);
  const duplicate = header.find((name, index) => header.indexOf(name) !== index);
  if (duplicate !== undefined)
    throw new InputError(`'${path}' has two columns named '${duplicate}': rename one.`);
  const labelIndex = options.labelColumn === undefined ? -1 : header.indexOf(options.labelColumn);
  if (options.labelColumn !== undefined && labelIndex < 0) {
    throw new InputError(
      `'${path}' has no column '${options.labelColumn}' for --label-column. Nearest columns: ${nearestNames(options.labelColumn, header, 3).join(', ')}.`,
    );
  }
  const featureColumns = header.map((_, index) => index).filter((index) => index !== labelIndex);
  const values = new Float32Array(rows.length * featureColumns.length);
  rows.forEach((row, r) => {
    featureColumns.forEach((column, f) => {
      const cell = row[column];
      const value = cell === '' || cell === undefined ? NaN : decimalNumber(cell);
      // 'nan' is a number, not a word: requireFinite below refuses it (or --allow-non-finite keeps it).
      if (Number.isNaN(value) && !/^[+-]?nan$/i.test(cell ?? '')) {
        const problem =
          cell === '' || cell === undefined ? 'is empty' : `holds '${cell}', not a number`;
        throw new InputError(
          `'${path}' row ${r + 2}, column '${header[column]}' ${problem}: feature columns must be numeric (encode categories as numbers, fill or drop missing values).`,
        );
      }
      values[r * featureColumns.length + f] = value;
    });
  });
  const table: Table = {
    features: tensor('float32', [rows.length, featureColumns.length], values),
    featureNames: featureColumns.map((index) => header[index]),
  };
  // Rows named as elsewhere in this file: data row r is row r + 2 (the header is row 1).
  requireFinite(table.features, `'${path}'`, { firstRow: 2, columnNames: table.featureNames });
  if (labelIndex >= 0)
    Object.assign(table, {
      labelName: header[labelIndex],
      ...labelsOf(
        rows.map((row) => row[labelIndex] ?? ''),
        path,
        header[labelIndex],
      ),
    });
  return table;
}

/**
 * The file's text: UTF-8 (csv-parse drops a byte-order mark), or UTF-16 when the file starts with
 * UTF-16's byte-order mark (spreadsheets' "Unicode text"): read as UTF-8, its every other byte is
 * a NUL, which csv-parse reports as a misplaced quote.
 */
function tableText(path: string): string {
  const bytes = readFileSync(path);
  const bigEndian = bytes[0] === 0xfe && bytes[1] === 0xff;
  if (!bigEndian && !(bytes[0] === 0xff && bytes[1] === 0xfe)) return bytes.toString('utf8');
  if (bytes.length % 2 !== 0) {
    const what = `starts as UTF-16 text but has an odd number of bytes (${bytes.length})`;
    throw new InputError(`'${path}' ${what}: it is cut short. Save it again, as UTF-8 CSV.`);
  }
  const units = Buffer.from(bytes.subarray(2));
  return (bigEndian ? units.swap16() : units).toString('utf16le');
}

/**
 * A cell as a decimal number (`12`, `-0.5`, `1e-3`, `inf`, `nan`), NaN otherwise. JavaScript's
 * Number() also reads '0x1F' as 31, '0b11' as 3 and '' as 0: a CSV cell is decimal or not a number.
 */
function decimalNumber(cell: string): number {
  if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(cell)) return Number(cell);
  if (/^[+-]?(inf|infinity)$/i.test(cell)) return cell.startsWith('-') ? -Infinity : Infinity;
  return NaN;
}

/** Integer labels as written; non-numeric names as indices into their sorted distinct values; numbers that are not integers refused. */
function labelsOf(
  cells: string[],
  path: string,
  labelName: string,
): { labels: Tensor; classes?: string[] } {
  if (cells.every((cell) => /^[+-]?\d+$/.test(cell))) {
    const labels = cells.map(Number);
    requireLabels(labels, `column '${labelName}' of '${path}'`);
    return { labels: tensor('int64', [cells.length], labels) };
  }
  const numeric = cells.findIndex(
    (cell) => !Number.isNaN(decimalNumber(cell)) && !/^[+-]?\d+$/.test(cell),
  );
  if (numeric >= 0 && cells.every((cell) => !Number.isNaN(decimalNumber(cell)))) {
    throw new InputError(
      `The labels in column '${labelName}' of '${path}' must be integer classes (or class names); row ${numeric + 2} holds ${cells[numeric]}.`,
    );
  }
  const classes = [...new Set(cells)].sort();
  return {
    labels: tensor(
      'int64',
      [cells.length],
      cells.map((cell) => classes.indexOf(cell)),
    ),
    classes,
  };
}
