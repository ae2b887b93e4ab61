import { Command } from 'commander';
import { encodeNpy } from '../data/npy.ts';
import { loadTask, TASK_NAMES } from '../data/tasks.ts';
import { StagedFolder } from '../files.ts';
import { tensor } from '../tensor.ts';
import { positiveInteger } from './options.ts';

export function dataCommand(): Command {
  return new Command('data')
    .description("Write a built-in task's train and test splits as .npy files (inputs, labels and any per-example attributes), e.g. to audit a model on them.")
    .argument('<task>', TASK_NAMES.filter((name) => !name.includes(':')).join(', '))
    .requiredOption('--out <dir>', 'folder for the files')
    .option('--data-seed <n>', 'seed of the split and the data noise', '0')
    .option('--modulus <p>', 'modular-addition: p', '113')
    .addHelpText('after', `
Files: train.npy, train-labels.npy, test.npy, test-labels.npy, and <split>-<attribute>.npy for
each attribute the task has (colored-mnist: color, environment).

Example:
  teardown data colored-mnist --out cmnist`)
    .action((name: string, options) => {
      const task = loadTask(name, { dataSeed: Number(options.dataSeed), modulus: positiveInteger(options.modulus, '--modulus') });
      const folder = new StagedFolder(options.out);
      try {
        for (const [split, data] of [['train', task.train], ['test', task.test]] as const) {
          folder.write(`${split}.npy`, encodeNpy(data.inputs));
          folder.write(`${split}-labels.npy`, encodeNpy(data.labels));
          for (const [attribute, values] of Object.entries(data.attributes ?? {})) folder.write(`${split}-${attribute}.npy`, encodeNpy(tensor('int64', [values.length], Array.from(values))));
        }
        folder.commit();
      } catch (error) {
        folder.abandon();
        throw error;
      }
      console.log(`${task.description}\nWrote ${task.train.labels.dims[0]} training and ${task.test.labels.dims[0]} test examples to ${options.out}/ (train.npy, train-labels.npy, test.npy, test-labels.npy${Object.keys(task.train.attributes ?? {}).map((a) => `, <split>-${a}.npy`).join('')}).`);
    });
}
