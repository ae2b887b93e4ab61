/**
 * The one grammar of every command (README, "Command-line grammar"): parsers for shared flags,
 * numbers parsed as numbers when the line is read, and the flags every command has (--json FILE|-,
 * --quiet, --verbose, --threads).
 */
import { cpus } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { Command, Option } from 'commander';
import { InputError } from '../errors.ts';
import { NpyFile } from '../data/npy.ts';
import { allowNonFinite } from '../data/validate.ts';
import { checkOutputFile, checkOutputFolder } from '../files.ts';
import type { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { checkThreads } from '../runtime/threads.ts';
import type { ProgressEvent } from '../progress.ts';
import { progressReporter } from '../report/progress.ts';
import { writeJson } from '../report/json.ts';
import { currentArgv, currentIo, routeText, writeStdout } from './io.ts';

/** `NAME=VALUE`, split at the first '=' (names may hold ':' and '/'). */
export function splitAssignment(text: string, flag: string, example: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1)
    throw new InputError(`${flag} expects NAME=VALUE (e.g. ${flag} ${example}), got '${text}'.`);
  return [text.slice(0, at), text.slice(at + 1)];
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];

export function parseInputs(specs: string[] = [], flag = '--input'): Record<string, NpyFile> {
  const inputs: Record<string, NpyFile> = {};
  for (const spec of specs) {
    const [name, path] = splitAssignment(
      spec,
      flag,
      `${flag === '--attribute' ? 'color' : 'input'}=x.npy`,
    );
    inputs[name] = new NpyFile(path);
  }
  return inputs;
}

/** --data FILE.npy: the examples of a one-input model, the short form of --input NAME=FILE.npy. */
export const dataOption = (what = 'examples') =>
  new Option(
    '--data <file.npy>',
    `${what} of a one-input model (.npy, first axis = examples); the same as --input NAME=FILE.npy for its one input`,
  );

/**
 * A model's inputs by name from --data FILE.npy (one-input models) or --input NAME=FILE.npy
 * (any model), never both. With neither: {} when the inputs are optional (hooks), else an error.
 */
export function modelInputs(
  model: Model,
  flags: { data?: string; input?: string[] },
  required = true,
): Record<string, NpyFile> {
  if (flags.data !== undefined && flags.input?.length) {
    throw new InputError(
      'Give the examples either with --data FILE.npy (one-input models) or with --input NAME=FILE.npy per input, not both.',
    );
  }
  if (flags.data === undefined) {
    const inputs = parseInputs(flags.input);
    if (required && Object.keys(inputs).length === 0) {
      throw new InputError(
        `Give the examples with --data FILE.npy or --input NAME=FILE.npy (the model's inputs: ${model.describeInputs()}).`,
      );
    }
    return inputs;
  }
  if (model.inputs.length !== 1) {
    throw new InputError(
      `--data feeds a one-input model; '${model.path}' has ${model.inputs.length} inputs (${model.describeInputs()}): give each with --input NAME=FILE.npy.`,
    );
  }
  if (!flags.data.endsWith('.npy')) {
    throw new InputError(
      `--data '${flags.data}' is not a .npy file: this command reads .npy examples (inspect and audit also read .csv).`,
    );
  }
  return { [model.inputs[0].name]: new NpyFile(flags.data) };
}

export function parseDims(specs: string[] = []): Record<string, number> {
  return Object.fromEntries(
    specs.map((spec) => {
      const [name, size] = splitAssignment(spec, '--dim', 'seq=12');
      return [name, positiveInteger(size, `--dim ${name}`)];
    }),
  );
}

export function positiveInteger(text: string | number, flag: string): number {
  const value = Number(text);
  if (text === '' || !Number.isInteger(value) || value < 1)
    throw new InputError(`${flag} expects a positive integer, got '${text}'.`);
  return value;
}

export type NumberKind = 'number' | 'integer' | 'positive integer' | 'non-negative number';

/** `text` as a number of this kind, or an InputError naming the flag. */
export function parseNumber(text: string, flag: string, kind: NumberKind = 'number'): number {
  // Decimal only: Number() reads '0x10' as 16, '0b11' as 3 and '0o7' as 7.
  const value = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(text) ? Number(text) : NaN;
  const ok =
    text.trim() !== '' &&
    Number.isFinite(value) &&
    (kind === 'number' ||
      (kind === 'non-negative number'
        ? value >= 0
        : Number.isInteger(value) && (kind === 'integer' || value >= 1)));
  if (!ok) throw new InputError(`${flag} expects a ${kind}, got '${text}'.`);
  return value;
}

/**
 * A flag whose value is a number, parsed and checked as the command line is read (an InputError,
 * exit status 2, names the flag); its default is a number, and help shows it as one.
 */
export function numberOption(
  flags: string,
  description: string,
  kind: NumberKind = 'number',
  defaultValue?: number,
): Option {
  const option: Option = new Option(flags, description);
  option.argParser((text: string): number => parseNumber(text, option.long ?? flags, kind));
  return defaultValue === undefined ? option : option.default(defaultValue);
}

/** The flags every command has, as the action receives them. */
export interface CommonFlags {
  json?: string;
  quiet?: boolean;
  verbose?: boolean;
  threads?: number;
}

/**
 * Adds the flags every command has: --json FILE|- (a JSON result, docs/json.md; '-' writes it to
 * standard output), --quiet, --verbose and --threads.
 */
