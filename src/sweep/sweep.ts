/**
 * A sweep as a library call: every trial of the plan run on a local pool of worker processes,
 * each result committed to DIR/sweep.db as it arrives, then the analysis written to
 * DIR/sweep.json and returned.
 *
 *   const spec = readSweepSpec('sweep.json');
 *   const result = await sweep(spec, { out: 'runs/lr', workers: 2, onUpdate: (s) => log(s.done) });
 *   result.analysis.success.rate;
 *
 * Progress: `onProgress` (ProgressEvent: finished trials of all) and `onUpdate` (done, running,
 * failed, the best mean so far, the time left). `signal` cancels: workers stop, the trials in
 * flight go back to pending, and `resume: true` later continues where it stopped.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../files.ts';
import type { ProgressOptions } from '../progress.ts';
import { VERSION } from '../version.ts';
import { analyzeSweep, meets, type SweepAnalysis } from './analysis.ts';
import { planConfigurations, planTrials, type Configuration, type Params } from './plan.ts';
import { runInProcess, runLocalPool, type PoolCallbacks } from './pool.ts';
import type { SweepSpec } from './spec.ts';
import { SweepStore, type StoreCounts, type TrialOutcome, type TrialRecord } from './store.ts';
import type { TrialJob } from './trial.ts';

export interface SweepOptions extends ProgressOptions {
  /** The sweep's folder: sweep.db (the store) and sweep.json (the analysis). */
  out: string;
  /** Worker processes (default: one per core); 0 runs the trials in this process, in turn. */
  workers?: number;
  /** Continue the sweep already in `out` (its spec must be the same). */
  resume?: boolean;
  /** Training trials at smoke size (a few steps). */
  smoke?: boolean;
  /** onnxruntime threads of each training trial (default 1). */
  threads?: number;
  onUpdate?: (status: SweepStatus) => void;
  /**
   * redis://HOST:PORT: run the trials through the BullMQ queue there, on `teardown worker`
   * processes (queue.ts), instead of the local pool; this process keeps the store.
   */
  queue?: string;
}

export interface SweepStatus {
  total: number;
  done: number;
  failed: number;
  running: number;
  pending: number;
  /** The best configuration mean so far (over its finished seeds). */
  best: { configuration: number; params: Params; mean: number } | null;
  /** Estimated from this run's pace; null before the first trial ends. */
  secondsLeft: number | null;
}

export interface SweepResult {
  dir: string;
  counts: StoreCounts;
  /** Trials that were running when a previous coordinator stopped and ran again (resume). */
  requeued: number;
  trials: TrialRecord[];
  analysis: SweepAnalysis;
}

export const ANALYSIS_FILE = 'sweep.json';

export async function sweep(spec: SweepSpec, options: SweepOptions): Promise<SweepResult> {
  options.signal?.throwIfAborted();
  const configurations = planConfigurations(spec);
  if (spec.trial.kind === 'train') await checkTrainTemplate(spec, configurations, options.smoke);
  if (options.queue) await (await import('./queue-connection.ts')).probeRedis(options.queue);
  const store = await SweepStore.open(
    options.out,
    spec,
    { configurations, trials: planTrials(spec) },
    options.resume === true,
    runSettings(spec, options),
  );
  try {
    const requeued = store.requeueRunning();
    await runPending(spec, store, configurations, options);
    const trials = store.trials();
    const analysis = analyzeSweep(spec, configurations, trials);
    const counts = store.counts();
    writeFileAtomic(
      join(options.out, ANALYSIS_FILE),
      `${JSON.stringify(sweepJson(spec, counts, trials, analysis), null, 2)}\n`,
    );
    return { dir: options.out, counts, requeued, trials, analysis };
  } finally {
    store.close();
  }
}

/** What else a trial's result depends on: a training trial's size (smoke) and threads. */
function runSettings(spec: SweepSpec, options: SweepOptions): Record<string, unknown> {
  if (spec.trial.kind !== 'train') return {};
  return { smoke: options.smoke === true, threads: options.threads ?? 1 };
}

/** A training template that cannot make a valid spec is refused before any trial runs. */
async function checkTrainTemplate(
  spec: SweepSpec,
  configurations: Configuration[],
  smoke?: boolean,
): Promise<void> {
  if (spec.trial.kind !== 'train') return;
  const { checkTrainMetric, checkTrainTemplate } = await import('./train-trial.ts');
  checkTrainMetric(spec.metric);
  checkTrainTemplate(spec.trial.train, configurations, smoke);
}

