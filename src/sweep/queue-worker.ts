/**
 * A worker of a distributed sweep (`teardown worker --queue redis://HOST:PORT`): takes trials off
 * the BullMQ queue one at a time, runs each, and returns its result as the job's return value,
 * which the coordinator reads back (queue.ts). While a trial runs, BullMQ renews the job's lock
 * (the heartbeat, queue-connection.ts heartbeatSettings); a killed worker's lock expires and the
 * stalled check of any other worker puts the trial back on the queue.
 *
 * Command trials run as child processes of this one; training trials run in a forked process
 * kept between trials (queue-trial-process.ts), so onnxruntime never holds up the heartbeat and a
 * native crash fails the trial, not the worker.
 *
 *   const worker = await startQueueWorker({ url: 'redis://127.0.0.1:6379', name: 'gpu-1' });
 *   await worker.closed; // after worker.stop()
 */
import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  connectRedis,
  DEFAULT_HEARTBEAT_SECONDS,
  heartbeatSettings,
  lateKey,
  QUEUE_NAME,
  QUEUE_PREFIX,
  type LateResult,
  type QueueResult,
  type QueueTrial,
} from './queue-connection.ts';
import { TrialProcess } from './queue-trial-process.ts';
import type { TrialOutcome } from './store.ts';
import { runTrial, type TrialJob } from './trial.ts';

export interface QueueWorkerOptions {
  url: string;
  /** How the store names this worker (default `<hostname>-<pid>`). */
  name: string;
  /** Lock duration in seconds (default 30): a dead worker's trial is re-queued within ~2×. */
  heartbeatSeconds?: number;
  /** onnxruntime threads of training trials here, instead of the sweep's own count. */
  threads?: number;
  /** A trial started or ended (for the command line's log). */
  onTrial?: (event: { trial: QueueTrial; outcome?: TrialOutcome; late?: boolean }) => void;
  /** BullMQ or Redis reported a problem the worker goes on after (a lost lock, a reconnection). */
  onWarning?: (message: string) => void;
}

export interface QueueWorker {
  /** Stops taking trials; the one running is stopped and left to the stalled check. */
  stop(): Promise<void>;
  /** Settles when the worker has stopped. */
  closed: Promise<void>;
}

export async function startQueueWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  const connection = await connectRedis(options.url);
  const { Worker } = await import('bullmq');
  const running = new Set<AbortController>();
  const trainingProcess = new TrialProcess();
  const processor = async (job: Job<QueueTrial>, token?: string): Promise<QueueResult> => {
    options.onTrial?.({ trial: job.data });
    await job.updateProgress({ worker: options.name });
    const controller = new AbortController();
    running.add(controller);
    const trial =
      options.threads === undefined ? job.data : { ...job.data, threads: options.threads };
    const outcome = await runIsolated(trial, controller.signal, trainingProcess).finally(() =>
      running.delete(controller),
    );
    const result: QueueResult = { run: randomUUID(), worker: options.name, outcome };
    const late = !(await holdsLock(connection, job, token));
    if (late) await pushLate(connection, job.data, result);
    options.onTrial?.({ trial: job.data, outcome, late });
    return result;
  };
  const worker = new Worker<QueueTrial, QueueResult>(QUEUE_NAME, processor, {
    connection,
    name: options.name,
    concurrency: 1,
    ...heartbeatSettings(options.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS),
  });
  worker.on('error', (error) => options.onWarning?.(error.message));
  let resolveClosed: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  return {
    closed,
    async stop() {
      for (const controller of running) controller.abort();
      await worker.close(true);
      trainingProcess.close();
      await connection.quit().catch(() => connection.disconnect());
      resolveClosed();
    },
  };
}

/** A command trial here (its command is a child process); a training trial in `training`. */
async function runIsolated(
  job: TrialJob,
  signal: AbortSignal,
  training: TrialProcess,
): Promise<TrialOutcome> {
  try {
    if (job.template.kind === 'command') return await runTrial(job, signal);
    return await training.run(job, signal);
  } catch (error) {
    return {
      status: 'failed',
      metric: null,
      seconds: 0,
      error: `worker error: ${(error as Error)?.stack ?? String(error)}`,
    };
  }
}

/**
 * Whether this worker still holds the job's lock. It does not when it stopped renewing it for
 * longer than the heartbeat (paused, cut off from Redis): the stalled check has then given the
 * trial to another worker, and BullMQ will refuse this worker's result.
 */
async function holdsLock(redis: Redis, job: Job, token: string | undefined): Promise<boolean> {
  const lock = await redis.get(`${QUEUE_PREFIX}:${QUEUE_NAME}:${job.id}:lock`);
  return token !== undefined && lock === token;
}

/** Such a late result still reaches the coordinator, which discards and counts it. */
async function pushLate(redis: Redis, trial: QueueTrial, result: QueueResult): Promise<void> {
  const late: LateResult = { ...result, trial: trial.id };
  await redis.rpush(lateKey(trial.sweep), JSON.stringify(late));
}
