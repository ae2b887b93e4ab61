/**
 * A whole dataset through a model, in batches: the outputs and cached hooks stream into .npy
 * files (one per output and per hook, named after it, with index.json mapping names to files),
 * so datasets larger than memory work. Nothing appears in the output folder unless every file
 * was written.
 */
import { escapeFileName, StagedFolder } from '../files.ts';
import { encodeNpy, NpyFile, NpyWriter } from '../data/npy.ts';
import { requireRows } from '../data/validate.ts';
import { InputError } from '../errors.ts';
import type { Intervention } from '../graph/interventions.ts';
import { trackProgress, type ProgressOptions } from '../progress.ts';
import { shapeString, type DType, type Feeds, type Tensor } from '../tensor.ts';
import type { Hook } from '../graph/hooks.ts';
import {
  batchLayoutOf,
  examplesFirst,
  fromExamplesFirst,
  type BatchLayout,
} from '../graph/units.ts';
import type { Model } from './model.ts';
import { OutputChangeTracker, type OutputChange } from './output-change.ts';
import { prepareInterventions, run, type Dataset } from './run.ts';
import { probeHookShapes } from './probe.ts';
import { releaseRunValues } from './release.ts';

export interface DatasetRunOptions extends ProgressOptions {
  cache?: readonly string[];
  interventions?: Intervention[];
  /** Reference examples for mean and resample ablations (default: the inputs). */
  reference?: Record<string, NpyFile>;
  /** Patch values streamed with the inputs, by intervention index: rows are examples. */
  patchFiles?: Map<number, NpyFile>;
  batchSize: number;
  out: string;
  /** With interventions, also run the unedited model and measure what changed (default true). */
  compare?: boolean;
}

/**
 * A value written to a file: `shape` is the file's, examples first; `batchAxis` is the axis the
 * value itself holds them on (moved to the front in the file), null when it has none (then the
 * file holds the value once).
 */
export interface StoredValue {
  file: string;
  shape: number[];
  dtype: string;
  batchAxis: number | null;
}

export interface DatasetRunSummary {
  examples: number;
  batches: number;
  outputs: Record<string, StoredValue>;
  hooks: Record<string, StoredValue>;
  /** Per model output, what the interventions changed (when compared). */
  changes?: Record<string, OutputChange>;
}

