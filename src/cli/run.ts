import { Command } from 'commander';
import { Model } from '../runtime/model.ts';
import { runDataset } from '../runtime/run-dataset.ts';
import { jsonResult } from '../report/json.ts';
import { percent } from '../stats.ts';
import { shapeString } from '../tensor.ts';
import { parseInterventionFlags } from './interventions.ts';
import {
  cliProgress,
  collect,
  dataOption,
  emitJson,
  modelInputs,
  numberOption,
  parseInputs,
  routeOutput,
  runtimeOptions,
  withCommonOptions,
} from './options.ts';
import { print } from './io.ts';

export function runCommand(): Command {
  return withCommonOptions(
    new Command('run')
      .description(
        'Run a model on .npy inputs, caching hooks and applying interventions; writes one .npy per output and cached hook.',
      )
      .argument('<model>', 'ONNX model file')
      .option('--input <name=file.npy>', 'model input (first axis = examples); repeatable', collect)
      .addOption(dataOption())
      .option('--cache <pattern>', "hook name or glob ('blocks.*', '*'); repeatable", collect)
      .option(
        '--ablate <spec>',
        "'HOOK [units=0,3] [positions=-1] [method=zero|mean|resample] [seed=N] [unit-axis=N]'; repeatable",
        collect,
      )
      .option(
        '--patch <spec>',
        "'HOOK value=FILE.npy [units=...] [positions=...]'; repeatable",
        collect,
      )
      .option('--scale <spec>', "'HOOK factor=X [units=...] [positions=...]'; repeatable", collect)
      .option(
        '--add <spec>',
        "'HOOK vector=FILE.npy [scale=X] [units=...] [positions=...]': add X·vector (a steering vector, one value per unit); repeatable",
        collect,
      )
      .option(
        '--project-out <spec>',
        "'HOOK direction=FILE.npy [positions=...]': remove the component along the direction; repeatable",
        collect,
      )
      .option('--interventions <file.json>', 'interventions as a JSON array (see README)')
      .option(
        '--reference <name=file.npy>',
        "reference examples for mean and resample ablations (default: the run's inputs); repeatable",
        collect,
      )
      .requiredOption('--out <dir>', 'folder for outputs/, hooks/ and index.json')
      .addOption(
        numberOption('--batch-size <n>', 'examples per onnxruntime run', 'positive integer', 256),
      )
      .option(
        '--no-compare',
        'with interventions, skip the unedited run that measures what they changed',
      ),
    'write a JSON summary (docs/json.md)',
  )
    .addHelpText(
      'after',
      `
Interventions take the hook name first, then settings, in one argument, so names with ':' and '/' work:
  --ablate 'act1 units=0,3 method=mean'    --patch 'blocks.0 value=b0.npy positions=3'    --scale 'onnx::Conv_28 factor=0'
  --add 'blocks.0 vector=steer.npy scale=4 positions=-1'    --project-out 'blocks.0 direction=d.npy'
Mean and resample ablations take their reference examples from --reference, or else the run's own inputs.

Examples:
  teardown data mnist --flat --out digits
  teardown run examples/mnist-mlp.onnx --input input=digits/test.npy --cache 'act*' --ablate 'act1 units=0:8' --out out/`,
    )
    .action(async (modelPath: string, options) => {
      routeOutput(options);
      const runtime = runtimeOptions(options);
      const model = Model.load(modelPath, runtime);
      const inputs = modelInputs(model, options);
      const { interventions, patchFiles, vectorSources } = parseInterventionFlags(options);
      const summary = await runDataset(model, inputs, {
        cache: options.cache,
        interventions,
        patchFiles,
        reference: parseInputs(options.reference),
        out: options.out,
        batchSize: options.batchSize,
        compare: options.compare,
        onProgress: cliProgress(options),
      });
      print(
        `Ran ${summary.examples} examples in ${summary.batches} batch(es)${interventions.length ? ` with ${interventions.length} intervention(s)` : ''}; wrote ${options.out}/index.json and:`,
      );
      for (const [kind, files] of [
        ['output', summary.outputs],
        ['hook', summary.hooks],
      ] as const) {
        for (const [name, entry] of Object.entries(files))
          print(`  ${kind} ${name} ${entry.dtype} ${shapeString(entry.shape)} → ${entry.file}`);
      }
      for (const [name, change] of Object.entries(summary.changes ?? {})) {
        const flips =
          change.argmaxFlipRate === undefined
            ? ''
            : `; top class changed on ${percent(change.argmaxFlipRate)} of ${change.rows} rows (95% CI ${percent(change.argmaxFlipInterval![0])}–${percent(change.argmaxFlipInterval![1])})`;
        print(
          `What the interventions changed in '${name}': mean |Δ| ${change.meanAbsChange.toPrecision(3)}, max |Δ| ${change.maxAbsChange.toPrecision(3)}${flips}.`,
        );
      }
      if (options.json) {
        emitJson(
          options.json,
          jsonResult(
            'run',
            { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads },
            {
              examples: summary.examples,
              outputs: summary.outputs,
              hooks: summary.hooks,
              changes: summary.changes,
              interventions: interventions.map((intervention, index) =>
                intervention.kind === 'patch'
                  ? { ...intervention, value: patchFiles.get(index)!.path }
                  : { ...intervention, ...vectorSources.get(index) },
              ),
            },
          ),
        );
      }
      await model.release();
    });
}
