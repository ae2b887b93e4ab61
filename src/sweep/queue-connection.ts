/**
 * The Redis side of a distributed sweep, shared by the coordinator (queue.ts) and the workers
 * (queue-worker.ts): the queue's name and keys, the heartbeat settings, and the connection.
 *
 * ioredis and bullmq are imported here, inside functions, when a sweep runs with --queue or a
 * worker starts: never by `import 'backprop-teardown'` or the other commands.
 */
import type { Redis } from 'ioredis';
import { InputError } from '../errors.ts';
import type { TrialOutcome } from './store.ts';
import type { TrialJob } from './trial.ts';

/** The one BullMQ queue every sweep and worker shares; a job belongs to a sweep by its id. */
export const QUEUE_NAME = 'teardown-sweep';
/** BullMQ's default key prefix: a job's lock is `bull:<queue>:<job id>:lock`. */
export const QUEUE_PREFIX = 'bull';

/** A job's data: the trial, and the sweep it belongs to. */
export interface QueueTrial extends TrialJob {
  sweep: string;
}

/** What a worker returns for a job (its BullMQ return value) or pushes as a late result. */
export interface QueueResult {
  /** Unique per run of a trial: the store records each run once (store.recordRun). */
  run: string;
  worker: string;
  outcome: TrialOutcome;
}

/** A late result (the worker lost the job's lock, the trial went to another): with its trial. */
export interface LateResult extends QueueResult {
  trial: number;
}

/** The job id of a trial: `<sweep key>-<trial id>` (the same id again adds nothing). */
export const jobId = (sweep: string, trial: number): string => `${sweep}-${trial}`;

/** The Redis list where workers push results that came back after their job's lock expired. */
export const lateKey = (sweep: string): string => `${QUEUE_NAME}:late:${sweep}`;

/**
 * Heartbeats: a worker renews its job's lock every heartbeat/2 seconds; the lock lasts
 * `heartbeat` seconds; every worker checks for stalled jobs (active, lock gone) every
 * heartbeat/2. A worker killed mid-trial thus has its trial back on the queue within about
 * 2 × heartbeat (the lock expiring, then up to two stalled checks), taken by another worker.
 * A trial whose worker dies `MAX_STALLS` times fails (it is what kills them).
 */
export const DEFAULT_HEARTBEAT_SECONDS = 30;
export const MAX_STALLS = 5;

export function heartbeatSettings(seconds: number): {
  lockDuration: number;
  stalledInterval: number;
  maxStalledCount: number;
} {
  const lockDuration = Math.round(seconds * 1000);
  return {
    lockDuration,
    stalledInterval: Math.max(100, Math.round(lockDuration / 2)),
    maxStalledCount: MAX_STALLS,
  };
}

/** Checks a --queue URL: redis://HOST:PORT (or rediss://, with an optional password and db). */
export function checkQueueUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(`--queue '${url}' is not a URL: give redis://HOST:PORT.`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new InputError(
      `--queue '${url}' is a ${parsed.protocol} URL: give redis://HOST:PORT (Redis, BullMQ's store).`,
    );
  }
  return url;
}

/**
 * A connected ioredis client, or one clear InputError when Redis cannot be reached. Clients
 * that BullMQ blocks on (workers) need `maxRetriesPerRequest: null`; after the first connection,
 * a client reconnects by itself when Redis comes back.
 */
export async function connectRedis(url: string, timeoutMs = 5000): Promise<Redis> {
  checkQueueUrl(url);
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    // Before the first connection succeeds: fail at once, the caller says so. Afterwards: retry.
    retryStrategy: (times) => (connected ? Math.min(times * 200, 2000) : null),
  });
  let connected = false;
  redis.on('error', () => {
    // Reported through the failed command or connect() below; reconnection is ioredis' own.
  });
  try {
    await redis.connect();
    await redis.ping();
    connected = true;
    return redis;
  } catch (error) {
    redis.disconnect();
    throw new InputError(
      `--queue '${url}': cannot reach Redis (${(error as Error).message}). Start redis-server ` +
        `there (Debian: apt-get install redis-server) or give the right --queue URL.`,
    );
  }
}

/** Refuses an unreachable Redis before anything is written (one clear InputError). */
export async function probeRedis(url: string): Promise<void> {
  const redis = await connectRedis(url);
  await redis.quit().catch(() => redis.disconnect());
}
