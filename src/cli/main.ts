/**
 * The `teardown` command line as a function: `main(argv, io)` parses `argv` (the arguments after
 * `teardown`), runs the command, writes through `io` and returns the exit status (docs/errors.md):
 * 0 done, 1 a bug in teardown ("please report it"; the stack only with --verbose), 2 bad input or
 * environment (one message, no stack), 3 a --fail-on gate. It never exits the process: bin.ts
 * sets process.exitCode from it, and tests and the fuzzer call it in-process.
 *
 * Startup loads only the command that runs: each command module (and through it onnxruntime,
 * protobufjs, ...) is imported when named on the command line; the list of all commands, for
 * `teardown --help` or a misspelt name, loads them all.
 */
import { Command, CommanderError, type OutputConfiguration } from 'commander';
import { UserError, environmentError } from '../errors.ts';
import { withNonFinitePolicy } from '../data/validate.ts';
import { VERSION } from '../version.ts';
import { terminalSafe, withIo, type CliIo } from './io.ts';

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo.ts')).demoCommand(),
  hooks: async () => (await import('./hooks.ts')).hooksCommand(),
  run: async () => (await import('./run.ts')).runCommand(),
  grad: async () => (await import('./grad.ts')).gradCommand(),
  train: async () => (await import('./train.ts')).trainCommand(),
  inspect: async () => (await import('./inspect.ts')).inspectCommand(),
  audit: async () => (await import('./audit.ts')).auditCommand(),
  data: async () => (await import('./data.ts')).dataCommand(),
  sweep: async () => (await import('./sweep.ts')).sweepCommand(),
  worker: async () => (await import('./worker.ts')).workerCommand(),
  race: async () => (await import('./race.ts')).raceCommand(),
};

const USAGE_HINT = '(run with --help for usage)';

/** Runs `teardown ...argv` with its text on `io`; resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const args = [...argv];
  try {
    const { exitCode } = await withIo(
      io,
      () =>
        withNonFinitePolicy(async () => {
          const program = await programFor(args, io);
          await program.parseAsync(args, { from: 'user' });
        }),
      args,
    );
    return exitCode;
  } catch (error) {
    return reportFailure(error, io, args.includes('--verbose'));
  }
}

/** The top-level command with the subcommands these arguments need; writes to `io`, never exits. */
async function programFor(args: readonly string[], io: CliIo): Promise<Command> {
  const output: OutputConfiguration = {
    writeOut: (text: string) => void io.stdout.write(text),
    writeErr: (text: string) => void io.stderr.write(text),
    getOutHelpWidth: () => io.stdout.columns ?? 80,
    getErrHelpWidth: () => io.stderr.columns ?? 80,
    // Commander's own messages quote what was typed: escape it as everything else printed.
    outputError: (text: string, write: (text: string) => void) => write(terminalSafe(text)),
  };
  const program = new Command('teardown')
    .description(
      'Take trained backprop networks apart and check them: hooks, caches, interventions, gradients, training, inspection and pre-deployment audits of any ONNX model, on onnxruntime; and races against learners that do not use backprop.',
    )
    .addHelpText(
      'after',
      '\nStart with: teardown demo    Every command: teardown COMMAND --help    Docs: README.md, docs/json.md, docs/audit.md',
    )
    .version(VERSION)
    .configureOutput(output)
    .showHelpAfterError(USAGE_HINT)
    .exitOverride();
  const commands = await Promise.all(commandsNeeded(args).map((name) => COMMANDS[name]()));
  for (const command of commands) program.addCommand(configured(command, output));
  return program;
}

/** A command and its subcommands writing through `output`, throwing instead of exiting. */
function configured(command: Command, output: OutputConfiguration): Command {
  command.exitOverride().configureOutput(output).showHelpAfterError(USAGE_HINT);
  for (const sub of command.commands) configured(sub, output);
  return command;
}

/**
 * The commands to load for these arguments: the one named (`teardown hooks ...`, `teardown help
 * hooks`), none for `--version`, every one otherwise (the top-level help lists them all).
 */
function commandsNeeded(args: readonly string[]): string[] {
  const words = args.filter((arg) => !arg.startsWith('-'));
  const named = words[0] === 'help' ? words[1] : words[0];
  if (named !== undefined && Object.hasOwn(COMMANDS, named)) return [named];
  if (
    named === undefined &&
    args.some((arg) => arg === '--version' || arg === '-V') &&
    !args.some((arg) => arg === '--help' || arg === '-h')
  )
    return [];
  return Object.keys(COMMANDS);
}

/** Writes what went wrong to io.stderr; returns the exit status (docs/errors.md). */
export function reportFailure(error: unknown, io: CliIo, verbose: boolean): number {
  // Commander printed its own message (a bad flag, --help, --version).
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  const user = error instanceof UserError ? error : environmentError(error);
  if (user) {
    io.stderr.write(`teardown: ${terminalSafe(user.message)}\n`);
    return 2;
  }
  const message = error instanceof Error ? error.message : String(error);
  const stack = verbose && error instanceof Error ? error.stack : undefined;
  const detail = stack ? `\n${stack}` : '\n(run again with --verbose for the stack trace)';
  const what = 'teardown: internal error (please report it, with the command line)';
  io.stderr.write(`${what}: ${terminalSafe(message)}${terminalSafe(detail)}\n`);
  return 1;
}
