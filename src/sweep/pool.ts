/**
 * The local pool: N worker processes (child_process.fork of worker-entry), each running one trial
 * at a time and taking the next when it reports. A worker that dies mid-trial (out of memory, a
 * native crash) fails that trial with the tail of its standard error and is replaced. Cancelling
 * (the signal) stops every worker and hands the trials in flight back unfinished.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TrialOutcome } from './store.ts';
import type { TrialJob } from './trial.ts';

export interface PoolCallbacks {
  /** A worker took this trial. */
  onStart(job: TrialJob, worker: string): void;
  onResult(job: TrialJob, outcome: TrialOutcome, worker: string): void;
  /** The pool was cancelled before this trial finished. */
  onAbandon(job: TrialJob): void;
}

interface Worker {
  name: string;
  process: ChildProcess;
  job?: TrialJob;
  stderr: string;
}

const STDERR_TAIL = 2000;

/** The worker's module beside this one: .ts under tsx (the checkout), .js in dist/. */
export function workerEntry(): { path: string; execArgv: string[] } {
  const typescript = import.meta.url.endsWith('.ts');
  const path = fileURLToPath(
    new URL(`./worker-entry.${typescript ? 'ts' : 'js'}`, import.meta.url),
  );
  return { path, execArgv: typescript ? ['--import', import.meta.resolve('tsx')] : [] };
}

export function runLocalPool(
  jobs: readonly TrialJob[],
  workerCount: number,
  callbacks: PoolCallbacks,
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  const queue = [...jobs];
  const workers = new Set<Worker>();
  const entry = workerEntry();
  let serial = 0;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finishIfIdle = () => {
      if (settled || queue.length > 0 || [...workers].some((worker) => worker.job)) return;
      settled = true;
      for (const worker of workers) worker.process.disconnect();
      resolve();
    };
    const dispatch = (worker: Worker) => {
      // A callback may have cancelled the pool (an abort from onResult): start nothing more.
      if (settled) return;
      const job = queue.shift();
      if (!job) return finishIfIdle();
      worker.job = job;
      callbacks.onStart(job, worker.name);
      worker.process.send({ type: 'run', job });
    };
    const start = () => {
      const child = fork(entry.path, [], {
        execArgv: entry.execArgv,
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
      const worker: Worker = { name: `local-${++serial}`, process: child, stderr: '' };
      workers.add(worker);
      child.stderr?.on('data', (chunk: Buffer) => {
        worker.stderr = (worker.stderr + chunk.toString()).slice(-STDERR_TAIL);
      });
      child.on('message', (message: { type: string; id?: number; outcome?: TrialOutcome }) => {
        if (settled) return;
        if (message.type === 'result' && worker.job && message.id === worker.job.id) {
          const job = worker.job;
          worker.job = undefined;
          callbacks.onResult(job, message.outcome as TrialOutcome, worker.name);
        }
        dispatch(worker);
      });
      child.on('exit', (code, exitSignal) => {
        workers.delete(worker);
        if (settled || !worker.job) return;
        const job = worker.job;
        const how = exitSignal ? `killed by ${exitSignal}` : `exit status ${code}`;
        callbacks.onResult(
          job,
          {
            status: 'failed',
            metric: null,
            seconds: 0,
            error: `the worker process died (${how}); its standard error ends:\n${worker.stderr.trim()}`,
          },
          worker.name,
        );
        if (queue.length > 0) start();
        else finishIfIdle();
      });
    };
    signal?.addEventListener(
      'abort',
      () => {
        if (settled) return;
        settled = true;
        for (const worker of workers) {
          if (worker.job) callbacks.onAbandon(worker.job);
          worker.process.kill('SIGTERM');
        }
        reject(signal.reason);
      },
      { once: true },
    );
    const count = Math.max(1, Math.min(workerCount, queue.length));
    if (queue.length === 0) return finishIfIdle();
    for (let i = 0; i < count; i++) start();
  });
}

/** The worker name of trials run by runInProcess. */
export const IN_PROCESS_WORKER = 'in-process';

/**
 * Every trial in this process, one after another (`workers: 0`): no worker process to start and
 * no JIT to warm again, for callers whose trials are short (the race's backprop search), at the
 * price of the pool's isolation (a native crash ends the caller too).
 */
export async function runInProcess(
  jobs: readonly TrialJob[],
  callbacks: PoolCallbacks,
  signal?: AbortSignal,
): Promise<void> {
  const { runTrial } = await import('./trial.ts');
  for (const job of jobs) {
    signal?.throwIfAborted();
    callbacks.onStart(job, IN_PROCESS_WORKER);
    let outcome: TrialOutcome;
    try {
      outcome = await runTrial(job, signal);
    } catch (error) {
      callbacks.onAbandon(job);
      throw error;
    }
    callbacks.onResult(job, outcome, IN_PROCESS_WORKER);
  }
}
