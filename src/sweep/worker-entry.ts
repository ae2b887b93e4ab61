/**
 * A local sweep worker: a child process forked by pool.ts that runs the trials it is sent, one at
 * a time, and sends back each outcome. It ends when the coordinator disconnects (also when the
 * coordinator is killed: its command in flight is stopped with it, and the trial stays unfinished
 * in the store for --resume).
 */
import { runTrial, type TrialJob } from './trial.ts';

let controller = new AbortController();

process.on('message', (message: { type: 'run'; job: TrialJob }) => {
  if (message.type !== 'run') return;
  controller = new AbortController();
  runTrial(message.job, controller.signal).then(
    (outcome) => process.send?.({ type: 'result', id: message.job.id, outcome }),
    (error: unknown) =>
      process.send?.({
        type: 'result',
        id: message.job.id,
        outcome: {
          status: 'failed',
          metric: null,
          seconds: 0,
          error: `worker error: ${(error as Error)?.stack ?? String(error)}`,
        },
      }),
  );
});

/** Stops the trial in flight (a command's whole process group), then leaves. */
function leave(): void {
  controller.abort();
  setTimeout(() => process.exit(0), 50);
}

process.on('disconnect', leave);
process.on('SIGTERM', leave);
process.on('SIGINT', leave);

process.send?.({ type: 'ready' });
