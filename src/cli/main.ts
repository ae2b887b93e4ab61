/**
 * The `teardown` command line. Each command parses its flags, calls a library function and
 * prints; user errors print one message and exit 2, internal errors exit 1 with the stack.
 *
 * Startup loads only the command that runs: each command module (and through it onnxruntime,
 * protobufjs, ...) is imported when named on the command line; the list of all commands, for
 * `teardown --help` or a misspelt name, loads them all.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo.ts')).demoCommand(),
  hooks: async () => (await import('./hooks.ts')).hooksCommand(),
  run: async () => (await import('./run.ts')).runCommand(),
  grad: async () => (await import('./grad.ts')).gradCommand(),
  train: async () => (await import('./train.ts')).trainCommand(),
  inspect: async () => (await import('./inspect.ts')).inspectCommand(),
  audit: async () => (await import('./audit.ts')).auditCommand(),
  data: async () => (await import('./data.ts')).dataCommand(),
};

// `teardown hooks model.onnx | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const program = new Command('teardown')
  .description('Take trained backprop networks apart and check them: hooks, caches, interventions, gradients, training, inspection and pre-deployment audits of any ONNX model, on onnxruntime.')
  .addHelpText('after', '\nStart with: teardown demo    Every command: teardown COMMAND --help    Docs: README.md, docs/json.md, docs/audit.md')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

try {
  for (const command of await Promise.all(commandsNeeded(process.argv.slice(2)).map((name) => COMMANDS[name]()))) {
    program.addCommand(command.exitOverride().showHelpAfterError('(run with --help for usage)'));
  }
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeFor(error);
}

/**
 * The commands to load for these arguments: the one named (`teardown hooks ...`, `teardown help
 * hooks`), none for `--version`, every one otherwise (the top-level help lists them all).
 */
function commandsNeeded(args: readonly string[]): string[] {
  const words = args.filter((arg) => !arg.startsWith('-'));
  const named = words[0] === 'help' ? words[1] : words[0];
  if (named !== undefined && Object.hasOwn(COMMANDS, named)) return [named];
  if (named === undefined && args.some((arg) => arg === '--version' || arg === '-V') && !args.some((arg) => arg === '--help' || arg === '-h')) return [];
  return Object.keys(COMMANDS);
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2; // commander printed its own message
  if (error instanceof UserError) {
    process.stderr.write(`teardown: ${error.message}\n`);
    return 2;
  }
  process.stderr.write(`teardown: internal error (please report it):\n${error instanceof Error ? error.stack : String(error)}\n`);
  return 1;
}
