import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { requireFile } from '../files.ts';
import { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { fineTuningPlan } from '../train/foreign.ts';
import { externalInitializers, writeModelKeepingExternalData } from '../train/save.ts';
import { InputError } from '../errors.ts';
import { writeModelFile } from '../onnx/model-file.ts';
import { jsonResult } from '../report/json.ts';
import { formatTable } from '../report/table.ts';
import { percent } from '../stats.ts';
import { loadCheckpoint, saveCheckpoint } from '../train/checkpoint.ts';
import { DEFAULT_OPTIMIZER, type FineTuneSource, type TrainSpec } from '../train/spec.ts';
import { completeSpec, TRAIN_DEFAULTS } from '../train/read-spec.ts';
import type { OptimizerSpec } from '../train/optimizers.ts';
import type { Objective } from '../train/objective.ts';
import { train } from '../train/trainer.ts';
import {
  cliProgress,
  collect,
  emitJson,
  numberOption,
  parseNumber,
  routeOutput,
  runtimeOptions,
  smokeMode,
  smokeOption,
  splitAssignment,
  withCommonOptions,
} from './options.ts';
import { currentIo, print, printError } from './io.ts';

/** Steps of a --smoke run (and its evaluation interval). */
export const SMOKE_STEPS = 5;

export function trainCommand(): Command {
  return withCommonOptions(
    new Command('train')
      .description(
        'Train a backprop network with onnxruntime (one run = one step: forward, backward, update) and save it as ONNX; or fine-tune an existing ONNX model (--from).',
      )
      .option(
        '--task <task>',
        'mnist, colored-mnist, modular-addition, csv:FILE or npy:INPUTS.npy,LABELS.npy (or npy:INPUTS.npy with --labels)',
      )
      .option(
        '--labels <file.npy>',
        'npy:INPUTS.npy tasks: the class of each example (integers), the same as npy:INPUTS.npy,LABELS.npy',
      )
      .option(
        '--model <spec>',
        'mlp:hidden=256-256[,act=relu] | cnn:channels=8-16[,fc=32] (see README)',
      )
      .option(
        '--from <model.onnx>',
        'fine-tune this ONNX model (a PyTorch export, or any) instead of building one: every PyTorch parameter trains, buffers stay frozen',
      )
      .option(
        '--train <pattern>',
        '--from: train only the parameters whose PyTorch name matches this glob (* and ?); repeatable',
        collect,
      )
      .option(
        '--freeze <pattern>',
        '--from: keep the parameters matching this glob frozen; repeatable',
        collect,
      )
      .option(
        '--list-parameters',
        '--from: list what would train and what stays frozen (and why), then stop',
      )
      .option(
        '--input <name=file.npy>',
        "--from, models with several inputs: another input, one row per row of the task's data file (csv: or npy:); repeatable",
        collect,
      )
      .option('--optimizer <kind>', 'sgd or adamw', DEFAULT_OPTIMIZER.kind)
      .addOption(numberOption('--lr <x>', 'learning rate', 'number', TRAIN_DEFAULTS.lr))
      .addOption(
        numberOption('--momentum <x>', 'SGD momentum', 'number', DEFAULT_OPTIMIZER.momentum),
      )
      .addOption(
        numberOption(
          '--weight-decay <x>',
          'weight decay (AdamW: decoupled)',
          'number',
          DEFAULT_OPTIMIZER.weightDecay,
        ),
      )
      .option('--betas <b1,b2>', 'AdamW betas', DEFAULT_OPTIMIZER.betas.join(','))
      .addOption(numberOption('--eps <x>', 'AdamW epsilon', 'number', DEFAULT_OPTIMIZER.eps))
      .addOption(
        numberOption(
          '--warmup <steps>',
          'linear warm-up steps',
          'integer',
          TRAIN_DEFAULTS.schedule.warmupSteps,
        ),
      )
      .option('--cosine', 'cosine decay of the learning rate to 0 at the last step')
      .addOption(numberOption('--clip <norm>', 'clip the global gradient norm', 'number'))
      .addOption(numberOption('--steps <n>', 'training steps', 'positive integer'))
      .addOption(
        numberOption('--epochs <n>', 'training epochs (instead of --steps)', 'positive integer'),
      )
      .addOption(
        new Option('--batch-size <n|full>', "examples per step, or 'full'")
          .argParser(batchSize)
          .default(TRAIN_DEFAULTS.batch),
      )
      .addOption(
        new Option('--batch <n|full>', 'the older name of --batch-size (deprecated)')
          .argParser(batchSize)
          .hideHelp(),
      )
      .addOption(
        numberOption(
          '--seed <n>',
          'seed of initialisation and batch order',
          'integer',
          TRAIN_DEFAULTS.seed,
        ),
      )
      .addOption(
        numberOption(
          '--data-seed <n>',
          'seed of the train/test split and data noise',
          'integer',
          0,
        ),
      )
      .addOption(
        numberOption(
          '--eval-every <n>',
          'steps between evaluations (curve points)',
          'positive integer',
          TRAIN_DEFAULTS.evalEvery,
        ),
      )
      .option('--label-column <name>', 'csv tasks: the label column')
      .option(
        '--attribute <column|name=file.npy>',
        'csv and npy tasks: a per-example attribute for --objective (groups, environments): a CSV column, or NAME=FILE.npy with one value per row of the data; repeatable',
        collect,
      )
      .addOption(numberOption('--modulus <p>', 'modular-addition: p', 'positive integer', 113))
      .addOption(
        numberOption(
          '--train-fraction <f>',
          'modular-addition: fraction of pairs for training',
          'number',
          0.3,
        ),
      )
      .option('--out <model.onnx>', 'where to save the trained model')
      .option('--checkpoint <file>', 'save a checkpoint here periodically (resume with --resume)')
      .addOption(
        numberOption(
          '--checkpoint-every <n>',
          'steps between checkpoints',
          'positive integer',
          1000,
        ),
      )
      .option(
        '--resume <checkpoint>',
        'continue an interrupted run from its checkpoint (the spec comes from the checkpoint)',
      )
      .option(
        '--objective <spec>',
        "erm (default), reweight:ATTR[+ATTR] (group-balanced over label × attributes), jtt:STEPS:UPWEIGHT (Just-Train-Twice) or irm:PENALTY:ANNEAL[:ENV] (IRMv1 over the values of attribute ENV, default 'environment'); attributes: colored-mnist's, or --attribute",
        'erm',
      )
      .addOption(smokeOption()),
    'write the result and the loss/accuracy curve as JSON (docs/json.md)',
  )
    .addHelpText(
      'after',
      `
The same spec with --threads 1 gives the same losses bit for bit; the spec is stored in the saved model's metadata.

Examples:
  teardown train --task mnist --model mlp:hidden=256-256 --optimizer sgd --lr 0.1 --momentum 0.9 --epochs 5 --out mlp.onnx
  teardown train --task colored-mnist --model mlp:hidden=390-390 --lr 0.001 --epochs 10 --out erm.onnx --json erm.json
  teardown train --task colored-mnist --model mlp:hidden=128-128 --epochs 5 --batch-size 128 --objective reweight:color --out reweighted.onnx
  teardown train --task csv:test/fixtures/foreign-shortcut/train.csv --label-column label --model mlp:hidden=32 --epochs 20 --objective reweight:shortcut --out table.onnx
  teardown data colored-mnist --out cmnist
  teardown train --task npy:cmnist/train.npy --labels cmnist/train-labels.npy --attribute site=cmnist/train-environment.npy --model mlp:hidden=64 --batch-size full --steps 500 --objective irm:1000:100:site --out irm.onnx
  teardown train --from test/fixtures/cnn/model.onnx --task mnist --freeze 'conv*' --optimizer sgd --lr 0.01 --epochs 3 --out tuned.onnx
(--smoke, or TEARDOWN_SMOKE=1: 5 steps, to check a command line.)`,
    )
    .action(async (options, command: Command) => {
      routeOutput(options);
      if (options.batch !== undefined) {
        if (command.getOptionValueSource('batchSize') === 'cli')
          throw new InputError('--batch is the older name of --batch-size: give one of them.');
        printError('teardown: --batch is deprecated; use --batch-size (same values).');
        options.batchSize = options.batch;
      }
      const runtime = runtimeOptions(options);
      if (options.listParameters) return listParameters(options, runtime);
      if (!options.out)
        throw new InputError('Give --out model.onnx: where to save the trained model.');
      if (!options.from && (options.train || options.freeze || options.input))
        throw new InputError(
          '--train, --freeze and --input go with a model fine-tuned with --from MODEL.onnx.',
        );
      let spec: TrainSpec;
      let resume;
      if (options.resume) {
        if (options.task || options.model || options.from || options.labels)
          throw new InputError(
            '--resume takes the whole spec from the checkpoint: drop --task, --labels, --model and --from.',
          );
        ({ spec, state: resume } = loadCheckpoint(options.resume));
      } else {
        if (options.model && options.from)
          throw new InputError(
            'Give either --model SPEC (a new model) or --from MODEL.onnx (fine-tune an existing one), not both.',
          );
        if (!options.task || (!options.model && !options.from))
          throw new InputError(
            'Give --task and --model (e.g. --task mnist --model mlp:hidden=256-256), or --task and --from MODEL.onnx to fine-tune a model.',
          );
        spec = specFromFlags(options);
        if (smokeMode(options))
          spec = {
            ...spec,
            steps: Math.min(SMOKE_STEPS, spec.steps ?? SMOKE_STEPS),
            epochs: undefined,
            evalEvery: Math.min(spec.evalEvery, SMOKE_STEPS),
          };
      }
      const checkpointPath = options.checkpoint ?? options.resume;
      const result = await train(spec, {
        runtime,
        onProgress: cliProgress(options),
        resume,
        checkpointEvery: Number(options.checkpointEvery),
        // Without a terminal (logs, CI, background runs) there is no bar: one line per evaluation instead.
        onEvaluation:
          currentIo().stderr.isTTY || options.quiet
            ? undefined
            : (point, total) =>
                currentIo().stderr.write(
                  `step ${point.step}/${total}: train loss ${point.trainLoss.toPrecision(4)} acc ${percent(point.trainAccuracy)}, test loss ${point.testLoss.toPrecision(4)} acc ${percent(point.testAccuracy)} (${point.seconds.toFixed(0)} s)\n`,
                ),
        checkpoint: checkpointPath
          ? (state, model) => saveCheckpoint(checkpointPath, state, model)
          : undefined,
      });
      if (spec.from)
        writeModelKeepingExternalData(
          options.out,
          result.model,
          externalInitializers(spec.from.path),
        );
      else writeModelFile(options.out, result.model);
      const final = result.final;
      const trained = spec.from ? `Fine-tuned ${spec.from.path}` : `Trained ${spec.model}`;
      print(
        `${result.task.description}\n${trained} for ${result.steps} steps in ${result.seconds.toFixed(1)} s; saved ${options.out}.`,
      );
      print(
        formatTable(
          ['', 'loss', 'accuracy'],
          [
            ['train', final.trainLoss.toFixed(4), percent(final.trainAccuracy)],
            ['test', final.testLoss.toFixed(4), percent(final.testAccuracy)],
          ],
        ),
      );
      if (options.json) {
        emitJson(
          options.json,
          jsonResult(
            'train',
            {
              threads: runtime.threads,
              seeds: { init: spec.seed, data: spec.taskOptions.dataSeed ?? 0 },
            },
            {
              spec,
              task: result.task.description,
              steps: result.steps,
              seconds: result.seconds,
              final,
              curve: result.curve,
              model: options.out,
            },
          ),
        );
      }
    });
}

/** `--batch-size`: a positive integer or 'full'. */
function batchSize(text: string): number | 'full' {
  return text === 'full' ? 'full' : parseNumber(text, '--batch-size', 'positive integer');
}

/** The flags as a spec, read and checked by train/read-spec.ts like any other. */
function specFromFlags(
  options: Record<string, string | string[] | number | boolean | undefined>,
): TrainSpec {
  const betas = String(options.betas)
    .split(',')
    .map((beta) => parseNumber(beta, '--betas'));
  if (betas.length !== 2)
    throw new InputError(`--betas expects two numbers b1,b2, got '${options.betas}'.`);
  const from = options.from ? fineTuneSource(options) : undefined;
  const number = (value: unknown) => (value === undefined ? undefined : Number(value));
  return completeSpec({
    task: String(options.task),
    model: from ? `from:${from.path}` : String(options.model),
    ...(from ? { from } : {}),
    labels: options.labels as string | undefined,
    taskOptions: {
      dataSeed: number(options.dataSeed),
      modulus: number(options.modulus),
      trainFraction: number(options.trainFraction),
      labelColumn: options.labelColumn as string | undefined,
      ...(options.attribute ? { attributes: options.attribute as string[] } : {}),
    },
    optimizer: {
      kind: String(options.optimizer) as OptimizerSpec['kind'],
      momentum: number(options.momentum),
      weightDecay: number(options.weightDecay),
      betas: betas as [number, number],
      eps: number(options.eps),
    },
    lr: number(options.lr),
    schedule: { warmupSteps: number(options.warmup), cosine: options.cosine === true },
    clipNorm: number(options.clip),
    steps: number(options.steps),
    epochs: number(options.epochs),
    batch: options.batchSize as number | 'full',
    seed: number(options.seed),
    evalEvery: number(options.evalEvery),
    objective: parseObjective(String(options.objective)),
  });
}

function fineTuneSource(
  options: Record<string, string | string[] | number | boolean | undefined>,
): FineTuneSource {
  const path = String(options.from);
  requireFile(path, 'Model file');
  return {
    path,
    sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
    ...(options.train ? { train: options.train as string[] } : {}),
    ...(options.freeze ? { freeze: options.freeze as string[] } : {}),
    ...(options.input ? { inputs: namedFiles(options.input as string[]) } : {}),
  };
}

function namedFiles(specs: string[]): Record<string, string> {
  const files: Record<string, string> = {};
  for (const spec of specs) {
    const [name, path] = splitAssignment(spec, '--input', 'attention_mask=mask.npy');
    if (name in files)
      throw new InputError(`--input '${name}' is given twice: give each input once.`);
    requireFile(path, `--input ${name}`);
    files[name] = path;
  }
  return files;
}

/** --from MODEL --list-parameters: the fine-tuning plan as a table. */
async function listParameters(
  options: Record<string, string | string[] | boolean | undefined>,
  runtime: RuntimeOptions,
): Promise<void> {
  if (!options.from)
    throw new InputError(
      '--list-parameters lists what --from MODEL.onnx would train: give --from.',
    );
  const model = Model.load(String(options.from), runtime);
  try {
    const plan = fineTuningPlan(model, {
      train: options.train as string[] | undefined,
      freeze: options.freeze as string[] | undefined,
    });
    const size = (name: string) =>
      String(
        plan.proto.graph.initializer
          .find((t) => t.name === name)
          ?.dims.map(Number)
          .reduce((a, b) => a * b, 1) ?? '',
      );
    print(
      formatTable(
        ['parameter (PyTorch name)', 'initializer', 'values', 'note'],
        plan.parameters.map((p) => [
          p.pytorchNames.join(' + '),
          p.initializer,
          size(p.initializer),
          p.note ?? '',
        ]),
      ),
    );
    for (const { copy, source } of plan.tied)
      print(`Tied: '${copy}' holds ${source}ᵀ (trained as ${source}; saved as its transpose).`);
    if (plan.frozen.length)
      print(
        `\nFrozen:\n${formatTable(
          ['initializer', 'why'],
          plan.frozen.map((f) => [f.initializer, f.reason]),
        )}`,
      );
    print(
      `\n${plan.parameters.length} initializers train (${new Set(plan.parameters.flatMap((p) => p.pytorchNames)).size} PyTorch parameters); ${plan.frozen.length} stay frozen.`,
    );
  } finally {
    await model.release();
  }
}

/** `erm`, `reweight:A[+B]`, `jtt:STEPS:UPWEIGHT` or `irm:PENALTY:ANNEAL[:ENVIRONMENT]` (checked further by checkSpec). */
export function parseObjective(text: string): Objective | undefined {
  const [kind, ...parts] = text.split(':');
  const numbers = () => parts.map(Number);
  if (kind === 'irm' && parts.length === 3 && parts[2])
    return {
      kind,
      penaltyWeight: Number(parts[0]),
      annealSteps: Number(parts[1]),
      environment: parts[2],
    };
  if (kind === 'erm' && parts.length === 0) return undefined;
  if (kind === 'reweight' && parts.length === 1 && parts[0])
    return { kind, attributes: parts[0].split('+') };
  if (kind === 'jtt' && parts.length === 2) {
    const [identificationSteps, upweight] = numbers();
    return { kind, identificationSteps, upweight };
  }
  if (kind === 'irm' && parts.length === 2) {
    const [penaltyWeight, annealSteps] = numbers();
    return { kind, penaltyWeight, annealSteps };
  }
  throw new InputError(
    `--objective must be erm, reweight:ATTR[+ATTR], jtt:STEPS:UPWEIGHT or irm:PENALTY:ANNEAL[:ENVIRONMENT] (e.g. irm:10000:100 or irm:10000:100:site), got '${text}'.`,
  );
}
