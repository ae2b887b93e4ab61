/**
 * A whole dataset through a model, in batches: the outputs and cached hooks stream into .npy
 * files (one per output and per hook, named after it, with index.json mapping names to files),
 * so datasets larger than memory work. Nothing appears in the output folder unless every file
 * was written.
 */
import { escapeFileName, StagedFolder } from '../files.ts';
import { NpyFile, NpyWriter } from '../data/npy.ts';
import { InputError } from '../errors.ts';
import type { Intervention } from '../graph/interventions.ts';
import { OutputChangeTracker, type OutputChange } from '../inspect/compare.ts';
import { Progress } from '../report/progress.ts';
import { shapeString, type Tensor } from '../tensor.ts';
import type { Model } from './model.ts';
import { prepareInterventions, run, type Dataset } from './run.ts';
import { probeHookShapes } from './probe.ts';

export interface DatasetRunOptions {
  cache?: readonly string[];
  interventions?: Intervention[];
  /** Reference examples for mean and resample ablations (default: the inputs). */
  reference?: Record<string, NpyFile>;
  /** Patch values streamed with the inputs, by intervention index: rows are examples. */
  patchFiles?: Map<number, NpyFile>;
  batchSize: number;
  out: string;
  progress?: boolean;
  /** With interventions, also run the unedited model and measure what changed (default true). */
  compare?: boolean;
}

export interface DatasetRunSummary {
  examples: number;
  batches: number;
  outputs: Record<string, { file: string; shape: number[]; dtype: string }>;
  hooks: Record<string, { file: string; shape: number[]; dtype: string }>;
  /** Per model output, what the interventions changed (when compared). */
  changes?: Record<string, OutputChange>;
}

export async function runDataset(model: Model, inputs: Record<string, NpyFile>, options: DatasetRunOptions): Promise<DatasetRunSummary> {
  const examples = checkRowCounts(inputs, options.patchFiles);
  const dataset = filesDataset(inputs, examples);
  // A model exported with a fixed batch size runs in batches of exactly that size.
  const fixedBatch = model.inputs.map((input) => input.dims?.[0]).find((dim): dim is number => typeof dim === 'number');
  const batchSize = fixedBatch ?? options.batchSize;
  if (fixedBatch && examples % fixedBatch !== 0) {
    throw new InputError(`The model takes exactly ${fixedBatch} examples per run (its inputs have a fixed first axis) but the inputs have ${examples}: give a multiple of ${fixedBatch}, or re-export the model with a dynamic batch axis.`);
  }
  const sample = dataset.read(0, Math.min(fixedBatch ?? 1, examples));
  model.checkFeeds(sample);
  const reference = options.reference && Object.keys(options.reference).length ? filesDataset(options.reference, checkRowCounts(options.reference)) : dataset;
  model.checkFeeds(reference.read(0, Math.min(fixedBatch ?? 1, reference.examples)));
  const hooks = options.cache ? model.hooks.match(options.cache) : [];
  // Values without a batch axis (weights, shapes) are the same in every batch: written once.
  const shapes = await probeHookShapes(model, sample, hooks);
  const perExample = (name: string) => {
    const first = shapes.get(name)?.[0];
    return fixedBatch ? first === fixedBatch : /^batch/.test(String(first));
  };
  // Mean and resample references stream over the whole dataset once, before the batches.
  const prepared = await prepareInterventions(model, options.interventions ?? [], reference, { batchSize });

  const folder = new StagedFolder(options.out);
  const writers = new Map<string, { writer: NpyWriter; file: string; kind: 'outputs' | 'hooks'; name: string; last?: Tensor }>();
  const writerFor = (kind: 'outputs' | 'hooks', name: string) => {
    const key = `${kind}/${name}`;
    if (!writers.has(key)) {
      const file = `${kind}/${escapeFileName(name)}.npy`;
      writers.set(key, { writer: new NpyWriter(folder.pathOf(file)), file, kind, name });
    }
    return writers.get(key)!;
  };
  const trackers = new Map<string, OutputChangeTracker>();
  const compare = (options.compare ?? true) && (options.interventions ?? []).length > 0;
  const batches = Math.ceil(examples / batchSize);
  const progress = new Progress('run', batches, options.progress);
  try {
    for (let start = 0; start < examples; start += batchSize) {
      const end = Math.min(examples, start + batchSize);
      const feeds = dataset.read(start, end);
      const interventions = prepared.with(withPatchRows(prepared.interventions, options.patchFiles, start, end));
      const result = await run(model, feeds, { cache: hooks.map((hook) => hook.name), interventions, exampleOffset: start });
      for (const [name, value] of Object.entries(result.outputs)) append(writerFor('outputs', name), value);
      for (const [name, value] of result.cache) if (start === 0 || perExample(name)) append(writerFor('hooks', name), value);
      if (compare) {
        const original = await run(model, feeds);
        for (const [name, value] of Object.entries(original.outputs)) {
          if (!trackers.has(name)) trackers.set(name, new OutputChangeTracker());
          trackers.get(name)!.add(value, result.outputs[name]);
        }
      }
      progress.tick();
    }
    progress.finish();
    const summary: DatasetRunSummary = { examples, batches, outputs: {}, hooks: {} };
    if (compare) summary.changes = Object.fromEntries([...trackers].map(([name, tracker]) => [name, tracker.summary()]));
    for (const entry of writers.values()) {
      entry.writer.close();
      const streamed = entry.kind === 'outputs' || perExample(entry.name);
      summary[entry.kind][entry.name] = { file: entry.file, shape: streamed ? [examples, ...entry.last!.dims.slice(1)] : entry.last!.dims, dtype: entry.last!.dtype };
    }
    folder.write('index.json', `${JSON.stringify({ examples, outputs: summary.outputs, hooks: summary.hooks, changes: summary.changes }, null, 2)}\n`);
    folder.commit();
    return summary;
  } catch (error) {
    for (const entry of writers.values()) entry.writer.abandon();
    folder.abandon();
    throw error;
  }
}

