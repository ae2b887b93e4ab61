/**
 * `teardown worker --queue redis://HOST:PORT`: a worker of distributed sweeps (src/sweep/
 * queue-worker.ts). Runs the trials `teardown sweep --queue` puts on the queue, one at a time,
 * until it is stopped (Ctrl-C or SIGTERM: the trial in flight is stopped and goes back to the
 * queue after the heartbeat).
 */
import { hostname } from 'node:os';
import { Command } from 'commander';
import { InputError } from '../errors.ts';
import { currentIo, terminalSafe } from './io.ts';
import { jsonResult } from '../report/json.ts';
import { emitJson, numberOption, routeOutput, withCommonOptions } from './options.ts';

export function workerCommand(): Command {
  const command = new Command('worker')
    .description(
      'Run the trials of distributed sweeps (teardown sweep SPEC.json --out DIR --queue URL): ' +
        'take trials off the BullMQ queue in Redis one at a time and return their results, ' +
        'until stopped. Start any number, on any machine that reaches Redis.',
    )
    .option('--queue <redis://host:port>', "the Redis the sweep's coordinator uses")
    .addOption(
      numberOption(
        '--heartbeat <seconds>',
        "how long the trial's lock lasts without renewal: a killed worker's trial goes back " +
          'to the queue within about twice this (default 30; give all workers the same)',
        'non-negative number',
      ),
    )
    .option('--name <name>', 'how the sweep records this worker (default: <hostname>-<pid>)');
  return withCommonOptions(
    command,
    'when the worker stops, write the trials it ran as JSON (docs/sweep.md)',
  )
    .addHelpText(
      'after',
      `
A command trial runs in its spec's folder (or its cwd), which must exist on this machine with
the same path; a training trial runs in a child process with the sweep's --threads (or this worker's
--threads, which may change its results by rounding).

  teardown worker --queue redis://10.0.0.5:6379 --name gpu-box-1

Example:
  teardown worker --help`,
    )
    .action(async (options) => {
      if (!options.queue)
        throw new InputError('Give --queue redis://HOST:PORT: the Redis the sweep uses.');
      if (options.heartbeat !== undefined && !(options.heartbeat > 0))
        throw new InputError(`--heartbeat must be above 0 seconds, got ${options.heartbeat}.`);
      const { startQueueWorker } = await import('../sweep/queue-worker.ts');
      routeOutput(options);
      const name: string = options.name ?? `${hostname()}-${process.pid}`;
      const ran: object[] = [];
      // Trials end in BullMQ's callbacks, outside the command's context: write to its streams.
      const io = currentIo();
      const log = options.json === '-' ? io.stderr : io.stdout;
      const say = (text: string) => {
        if (!options.quiet) log.write(`${terminalSafe(text)}\n`);
      };
      const worker = await startQueueWorker({
        url: options.queue,
        name,
        heartbeatSeconds: options.heartbeat,
        threads: options.threads,
        onTrial: ({ trial, outcome, late }) => {
          if (!outcome) return say(`${name}: trial ${trial.id} of sweep ${trial.sweep} started`);
          ran.push({ sweep: trial.sweep, trial: trial.id, ...outcome, late: late === true });
          const result = outcome.status === 'done' ? `${trial.metric} ${outcome.metric}` : 'failed';
          say(
            `${name}: trial ${trial.id} ${result} (${outcome.seconds.toFixed(1)} s)` +
              (late ? ', late: the trial went to another worker meanwhile' : ''),
          );
        },
        onWarning: (message) => {
          if (!options.quiet) io.stderr.write(`${terminalSafe(`${name}: ${message}`)}\n`);
        },
      });
      say(`${name}: waiting for trials on ${options.queue} (Ctrl-C stops)`);
      const stop = () => void worker.stop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await worker.closed;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (options.json) {
        const provenance = { threads: options.threads, seeds: {} };
        emitJson(options.json, jsonResult('worker', provenance, { worker: name, trials: ran }));
      }
    });
}
