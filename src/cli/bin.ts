/**
 * The process behind `teardown` (bin/teardown.js imports this file): runs `main` on the process's
 * arguments and streams and sets the exit status from it.
 */
import { main } from './main.ts';

// `teardown hooks model.onnx | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
