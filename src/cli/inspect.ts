import { Command } from 'commander';
import { InputError } from '../errors.ts';
import { readTable } from '../data/csv.ts';
import { NpyFile } from '../data/npy.ts';
import { inspectModel, type InspectResult } from '../inspect/inspect.ts';
import { parseMetric } from '../inspect/metric.ts';
import { Model } from '../runtime/model.ts';
import type { Dataset } from '../runtime/run.ts';
import { jsonResult, writeJson } from '../report/json.ts';
import { formatTable } from '../report/table.ts';
import { shapeString, sliceRows, type Tensor } from '../tensor.ts';
import { collect, positiveInteger, runtimeOptions } from './options.ts';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('Take a model apart over a dataset: census of every unit, its role, its importance (mean ablation) and the inputs that drive it.')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--data <file>', 'examples: .npy for the model input (first axis = examples) or .csv (features; with --label-column)')
    .option('--labels <file.npy>', 'class of each example (int64)')
    .option('--label-column <name>', 'CSV data: the label column')
    .option('--hooks <pattern>', 'hooks to inspect (default: every module hook); repeatable', collect)
    .option('--metric <metric>', 'loss, accuracy or logit-diff:A,B', 'loss')
    .option('--top <n>', 'units shown in the summary', '10')
    .option('--batch-size <n>', 'examples per onnxruntime run', '256')
    .option('--json <file>', 'write the full result as JSON (docs/json.md)')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)')
    .addHelpText('after', `
A unit's importance is how much the metric drops when the unit is mean-ablated (by default the
mean increase in loss), with a 95% confidence interval over the examples.

Example:
  teardown inspect examples/mnist-mlp.onnx --data digits.npy --labels labels.npy --json inspect.json`)
    .action(async (modelPath: string, options) => {
      const runtime = runtimeOptions(options);
      const model = Model.load(modelPath, runtime);
      const { data, labels } = loadData(model, options);
      const result = await inspectModel(model, data, labels, {
        hooks: options.hooks, metric: parseMetric(options.metric), batchSize: positiveInteger(options.batchSize, '--batch-size'), progress: true,
      });
      printSummary(model.path, result, positiveInteger(options.top, '--top'));
      if (options.json) writeJson(options.json, jsonResult('inspect', { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads }, result));
      await model.release();
    });
}

function loadData(model: Model, options: { data: string; labels?: string; labelColumn?: string }): { data: Dataset; labels?: Tensor } {
  const input = model.inputs[0].name;
  if (model.inputs.length !== 1) throw new InputError(`inspect feeds one input; the model has ${model.inputs.length} (${model.describeInputs()}).`);
  let labels = options.labels ? new NpyFile(options.labels).readAll() : undefined;
  if (options.data.endsWith('.csv')) {
    const table = readTable(options.data, { labelColumn: options.labelColumn });
    labels ??= table.labels;
    return { data: { examples: table.features.dims[0], read: (start, end) => ({ [input]: sliceRows(table.features, start, end) }) }, labels };
  }
  if (options.labelColumn) throw new InputError('--label-column applies to .csv data; with .npy data give --labels FILE.npy.');
  const file = new NpyFile(options.data);
  return { data: { examples: file.rows, read: (start, end) => ({ [input]: file.readRows(start, end) }) }, labels };
}

function printSummary(path: string, result: InspectResult, top: number): void {
  const metric = result.metric.kind === 'logit-diff' ? `logit ${result.metric.a} − logit ${result.metric.b}` : result.metric.kind;
  console.log(`${path}: ${result.examples} examples; importance = drop in ${metric === 'loss' ? '−loss (i.e. increase in loss)' : metric} when a unit is mean-ablated.`);
  console.log(`\nHooks\n${formatTable(['hook', 'shape', 'units', 'ablating the whole hook'], result.hooks.map((hook) => [
    hook.hook, shapeString(hook.shape), String(hook.units), `${hook.wholeHook.importance.toFixed(4)} (95% CI ${hook.wholeHook.interval.map((v) => v.toFixed(4)).join(' … ')})`,
  ]))}`);
  console.log(`\nThe ${Math.min(top, result.units.length)} units that matter most\n${formatTable(['unit', 'importance (95% CI)', 'responds to', 'driven by inputs', 'mean', 'active'], result.units.slice(0, top).map((unit) => [
    `${unit.hook}#${unit.unit}`,
    `${unit.importance.toFixed(4)} (${unit.interval.map((v) => v.toFixed(4)).join(' … ')})`,
    unit.role ? `class ${unit.role.label} (r = ${unit.role.correlation.toFixed(2)})` : '—',
    unit.inputs ? unit.inputs.slice(0, 6).join(', ') || '—' : '—',
    unit.census.mean.toFixed(3),
    `${(100 * unit.census.fractionActive).toFixed(0)}%`,
  ]))}`);
  const dead = result.units.filter((unit) => unit.census.dead).length;
  if (dead) console.log(`\n${dead} unit(s) never fired (dead) on these examples.`);
}