function filesDataset(files: Record<string, NpyFile>, examples: number): Dataset {
  return { examples, read: (start, end) => Object.fromEntries(Object.entries(files).map(([name, file]) => [name, file.readRows(start, end)])) };
}

function append(entry: { writer: NpyWriter; last?: Tensor }, value: Tensor): void {
  entry.writer.append(value);
  entry.last = value;
}

function checkRowCounts(inputs: Record<string, NpyFile>, patchFiles?: Map<number, NpyFile>): number {
  const counts = new Set(Object.values(inputs).map((file) => file.rows));
  if (counts.size !== 1) {
    throw new InputError(`The input files have different numbers of examples: ${Object.entries(inputs).map(([name, file]) => `${name} ${shapeString(file.header.dims)}`).join(', ')}. Give every input the same number of rows.`);
  }
  const examples = [...counts][0];
  for (const file of patchFiles?.values() ?? []) {
    if (file.rows !== examples && file.rows !== 1) {
      throw new InputError(`Patch file '${file.path}' has ${file.rows} rows but the inputs have ${examples}: give one row per example, or a single row for all.`);
    }
  }
  return examples;
}

/** Patches read from files take the rows of the current batch (a one-row file applies to all). */
function withPatchRows(interventions: readonly Intervention[], patchFiles: Map<number, NpyFile> | undefined, start: number, end: number): readonly Intervention[] {
  if (!patchFiles || patchFiles.size === 0) return interventions;
  return interventions.map((intervention, index) => {
    const file = patchFiles.get(index);
    if (!file || intervention.kind !== 'patch') return intervention;
    return { ...intervention, value: file.rows === 1 ? file.readRows(0, 1) : file.readRows(start, end) };
  });
}