export function withCommonOptions(
  command: Command,
  json = 'write the result as JSON (docs/json.md)',
): Command {
  return command
    .option(
      '--json <file|->',
      `${json}; '-' writes it to standard output and the text to standard error`,
    )
    .option('--quiet', 'print no text and no progress (errors still go to standard error)')
    .option('--verbose', "show onnxruntime's own log")
    .addOption(
      numberOption(
        '--threads <n>',
        'onnxruntime intra-op threads (default: all cores)',
        'positive integer',
      ),
    )
    .option(
      '--allow-non-finite',
      'read data holding NaN or ±Inf instead of refusing it (docs/errors.md)',
    )
    .hook('preAction', (_, action) => {
      allowNonFinite(action.opts().allowNonFinite === true);
      checkOutputs(action.name(), action.opts());
    });
}

/**
 * Every output a command will write, checked before any work (files.ts): --json FILE and a
 * file --out (train) are regular files or nothing in a writable folder; a folder --out (run,
 * grad, data) is new, empty or a teardown result; --report DIR gets DIR/index.html; a train
 * --checkpoint FILE is checked as a file (it is written during training, not after).
 */
function checkOutputs(
  command: string,
  flags: { json?: string; out?: string; report?: string; checkpoint?: string },
): void {
  refuseOverlappingOutputs(command, flags);
  if (flags.json !== undefined && flags.json !== '-') checkOutputFile(flags.json, '--json');
  if (flags.out !== undefined) {
    if (command === 'train') checkOutputFile(flags.out, '--out');
    else checkOutputFolder(flags.out, '--out');
  }
  if (flags.report !== undefined) checkOutputFile(join(flags.report, 'index.html'), '--report');
  if (flags.checkpoint !== undefined) checkOutputFile(flags.checkpoint, '--checkpoint');
}

/**
 * Two outputs at one path, or a file inside a result folder that is replaced as a whole (the
 * --out of every command but train's), would pass their checks one by one and then overwrite each
 * other once the work is done (`grad --out r --json r` wrote the folder, then failed on the JSON).
 */
function refuseOverlappingOutputs(
  command: string,
  flags: { json?: string; out?: string; report?: string; checkpoint?: string },
): void {
  const given: [string, string | undefined][] = [
    ['--json', flags.json === '-' ? undefined : flags.json],
    ['--out', flags.out],
    ['--report', flags.report && join(flags.report, 'index.html')],
    ['--checkpoint', flags.checkpoint],
  ];
  const outputs = given
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([flag, path]) => ({ flag, path, resolved: resolve(path) }));
  const folder =
    command === 'train' ? undefined : outputs.find((output) => output.flag === '--out');
  outputs.forEach((output, i) => {
    const same = outputs.slice(i + 1).find((other) => other.resolved === output.resolved);
    if (same)
      throw new InputError(
        `${output.flag} '${output.path}' and ${same.flag} '${same.path}' are the same path: give each output its own.`,
      );
    if (folder && output !== folder && output.resolved.startsWith(`${folder.resolved}${sep}`)) {
      throw new InputError(
        `${output.flag} '${output.path}' lies inside the --out folder '${folder.path}', which is written as a whole: give it a path outside.`,
      );
    }
  });
}

/**
 * Where a command's text goes, set once when its action starts: standard output, or standard error
 * when --json - takes standard output for the JSON, or nowhere with --quiet (io.ts, `print`).
 */
export function routeOutput(flags: CommonFlags): void {
  if (flags.quiet) routeText('none');
  else if (flags.json === '-') routeText('stderr');
}

/** Writes the --json result: to the file, or to standard output for '-'. */
export function emitJson(path: string, value: object): void {
  // The envelope records process.argv; a main(argv, io) call in-process ran its own arguments.
  const provenance = (value as { provenance?: { commandLine?: readonly string[] } }).provenance;
  if (provenance?.commandLine) provenance.commandLine = currentArgv() ?? provenance.commandLine;
  if (path === '-') writeStdout(`${JSON.stringify(value, null, 2)}\n`);
  else writeJson(path, value);
}

/** The onProgress callback of a command: drawn on standard error unless --quiet. */
export function cliProgress(flags: CommonFlags): ((event: ProgressEvent) => void) | undefined {
  return flags.quiet ? undefined : progressReporter({ stream: currentIo().stderr });
}

/**
 * Smoke size (--smoke, or TEARDOWN_SMOKE=1 in the environment): slow commands shrink epochs, steps
 * and examples to a few, so that every documented command runs in seconds (the docs test).
 */
export function smokeMode(flags: { smoke?: boolean } = {}): boolean {
  return (
    flags.smoke === true ||
    ((process.env.TEARDOWN_SMOKE ?? '') !== '' && process.env.TEARDOWN_SMOKE !== '0')
  );
}

/** Examples a --smoke run of inspect or audit reads: the first ones of each set. */
export const SMOKE_EXAMPLES = 512;

/** The --smoke flag of the slow commands. */
export const smokeOption = () =>
  new Option(
    '--smoke',
    `a tiny run to check a command line end to end (training: 5 steps; audit and inspect: the first ${SMOKE_EXAMPLES} examples); also TEARDOWN_SMOKE=1`,
  );

export function runtimeOptions(options: {
  threads?: number | string;
  verbose?: boolean;
}): RuntimeOptions {
  const threads = options.threads ? positiveInteger(options.threads, '--threads') : cpus().length;
  checkThreads(threads, '--threads');
  return { threads, verbose: options.verbose };
}