export async function runDataset(
  model: Model,
  inputs: Record<string, NpyFile>,
  options: DatasetRunOptions,
): Promise<DatasetRunSummary> {
  const examples = checkRowCounts(inputs, options.patchFiles);
  const dataset = filesDataset(inputs, examples);
  // A model exported with a fixed batch size runs in batches of exactly that size.
  const fixedBatch = model.inputs
    .map((input) => input.dims?.[0])
    .find((dim): dim is number => typeof dim === 'number');
  const batchSize = fixedBatch ?? options.batchSize;
  if (fixedBatch && examples % fixedBatch !== 0) {
    throw new InputError(
      `The model takes exactly ${fixedBatch} examples per run (its inputs have a fixed first axis) but the inputs have ${examples}: give a multiple of ${fixedBatch}, or re-export the model with a dynamic batch axis.`,
    );
  }
  const sample = dataset.read(0, Math.min(fixedBatch ?? 1, examples));
  model.checkFeeds(sample);
  const reference =
    options.reference && Object.keys(options.reference).length
      ? filesDataset(options.reference, checkRowCounts(options.reference))
      : dataset;
  model.checkFeeds(reference.read(0, Math.min(fixedBatch ?? 1, reference.examples)));
  const hooks = options.cache ? model.hooks.match(options.cache) : [];
  const patched = (options.interventions ?? [])
    .filter((intervention) => intervention.kind === 'patch')
    .map((intervention) => model.hooks.resolve(intervention.hook));
  const layoutOfValue = await batchLayouts(model, sample, [...hooks, ...patched], fixedBatch);
  const layoutOf = (kind: 'outputs' | 'hooks', name: string) =>
    layoutOfValue(kind === 'outputs' ? name : model.hooks.resolve(name).value);
  const patchLayout = (hook: string) => layoutOfValue(model.hooks.resolve(hook).value);
  // Mean and resample references stream over the whole dataset once, before the batches.
  const prepared = await prepareInterventions(model, options.interventions ?? [], reference, {
    batchSize,
  });

  const folder = new StagedFolder(options.out);
  const writers = new Map<
    string,
    { writer: NpyWriter; file: string; kind: 'outputs' | 'hooks'; name: string } & Appended
  >();
  const writerFor = (kind: 'outputs' | 'hooks', name: string) => {
    const key = `${kind}/${name}`;
    if (!writers.has(key)) {
      const file = `${kind}/${escapeFileName(name)}.npy`;
      writers.set(key, { writer: new NpyWriter(folder.pathOf(file)), file, kind, name, rows: 0 });
    }
    return writers.get(key)!;
  };
  const once = new Map<
    string,
    { kind: 'outputs' | 'hooks'; name: string; file: string; value: Tensor }
  >();
  // Values with a batch axis stream into their file; the others are written once, as they are.
  // Returns whether the value was written (and is no longer needed).
  const store = (kind: 'outputs' | 'hooks', name: string, value: Tensor): boolean => {
    const layout = layoutOf(kind, name);
    if (layout) append(writerFor(kind, name), value, layout);
    else if (!once.has(`${kind}/${name}`))
      once.set(`${kind}/${name}`, {
        kind,
        name,
        file: `${kind}/${escapeFileName(name)}.npy`,
        value,
      });
    return layout !== undefined;
  };
  const trackers = new Map<string, OutputChangeTracker>();
  const compare = (options.compare ?? true) && (options.interventions ?? []).length > 0;
  const batches = Math.ceil(examples / batchSize);
  const progress = trackProgress('run', examples, options); // ticks in examples
  // One batch's values live in this function's frame alone. Inlined in the loop below, the
  // previous batch stayed reachable while the next one ran (two batches of ArrayBuffers after
  // each batch, even after gc(): the suspended async frame kept the last iteration's values).
  const runBatch = async (start: number, end: number) => {
    const feeds = dataset.read(start, end);
    const interventions = prepared.with(
      withPatchRows(prepared.interventions, options.patchFiles, start, end, patchLayout),
    );
    const result = await run(model, feeds, {
      cache: hooks.map((hook) => hook.name),
      interventions,
      exampleOffset: start,
    });
    const written: Tensor[] = [];
    for (const [name, value] of Object.entries(result.outputs))
      if (store('outputs', name, value)) written.push(value);
    for (const [name, value] of result.cache) if (store('hooks', name, value)) written.push(value);
    if (compare) {
      const original = await run(model, feeds);
      for (const [name, value] of Object.entries(original.outputs)) {
        if (!trackers.has(name)) trackers.set(name, new OutputChangeTracker());
        trackers.get(name)!.add(value, result.outputs[name]);
      }
      written.push(...Object.values(original.outputs));
    }
    // Freed before the next batch runs, not when collected (runtime/release.ts).
    await releaseRunValues(written);
  };
  try {
    for (let start = 0; start < examples; start += batchSize) {
      const end = Math.min(examples, start + batchSize);
      await runBatch(start, end);
      progress.tick(end - start);
    }
    progress.finish();
    const summary: DatasetRunSummary = { examples, batches, outputs: {}, hooks: {} };
    if (compare)
      summary.changes = Object.fromEntries(
        [...trackers].map(([name, tracker]) => [name, tracker.summary()]),
      );
    for (const entry of writers.values()) {
      entry.writer.close();
      summary[entry.kind][entry.name] = {
        file: entry.file,
        shape: [entry.rows, ...entry.rowDims!],
        dtype: entry.dtype!,
        batchAxis: layoutOf(entry.kind, entry.name)!.axis,
      };
    }
    for (const { kind, name, file, value } of once.values()) {
      folder.write(file, encodeNpy(value));
      summary[kind][name] = { file, shape: value.dims, dtype: value.dtype, batchAxis: null };
    }
    folder.write(
      'index.json',
      `${JSON.stringify({ examples, outputs: summary.outputs, hooks: summary.hooks, changes: summary.changes }, null, 2)}\n`,
    );
    folder.commit();
    return summary;
  } catch (error) {
    for (const entry of writers.values()) entry.writer.abandon();
    folder.abandon();
    throw error;
  }
}

