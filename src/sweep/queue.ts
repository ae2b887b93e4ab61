/**
 * The coordinator of a distributed sweep: puts the pending trials on the BullMQ queue in Redis
 * and collects what `teardown worker` processes (queue-worker.ts, any number, on any machine)
 * make of them. The coordinator alone writes the SQLite store, through the callbacks.
 *
 * Nothing is lost or doubled when the coordinator is killed at any moment:
 * - a trial's job id is `<sweep key>-<trial id>` (queue-connection.ts), so adding the pending
 *   trials again on --resume adds nothing for jobs already waiting, running or finished;
 * - a finished job stays on the queue (completed, or failed after too many stalls) until its
 *   result is recorded; then it is removed. Results that came in while no coordinator ran are read
 *   back from those jobs before anything is added;
 * - each result carries its run's unique id, recorded in the store in the same transaction as
 *   the result, so a result read twice (recorded, then the coordinator killed before removing the
 *   job) is recorded once; a second run's result for a finished trial is a late duplicate,
 *   discarded and counted (store.recordRun).
 */
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  connectRedis,
  jobId,
  lateKey,
  QUEUE_NAME,
  type LateResult,
  type QueueResult,
  type QueueTrial,
} from './queue-connection.ts';
import type { TrialOutcome } from './store.ts';
import type { TrialJob } from './trial.ts';

export type RecordVerdict = 'recorded' | 'duplicate' | 'seen';

export interface QueueCallbacks {
  /** A worker took this trial (again, when another worker takes it after a stall). */
  onStart(trial: number, worker: string): void;
  /** A result came back; the store's verdict. */
  onResult(trial: number, result: QueueResult): RecordVerdict;
  /** The coordinator stopped (the signal) before this running trial's result came back. */
  onAbandon(trial: number): void;
}

export interface QueueOptions {
  /** redis://HOST:PORT */
  url: string;
  /** The sweep's key (store.queueKey()): the prefix of its job ids. */
  sweep: string;
  /** How often the coordinator looks for results (default 50 ms). */
  pollMs?: number;
}

const ADD_CHUNK = 1000;

