import { Command, Option } from 'commander';
import { InputError } from '../errors.ts';
import { NpyFile } from '../data/npy.ts';
import { datasetGradients, type DatasetGradientSummary } from '../autodiff/dataset-gradients.ts';
import type { LossKind } from '../autodiff/loss.ts';
import { Model } from '../runtime/model.ts';
import { jsonResult } from '../report/json.ts';
import { shapeString } from '../tensor.ts';
import {
  cliProgress,
  collect,
  dataOption,
  emitJson,
  modelInputs,
  numberOption,
  routeOutput,
  runtimeOptions,
  withCommonOptions,
} from './options.ts';
import { print } from './io.ts';

export function gradCommand(): Command {
  return withCommonOptions(
    new Command('grad')
      .description(
        'Gradients of a loss with respect to inputs, parameters or hooks; one .npy per gradient.',
      )
      .argument('<model>', 'ONNX model file')
      .option('--input <name=file.npy>', 'model input (first axis = examples); repeatable', collect)
      .addOption(dataOption())
      .option(
        '--labels <file.npy>',
        'targets: int64 class indices (cross-entropy) or values shaped like the output (mse)',
      )
      .addOption(
        new Option('--target <file.npy>', 'the same as --labels (its older name)').hideHelp(),
      )
      .option('--loss <kind>', 'cross-entropy or mse', 'cross-entropy')
      .option(
        '--wrt <what>',
        "'input', 'params', or a hook name or pattern; repeatable (default: params)",
        collect,
      )
      .option('--output <name>', 'the model output the loss scores (default: the first)')
      .option(
        '--loss-positions <which>',
        "cross-entropy on sequences: 'all' positions or the 'last'",
        'all',
      )
      .addOption(
        numberOption(
          '--ignore-index <n>',
          "cross-entropy: targets equal to this are left out (PyTorch's ignore_index)",
          'integer',
          -100,
        ),
      )
      .requiredOption('--out <dir>', 'folder for <name>.npy per gradient and index.json')
      .addOption(
        numberOption(
          '--batch-size <n>',
          'examples per onnxruntime run (default: all at once); the loss stays the dataset mean',
          'positive integer',
        ),
      ),
    'write a JSON summary (docs/json.md)',
  )
    .addHelpText(
      'after',
      `
The loss is the mean over every scored position (every example, and every sequence position or
the last; targets equal to --ignore-index left out), as PyTorch's F.cross_entropy on flattened
logits, or over every element, as F.mse_loss; the output says over how many. When the scored output
is already a Softmax or LogSoftmax over its classes, cross-entropy is taken on the logits before it
(and the output says so).

Parameters are named as in PyTorch: nn.Linear weights the exporter stored transposed are transposed
back (<module>.weight), a tied weight's uses are summed into one gradient, and a Conv with a
BatchNorm folded in by the exporter is named for both, '<conv>.weight (+<batchnorm> folded)': its
gradient is that of the fused Conv (torch.nn.utils.fusion.fuse_conv_bn_eval). Other parameters keep
their initializer names. One <name>.npy per gradient, the name escaped where unsafe in a file name
(index.json maps names to files).

Examples:
  teardown data mnist --flat --out digits
  teardown grad examples/mnist-mlp.onnx --data digits/test.npy --labels digits/test-labels.npy --wrt params --wrt input --out grads/`,
    )
    .action(async (modelPath: string, options) => {
      routeOutput(options);
      if (options.labels && options.target)
        throw new InputError('--target is the older name of --labels: give one of them.');
      const labels: string | undefined = options.labels ?? options.target;
      if (!labels)
        throw new InputError(
          'Give --labels FILE.npy: int64 class indices (cross-entropy) or values shaped like the output (mse).',
        );
      const runtime = runtimeOptions(options);
      if (!['cross-entropy', 'mse'].includes(options.loss))
        throw new InputError(`--loss must be cross-entropy or mse, got '${options.loss}'.`);
      if (!['all', 'last'].includes(options.lossPositions))
        throw new InputError(
          `--loss-positions must be all or last, got '${options.lossPositions}'.`,
        );
      const ignoreIndex: number | undefined =
        options.loss === 'cross-entropy' ? options.ignoreIndex : undefined;
      const model = Model.load(modelPath, runtime);
      if (options.output !== undefined && !model.outputNames.includes(options.output)) {
        throw new InputError(
          `--output '${options.output}' is not an output of '${modelPath}'; its outputs are ${model.outputNames.map((name) => `'${name}'`).join(', ')}.`,
        );
      }
      const summary = await datasetGradients(
        model,
        modelInputs(model, options),
        new NpyFile(labels),
        {
          loss: {
            kind: options.loss as LossKind,
            output: options.output,
            positions: options.lossPositions,
            ignoreIndex,
          },
          wrt: options.wrt ?? ['params'],
        },
        { out: options.out, batchSize: options.batchSize, onProgress: cliProgress(options) },
      );
      for (const line of summaryLines(summary, options.loss, ignoreIndex)) print(line);
      print(
        `Wrote ${Object.keys(summary.gradients).length} gradient(s) and index.json to ${options.out}:`,
      );
      for (const [name, entry] of Object.entries(summary.gradients))
        print(`  ${name} ${entry.dtype} ${shapeString(entry.shape)} → ${entry.file}`);
      if (options.json) {
        emitJson(
          options.json,
          jsonResult(
            'grad',
            { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads },
            {
              loss: {
                kind: options.loss,
                value: summary.loss,
                positions: options.lossPositions,
                ignoreIndex,
                output: summary.scored.output,
                meanOver: summary.meanOver,
                logitsBefore: summary.scored.logitsBefore,
              },
              examples: summary.examples,
              gradients: summary.gradients,
            },
          ),
        );
      }
      await model.release();
    });
}

/** What the loss is a mean of, and on which value it was taken. */
function summaryLines(
  summary: DatasetGradientSummary,
  loss: string,
  ignoreIndex: number | undefined,
): string[] {
  const { count, unit, ignored } = summary.meanOver;
  const left = ignored > 0 ? `; ${ignored} equal to the ignore index ${ignoreIndex} left out` : '';
  const lines = [
    `Loss (${loss} on '${summary.scored.output}', mean over ${count} ${unit} of ${summary.examples} examples${left}): ${summary.loss}`,
  ];
  const before = summary.scored.logitsBefore;
  if (before)
    lines.push(
      `'${before.output}' is the output of a ${before.op} (node '${before.node}'): the cross-entropy is taken on its input '${before.logits}', the logits, as F.cross_entropy expects.`,
    );
  return lines;
}
