import { Command } from 'commander';
import { InputError } from '../errors.ts';
import { NpyFile } from '../data/npy.ts';
import { datasetGradients } from '../autodiff/dataset-gradients.ts';
import type { LossKind } from '../autodiff/loss.ts';
import { Model } from '../runtime/model.ts';
import { jsonResult, writeJson } from '../report/json.ts';
import { shapeString } from '../tensor.ts';
import { collect, parseInputs, positiveInteger, runtimeOptions } from './options.ts';

export function gradCommand(): Command {
  return new Command('grad')
    .description('Gradients of a loss with respect to inputs, parameters or hooks; one .npy per gradient.')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--input <name=file.npy>', 'model input (first axis = examples); repeatable', collect)
    .requiredOption('--target <file.npy>', 'targets: int64 class indices (cross-entropy) or values shaped like the output (mse)')
    .option('--loss <kind>', 'cross-entropy or mse', 'cross-entropy')
    .option('--wrt <what>', "'input', 'params', or a hook name or pattern; repeatable (default: params)", collect)
    .option('--loss-positions <which>', "cross-entropy on sequences: 'all' positions or the 'last'", 'all')
    .option('--ignore-index <n>', "cross-entropy: targets equal to this are left out (PyTorch's ignore_index)", '-100')
    .requiredOption('--out <dir>', 'folder for <name>.npy per gradient and index.json')
    .option('--batch-size <n>', 'examples per onnxruntime run (default: all at once); the loss stays the dataset mean')
    .option('--json <file>', 'write a JSON summary (docs/json.md)')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)')
    .option('--verbose', "show onnxruntime's own log")
    .addHelpText('after', `
The loss is the mean over every example (and position): PyTorch's F.cross_entropy on flattened
logits, or F.mse_loss. Parameters are written under their initializer names (<name>.npy, escaped
where unsafe); PyTorch's merged parameters get one gradient each.

Example:
  teardown grad model.onnx --input input=x.npy --target y.npy --wrt params --wrt input --out grads/`)
    .action(async (modelPath: string, options) => {
      const runtime = runtimeOptions(options);
      if (!['cross-entropy', 'mse'].includes(options.loss)) throw new InputError(`--loss must be cross-entropy or mse, got '${options.loss}'.`);
      if (!['all', 'last'].includes(options.lossPositions)) throw new InputError(`--loss-positions must be all or last, got '${options.lossPositions}'.`);
      const ignoreIndex = options.loss === 'cross-entropy' ? Number(options.ignoreIndex) : undefined;
      if (ignoreIndex !== undefined && !Number.isInteger(ignoreIndex)) throw new InputError(`--ignore-index expects an integer, got '${options.ignoreIndex}'.`);
      const model = Model.load(modelPath, runtime);
      const summary = await datasetGradients(model, parseInputs(options.input), new NpyFile(options.target), {
        loss: { kind: options.loss as LossKind, positions: options.lossPositions, ignoreIndex },
        wrt: options.wrt ?? ['params'],
      }, { out: options.out, batchSize: options.batchSize ? positiveInteger(options.batchSize, '--batch-size') : undefined });
      console.log(`Loss (${options.loss}, mean over ${summary.examples} examples): ${summary.loss}`);
      console.log(`Wrote ${Object.keys(summary.gradients).length} gradient(s) and index.json to ${options.out}:`);
      for (const [name, entry] of Object.entries(summary.gradients)) console.log(`  ${name} ${entry.dtype} ${shapeString(entry.shape)} → ${entry.file}`);
      if (options.json) {
        writeJson(options.json, jsonResult('grad', { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads }, {
          loss: { kind: options.loss, value: summary.loss, positions: options.lossPositions, ignoreIndex }, examples: summary.examples, gradients: summary.gradients,
        }));
      }
      await model.release();
    });
}
