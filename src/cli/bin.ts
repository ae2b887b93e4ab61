/**
 * The process behind `teardown` (bin/teardown.js imports this file): runs `main` on the process's
 * arguments and streams and sets the exit status from it.
 */
import { main, reportFailure } from './main.ts';

const stdio = { stdout: process.stdout, stderr: process.stderr };

// An error thrown outside the command's own awaits (an event handler, a timer) is reported as
// main reports its errors, not as Node's stack dump; the exit handlers still clean up outputs.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    process.exitCode = reportFailure(error, stdio, process.argv.includes('--verbose'));
    process.exit();
  });
}

// `teardown hooks model.onnx | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2), stdio);
