/**
 * The first examples of an audit's data, every input, label and attribute cut alike: a quick
 * check on a few rows (`--smoke`, the demo's smoke run) that reads nothing past them.
 */
import type { AuditData } from './data.ts';
import type { Examples } from './examples.ts';

export function firstExamples(data: AuditData, count: number): AuditData {
  const rows = Math.min(count, data.labels.length);
  return {
    ...data,
    inputs: firstRows(data.inputs, rows),
    labels: data.labels.subarray(0, rows),
    attributes: data.attributes.map((attribute) => ({
      ...attribute,
      values: attribute.values.subarray(0, rows),
    })),
  };
}

/** Reads clipped to the first `rows` rows; the pass-through inputs with them. */
function firstRows(examples: Examples, rows: number): Examples {
  const passThrough =
    examples.passThrough &&
    Object.fromEntries(
      Object.entries(examples.passThrough).map(([name, other]) => [name, firstRows(other, rows)]),
    );
  return {
    ...examples,
    rows,
    read: (start, end) => examples.read(Math.min(start, rows), Math.min(end, rows)),
    ...(passThrough ? { passThrough } : {}),
  };
}