/** Runs `jobs` (the store's pending trials) through the queue; resolves when each has a result. */
export async function runOnQueue(
  jobs: readonly TrialJob[],
  options: QueueOptions,
  callbacks: QueueCallbacks,
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  const connection = await connectRedis(options.url);
  const { Queue } = await import('bullmq');
  const queue = new Queue(QUEUE_NAME, { connection });
  // A lost connection: ioredis reconnects and the commands wait for it (maxRetriesPerRequest
  // null); without a listener BullMQ would print the error itself.
  queue.on('error', () => {});
  const collector = new ResultCollector(queue, connection, options.sweep, callbacks, jobs);
  const addWaiting = () =>
    addJobs(
      queue,
      options.sweep,
      jobs.filter((job) => collector.waitingFor(job.id)),
    );
  // After a reconnection the trials still waiting are added again: a Redis restarted without
  // persistence has lost their jobs; jobs that survived stay as they are (same ids).
  let reconnected = false;
  connection.on('ready', () => (reconnected = true));
  try {
    await collector.collect();
    await addWaiting();
    while (collector.remaining > 0) {
      await sleep(options.pollMs ?? 50, signal);
      if (reconnected) {
        reconnected = false;
        await addWaiting();
      }
      await collector.collect();
    }
  } catch (error) {
    if (signal?.aborted) collector.abandonRunning();
    throw error;
  } finally {
    await queue.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

/** Adds one job per trial, its id the trial's key: a job already there (any state) stays as is. */
async function addJobs(queue: Queue, sweep: string, jobs: readonly TrialJob[]): Promise<void> {
  for (let start = 0; start < jobs.length; start += ADD_CHUNK) {
    await queue.addBulk(
      jobs.slice(start, start + ADD_CHUNK).map((job) => ({
        name: 'trial',
        data: { ...job, sweep } satisfies QueueTrial,
        opts: {
          jobId: jobId(sweep, job.id),
          attempts: 1,
          removeOnComplete: false,
          removeOnFail: false,
        },
      })),
    );
  }
}

/** Reads the sweep's finished jobs, late results and running trials off the queue. */
class ResultCollector {
  private readonly waiting: Set<number>;
  /** Trial → the worker last seen running it. */
  private readonly running = new Map<number, string>();

  constructor(
    private readonly queue: Queue,
    private readonly redis: Redis,
    private readonly sweep: string,
    private readonly callbacks: QueueCallbacks,
    jobs: readonly TrialJob[],
  ) {
    this.waiting = new Set(jobs.map((job) => job.id));
  }

  get remaining(): number {
    return this.waiting.size;
  }

  waitingFor(trial: number): boolean {
    return this.waiting.has(trial);
  }

  async collect(): Promise<void> {
    const ours = (job: Job | undefined): job is Job =>
      job !== undefined && String(job.id).startsWith(`${this.sweep}-`);
    const [active, completed, failed] = await Promise.all(
      (['active', 'completed', 'failed'] as const).map(async (state) =>
        (await this.queue.getJobs([state], 0, -1, true)).filter(ours),
      ),
    );
    for (const job of active) this.noteRunning(job);
    for (const job of completed) await this.finish(job, completedResult(job));
    for (const job of failed) await this.finish(job, failedResult(job));
    await this.collectLate();
  }

  abandonRunning(): void {
    for (const trial of this.running.keys())
      if (this.waiting.has(trial)) this.callbacks.onAbandon(trial);
  }

  private noteRunning(job: Job<QueueTrial>): void {
    const worker = (job.progress as { worker?: unknown } | undefined)?.worker;
    const trial = job.data.id;
    if (typeof worker !== 'string' || this.running.get(trial) === worker) return;
    if (!this.waiting.has(trial)) return;
    this.running.set(trial, worker);
    this.callbacks.onStart(trial, worker);
  }

  /** Records a finished job's result, then removes the job (recorded first: see the top). */
  private async finish(job: Job<QueueTrial>, result: QueueResult): Promise<void> {
    this.record(job.data.id, result);
    await job.remove();
  }

  /**
   * Results pushed by workers that lost their job's lock (queue-worker.ts): read in order,
   * recorded, then trimmed off the list; a crash in between reads them again, as 'seen'.
   */
  private async collectLate(): Promise<void> {
    const key = lateKey(this.sweep);
    const entries = await this.redis.lrange(key, 0, -1);
    if (entries.length === 0) return;
    for (const entry of entries) {
      const late = JSON.parse(entry) as LateResult;
      this.record(late.trial, late);
    }
    await this.redis.ltrim(key, entries.length, -1);
  }

  private record(trial: number, result: QueueResult): void {
    this.callbacks.onResult(trial, result);
    // Whatever the verdict, the store holds a finished trial now.
    this.waiting.delete(trial);
    this.running.delete(trial);
  }
}

/** A completed job's return value (queue-worker.ts), checked. */
function completedResult(job: Job<QueueTrial>): QueueResult {
  const value = job.returnvalue as Partial<QueueResult> | null;
  if (value && typeof value.run === 'string' && value.outcome) return value as QueueResult;
  return {
    run: `completed:${job.id}:${job.finishedOn}`,
    worker: 'queue',
    outcome: failedOutcome(`the worker returned no result (${JSON.stringify(value)})`),
  };
}

/**
 * A failed job: BullMQ failed it after its workers stalled (died, or stopped renewing the lock)
 * more than MAX_STALLS times, or the worker's processor threw. The run id is the job's own.
 */
function failedResult(job: Job<QueueTrial>): QueueResult {
  const worker = (job.progress as { worker?: unknown } | undefined)?.worker;
  return {
    run: `failed:${job.id}:${job.finishedOn}`,
    worker: typeof worker === 'string' ? worker : 'queue',
    outcome: failedOutcome(
      `the queue failed the trial: ${job.failedReason} (its workers stopped answering ` +
        `${job.stalledCounter} times; a trial that kills its worker fails after several tries)`,
    ),
  };
}

function failedOutcome(error: string): TrialOutcome {
  return { status: 'failed', metric: null, seconds: 0, error };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