async function runPending(
  spec: SweepSpec,
  store: SweepStore,
  configurations: Configuration[],
  options: SweepOptions,
): Promise<void> {
  const pending = store.pendingTrials();
  const total = spec.configurations * spec.seeds;
  const status = new StatusKeeper(spec, configurations, store.trials(), total);
  const started = performance.now();
  let finishedHere = 0;
  const report = () => {
    // Trials left at this run's pace so far (trials finished per second, all workers together).
    const rate = finishedHere / ((performance.now() - started) / 1000);
    const left = status.pending + status.running;
    options.onUpdate?.({
      ...status.snapshot(),
      secondsLeft: finishedHere > 0 ? left / rate : null,
    });
  };
  const jobs: TrialJob[] = pending.map((trial) => ({
    id: trial.id,
    configuration: trial.configuration,
    template: spec.trial,
    params: trial.params,
    seed: trial.seed,
    metric: spec.metric,
    timeoutSeconds: spec.timeoutSeconds,
    smoke: options.smoke,
    threads: options.threads,
  }));
  report();
  const finished = (job: TrialJob, outcome: TrialOutcome) => {
    status.finish(job, outcome);
    finishedHere += 1;
    report();
    options.onProgress?.({
      task: 'sweep',
      done: status.done + status.failed,
      total,
      status: status.line(),
    });
  };
  if (options.queue) {
    const { runOnQueue } = await import('./queue.ts');
    const byId = new Map(jobs.map((job) => [job.id, job]));
    const started = new Set<number>();
    const start = (id: number) => {
      if (!started.has(id)) status.start();
      started.add(id);
    };
    await runOnQueue(
      jobs,
      { url: options.queue, sweep: store.queueKey() },
      {
        onStart(id, worker) {
          store.markRunning(id, worker);
          start(id);
          report();
        },
        onResult(id, result) {
          const verdict = store.recordRun(result.run, id, result.outcome, result.worker);
          const job = byId.get(id);
          if (verdict === 'recorded' && job) {
            start(id);
            finished(job, result.outcome);
          }
          return verdict;
        },
        onAbandon(id) {
          store.markPending(id);
        },
      },
      options.signal,
    );
    return;
  }
  const pool: PoolCallbacks = {
    onStart(job, worker) {
      store.markRunning(job.id, worker);
      status.start();
      report();
    },
    onResult(job, outcome, worker) {
      store.record(job.id, outcome, worker);
      finished(job, outcome);
    },
    onAbandon(job) {
      store.markPending(job.id);
    },
  };
  if (options.workers === 0) await runInProcess(jobs, pool, options.signal);
  else await runLocalPool(jobs, options.workers ?? cpus().length, pool, options.signal);
}

/** Counts and the best configuration mean, kept as results arrive. */
class StatusKeeper {
  done = 0;
  failed = 0;
  running = 0;
  pending: number;
  private readonly metrics = new Map<number, number[]>();

  constructor(
    private readonly spec: SweepSpec,
    private readonly configurations: Configuration[],
    trials: TrialRecord[],
    private readonly total: number,
  ) {
    for (const trial of trials) {
      if (trial.status === 'done') this.add(trial.configuration, trial.metric);
      if (trial.status === 'done') this.done += 1;
      if (trial.status === 'failed') this.failed += 1;
    }
    this.pending = total - this.done - this.failed;
  }

  start(): void {
    this.running += 1;
    this.pending -= 1;
  }

  finish(job: TrialJob, outcome: TrialOutcome): void {
    this.running -= 1;
    if (outcome.status === 'done') {
      this.done += 1;
      this.add(job.configuration, outcome.metric);
    } else this.failed += 1;
  }

  snapshot(): Omit<SweepStatus, 'secondsLeft'> {
    return {
      total: this.total,
      done: this.done,
      failed: this.failed,
      running: this.running,
      pending: this.pending,
      best: this.best(),
    };
  }

  line(): string {
    const best = this.best();
    return [
      `${this.running} running`,
      `${this.failed} failed`,
      best ? `best ${this.spec.metric} ${best.mean.toPrecision(4)}` : '',
    ]
      .filter(Boolean)
      .join(', ');
  }

  private add(configuration: number, metric: number | null): void {
    if (metric === null) return;
    this.metrics.set(configuration, [...(this.metrics.get(configuration) ?? []), metric]);
  }

  private best(): SweepStatus['best'] {
    let best: SweepStatus['best'] = null;
    for (const [configuration, metrics] of this.metrics) {
      const mean = metrics.reduce((sum, x) => sum + x, 0) / metrics.length;
      const isBetter =
        best === null || (this.spec.direction === 'maximize' ? mean > best.mean : mean < best.mean);
      if (isBetter)
        best = { configuration, params: this.configurations[configuration].params, mean };
    }
    return best;
  }
}

/** DIR/sweep.json: the spec, the counts, every trial and the analysis (docs/sweep.md). */
function sweepJson(
  spec: SweepSpec,
  counts: StoreCounts,
  trials: TrialRecord[],
  analysis: SweepAnalysis,
): object {
  const created = {
    tool: 'teardown',
    version: VERSION,
    command: 'sweep',
    createdAt: new Date().toISOString(),
  };
  return { ...created, ...sweepResultBody(spec, { counts, trials, analysis }) };
}

/** The result as JSON (sweep.json and --json): spec, counts, trials, then the analysis. */
export function sweepResultBody(
  spec: SweepSpec,
  result: Pick<SweepResult, 'counts' | 'trials' | 'analysis'>,
): object {
  const { counts, trials, analysis } = result;
  return {
    spec,
    counts,
    trials: trials.map((t) => ({
      id: t.id,
      configuration: t.configuration,
      params: t.params,
      seed: t.seed,
      status: t.status,
      metric: t.metric,
      seconds: t.seconds,
      worker: t.worker,
      ...(t.error ? { error: t.error } : {}),
      success: t.status === 'done' && t.metric !== null && meets(spec, t.metric),
    })),
    ...analysis,
  };
}
