/**
 * The examples inspect reads, from `.npy` files, one per model input (`--input NAME=FILE`; first
 * axis = examples). Every input of an example is read from the same row, so an attention mask or
 * a second image always travels with its example, however the data is batched or sampled.
 */
import { InputError } from '../errors.ts';
import type { NpyFile } from '../data/npy.ts';
import { requireRows } from '../data/validate.ts';
import type { Model } from '../runtime/model.ts';
import type { Dataset } from '../runtime/run.ts';

export function datasetFromFiles(model: Model, files: Record<string, NpyFile>): Dataset {
  const names = model.inputs.map((input) => input.name);
  for (const name of Object.keys(files)) {
    if (!names.includes(name))
      throw new InputError(
        `The model has no input named '${name}': its inputs are ${model.describeInputs()}.`,
      );
  }
  const missing = names.filter((name) => !files[name]);
  if (missing.length)
    throw new InputError(
      `Input${missing.length > 1 ? 's' : ''} ${missing.map((name) => `'${name}'`).join(', ')} missing: the model needs ${model.describeInputs()}. Give each with --input NAME=FILE.npy.`,
    );
  const rows = names.map((name) => files[name].rows);
  if (new Set(rows).size > 1) {
    throw new InputError(
      `The inputs have different numbers of examples (${names.map((name, i) => `'${name}': ${rows[i]}`).join(', ')}): give one row per example in every file.`,
    );
  }
  requireRows(rows[0], `--input '${names[0]}' ('${files[names[0]].path}')`);
  return {
    examples: rows[0],
    read: (start, end) =>
      Object.fromEntries(names.map((name) => [name, files[name].readRows(start, end)])),
  };
}

/** The input a counterfactual transforms: the one named, or the model's first. */
export function transformedInput(model: Model, name: string | undefined): string {
  if (name === undefined) return model.inputs[0].name;
  if (!model.inputs.some((input) => input.name === name))
    throw new InputError(
      `--transform-input '${name}' is not an input of the model: its inputs are ${model.describeInputs()}.`,
    );
  return name;
}
