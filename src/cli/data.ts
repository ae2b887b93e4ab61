import { Command } from 'commander';
import { encodeNpy } from '../data/npy.ts';
import { loadTask, TASK_NAMES } from '../data/tasks.ts';
import { StagedFolder } from '../files.ts';
import { tensor } from '../tensor.ts';
import { jsonResult } from '../report/json.ts';
import { emitJson, numberOption, routeOutput, withCommonOptions } from './options.ts';
import { print } from './io.ts';

export function dataCommand(): Command {
  return withCommonOptions(
    new Command('data')
      .description(
        "Write a built-in task's train and test splits as .npy files (inputs, labels and any per-example attributes), e.g. to audit a model on them.",
      )
      .argument('<task>', TASK_NAMES.filter((name) => !name.includes(':')).join(', '))
      .requiredOption('--out <dir>', 'folder for the files')
      .addOption(
        numberOption('--data-seed <n>', 'seed of the split and the data noise', 'integer', 0),
      )
      .option(
        '--flat',
        'each example as one row of numbers ([N, 784] for mnist, the layout examples/mnist-mlp.onnx takes) instead of [N, channels, height, width]',
      )
      .addOption(numberOption('--modulus <p>', 'modular-addition: p', 'positive integer', 113)),
    'write the task, the files and their shapes as JSON',
  )
    .addHelpText(
      'after',
      `
Files: train.npy, train-labels.npy, test.npy, test-labels.npy, and <split>-<attribute>.npy for
each attribute the task has (colored-mnist: color, environment).

Examples:
  teardown data colored-mnist --out cmnist
  teardown data mnist --flat --out digits`,
    )
    .action((name: string, options) => {
      routeOutput(options);
      const task = loadTask(name, { dataSeed: options.dataSeed, modulus: options.modulus });
      const written: Record<string, { shape: number[]; dtype: string }> = {};
      const folder = new StagedFolder(options.out);
      try {
        for (const [split, data] of [
          ['train', task.train],
          ['test', task.test],
        ] as const) {
          const inputs = options.flat
            ? {
                ...data.inputs,
                dims: [data.inputs.dims[0], data.inputs.dims.slice(1).reduce((a, b) => a * b, 1)],
              }
            : data.inputs;
          const files = { [`${split}.npy`]: inputs, [`${split}-labels.npy`]: data.labels };
          for (const [attribute, values] of Object.entries(data.attributes ?? {}))
            files[`${split}-${attribute}.npy`] = tensor(
              'int64',
              [values.length],
              Array.from(values),
            );
          for (const [file, value] of Object.entries(files)) {
            folder.write(file, encodeNpy(value));
            written[file] = { shape: value.dims, dtype: value.dtype };
          }
        }
        folder.commit();
      } catch (error) {
        folder.abandon();
        throw error;
      }
      print(
        `${task.description}\nWrote ${task.train.labels.dims[0]} training and ${task.test.labels.dims[0]} test examples to ${options.out}/ (train.npy, train-labels.npy, test.npy, test-labels.npy${Object.keys(
          task.train.attributes ?? {},
        )
          .map((a) => `, <split>-${a}.npy`)
          .join('')}).`,
      );
      if (options.json)
        emitJson(
          options.json,
          jsonResult(
            'data',
            {},
            { task: name, description: task.description, out: options.out, files: written },
          ),
        );
    });
}