/**
 * Where each value (of `hooks` and the model's outputs) holds its examples. Files hold them on
 * their first axis whatever axis the value has them on; values without a batch axis (weights,
 * shapes, position tables) are the same in every batch and are written once.
 */
async function batchLayouts(
  model: Model,
  sample: Feeds,
  hooks: readonly Hook[],
  fixedBatch: number | undefined,
): Promise<(value: string) => BatchLayout | undefined> {
  const outputHooks = model.outputNames.map((name) =>
    model.hooks.hooks.find((hook) => hook.value === name)!,
  );
  const probed = await probeHookShapes(model, sample, [...hooks, ...outputHooks]);
  const shapes = new Map(
    [...hooks, ...outputHooks].map((hook) => [hook.value, probed.get(hook.name)!]),
  );
  return (value) => {
    const dims = shapes.get(value)!;
    // A model exported with a fixed batch size: a value whose first axis has that size holds the examples there.
    if (fixedBatch)
      return dims[0] === fixedBatch ? { axis: 0, perExample: 1, interleaved: false } : undefined;
    return batchLayoutOf(dims);
  };
}

function filesDataset(files: Record<string, NpyFile>, examples: number): Dataset {
  return {
    examples,
    read: (start, end) =>
      Object.fromEntries(
        Object.entries(files).map(([name, file]) => [name, file.readRows(start, end)]),
      ),
  };
}

/**
 * What a file's summary needs of the rows appended to it: their count, each row's dims and dtype
 * (not the last batch itself, which would keep every hook's previous batch alive during the next run).
 */
interface Appended {
  rows: number;
  rowDims?: number[];
  dtype?: DType;
}

/** Appends the value with its examples moved to the first axis (the file's rows). */
function append(entry: { writer: NpyWriter } & Appended, value: Tensor, layout: BatchLayout): void {
  const rows = examplesFirst(value, layout);
  entry.writer.append(rows);
  entry.rowDims = rows.dims.slice(1);
  entry.dtype = rows.dtype;
  entry.rows += rows.dims[0] ?? 1;
}

function checkRowCounts(
  inputs: Record<string, NpyFile>,
  patchFiles?: Map<number, NpyFile>,
): number {
  const counts = new Set(Object.values(inputs).map((file) => file.rows));
  if (counts.size !== 1) {
    throw new InputError(
      `The input files have different numbers of examples: ${Object.entries(inputs)
        .map(([name, file]) => `${name} ${shapeString(file.header.dims)}`)
        .join(', ')}. Give every input the same number of rows.`,
    );
  }
  const examples = [...counts][0];
  requireRows(
    examples,
    `The input file${Object.keys(inputs).length > 1 ? 's' : ''} ${Object.values(inputs)
      .map((file) => `'${file.path}'`)
      .join(', ')}`,
  );
  for (const file of patchFiles?.values() ?? []) {
    if (file.rows !== examples && file.rows !== 1) {
      throw new InputError(
        `Patch file '${file.path}' has ${file.rows} rows but the inputs have ${examples}: give one row per example, or a single row for all.`,
      );
    }
  }
  return examples;
}

/**
 * Patches read from files take the rows of the current batch (a one-row file applies to all),
 * moved to the axis on which the hook holds its examples.
 */
function withPatchRows(
  interventions: readonly Intervention[],
  patchFiles: Map<number, NpyFile> | undefined,
  start: number,
  end: number,
  layoutOf: (hook: string) => BatchLayout | undefined,
): readonly Intervention[] {
  if (!patchFiles || patchFiles.size === 0) return interventions;
  return interventions.map((intervention, index) => {
    const file = patchFiles.get(index);
    if (!file || intervention.kind !== 'patch') return intervention;
    const layout = layoutOf(intervention.hook);
    if (!layout) return { ...intervention, value: file.readAll() };
    const rows = file.rows === 1 ? file.readRows(0, 1) : file.readRows(start, end);
    if (layout.perExample > 1) {
      throw new InputError(
        `Patching hook '${intervention.hook}' from a file: the hook holds ${layout.perExample} entries per example on one axis (the exporter merged the batch with another axis), which files of one row per example cannot express. Patch a hook with a batch axis of its own, or patch through the library with a value of the hook's own shape.`,
      );
    }
    return { ...intervention, value: fromExamplesFirst(rows, layout) };
  });
}
