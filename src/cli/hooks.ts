import { Command } from 'commander';
import { listHooks } from '../inspect/list-hooks.ts';
import { Model } from '../runtime/model.ts';
import { jsonResult } from '../report/json.ts';
import { formatTable } from '../report/table.ts';
import { shapeString } from '../tensor.ts';
import { requireRows } from '../data/validate.ts';
import {
  collect,
  dataOption,
  emitJson,
  modelInputs,
  parseDims,
  routeOutput,
  runtimeOptions,
  withCommonOptions,
} from './options.ts';
import { print } from './io.ts';

export function hooksCommand(): Command {
  return withCommonOptions(
    new Command('hooks')
      .description(
        'List the hooks of a model: module outputs (blocks.0.mlp.1) and every raw ONNX value, with op, dtype and shape.',
      )
      .argument('<model>', 'ONNX model file')
      .option(
        '--input <name=file.npy>',
        'a sample input to probe shapes with (first example used); repeatable',
        collect,
      )
      .addOption(dataOption('a sample input (first example used)'))
      .option(
        '--dim <name=size>',
        'size for a symbolic input axis other than the batch (default 8); repeatable',
        collect,
      )
      .option('--modules', 'list module hooks only'),
    'write the listing as JSON (docs/json.md)',
  )
    .addHelpText('after', '\nExample:\n  teardown hooks examples/mnist-mlp.onnx --modules')
    .action(async (modelPath: string, options) => {
      routeOutput(options);
      const runtime = runtimeOptions(options);
      const model = Model.load(modelPath, runtime);
      const inputs = modelInputs(model, options, false);
      // The first example of each file probes the shapes: a file without one cannot.
      for (const [name, file] of Object.entries(inputs))
        requireRows(file.rows, `--input '${name}' ('${file.path}')`);
      const feeds = Object.keys(inputs).length
        ? Object.fromEntries(
            Object.entries(inputs).map(([name, file]) => [name, file.readRows(0, 1)]),
          )
        : undefined;
      const listing = await listHooks(model, feeds, parseDims(options.dim));
      const shown = options.modules
        ? listing.hooks.filter((hook) => hook.kind === 'module')
        : listing.hooks;
      const examples = (hook: (typeof shown)[number]) =>
        hook.batchAxis === null ? 'none' : `axis ${hook.batchAxis}`;
      const callsOf = new Map<string, number>();
      for (const hook of listing.hooks)
        if (hook.call) callsOf.set(hook.call.module, (callsOf.get(hook.call.module) ?? 0) + 1);
      // A module called k times (ResNet's relu) has one hook per call: relu, relu_1, ... (docs/hooks.md).
      const call = (hook: (typeof shown)[number]) =>
        hook.call && callsOf.get(hook.call.module)! > 1
          ? `${hook.call.module} call ${hook.call.index + 1} of ${callsOf.get(hook.call.module)}`
          : '';
      const row = (hook: (typeof shown)[number]) => [
        hook.name,
        hook.op,
        hook.dtype ?? '?',
        shapeString(hook.shape),
        examples(hook),
        call(hook),
        hook.kind === 'module' && hook.value !== hook.name
          ? `= ${hook.value}${hook.note ? `; ${hook.note}` : ''}`
          : '',
      ];
      const modules = shown.filter((hook) => hook.kind === 'module');
      const values = shown.filter((hook) => hook.kind === 'value');
      print(
        `${model.path}: inputs ${model.describeInputs()}; outputs ${model.outputNames.join(', ')}`,
      );
      for (const [dim, size] of Object.entries(listing.assumedDims))
        print(`(symbolic axis '${dim}' probed at ${size}; set it with --dim ${dim}=N)`);
      if (modules.length)
        print(
          `\nModule hooks (${modules.length})\n${formatTable(['hook', 'op', 'dtype', 'shape', 'examples', 'PyTorch call', 'value'], modules.map(row))}`,
        );
      if (values.length)
        print(
          `\nValues (${values.length})\n${formatTable(['hook', 'op', 'dtype', 'shape', 'examples', '', ''], values.map(row))}`,
        );
      if (!modules.length && !options.modules)
        print(
          '\nNo module hooks: the node names carry no PyTorch module scopes. Every raw value above is a hook.',
        );
      const shared = shown.filter((hook) => hook.batchAxis === null);
      if (shared.length)
        print(
          `\n${shared.length} hook(s) have no batch axis (examples: none): shape arithmetic, constants and tables such as a position embedding, the same for every example. Ablation over examples leaves them unchanged; zero ablation and patches change them for every example.`,
        );
      for (const absent of listing.absent)
        print(`\nAbsent module '${absent.name}': ${absent.reason}`);
      if (listing.notes.length > 2) {
        const batchNorms = model.hooks.foldings.map(
          (folding) => folding.batchNorm ?? `the BatchNorm after ${folding.conv}`,
        );
        print(
          `\nNote: the exporter folded ${batchNorms.length} BatchNorms into the Convs before them (${batchNorms.slice(0, 3).join(', ')}, ...): each such Conv's hook carries its BatchNorm's output (see the value column), and the BatchNorms have no hook of their own.`,
        );
      } else for (const note of listing.notes) print(`\nNote: ${note}`);
      if (options.json) {
        emitJson(
          options.json,
          jsonResult(
            'hooks',
            { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads },
            {
              inputs: model.inputs,
              outputs: model.outputNames,
              hooks: listing.hooks,
              absent: listing.absent,
              notes: listing.notes,
              assumedDims: listing.assumedDims,
            },
          ),
        );
      }
      await model.release();
    });
}
