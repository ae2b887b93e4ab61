/**
 * The `teardown` command line. Each command parses its flags, calls a library function and
 * prints; user errors print one message and exit 2, internal errors exit 1 with the stack.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { demoCommand } from './demo.ts';
import { gradCommand } from './grad.ts';
import { hooksCommand } from './hooks.ts';
import { inspectCommand } from './inspect.ts';
import { runCommand } from './run.ts';
import { trainCommand } from './train.ts';
import { auditCommand } from './audit.ts';
import { dataCommand } from './data.ts';

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

for (const command of [demoCommand(), hooksCommand(), runCommand(), gradCommand(), trainCommand(), inspectCommand(), auditCommand(), dataCommand()]) {
  program.addCommand(command.exitOverride().showHelpAfterError('(run with --help for usage)'));
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeFor(error);
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
