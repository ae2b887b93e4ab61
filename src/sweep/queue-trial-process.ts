/**
 * The process a queue worker runs its training trials in: one child of worker-entry (as the
 * local pool's), kept between trials so that onnxruntime loads once, and started again after it
 * dies. A child that dies mid-trial (out of memory, a native crash) fails that trial with the
 * tail of its standard error; a stopped trial (the signal) takes the child with it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { workerEntry } from './pool.ts';
import type { TrialOutcome } from './store.ts';
import type { TrialJob } from './trial.ts';

const STDERR_TAIL = 2000;

export class TrialProcess {
  private child: ChildProcess | undefined;
  private stderr = '';

  /** Runs one trial in the child; never rejects (a failure is a failed outcome). */
  run(job: TrialJob, signal: AbortSignal): Promise<TrialOutcome> {
    const child = this.child ?? this.start();
    return new Promise((resolve) => {
      const done = (outcome: TrialOutcome) => {
        child.off('message', onMessage);
        child.off('exit', onExit);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onMessage = (message: { type: string; id?: number; outcome?: TrialOutcome }) => {
        if (message.type === 'result' && message.id === job.id) done(message.outcome!);
      };
      const onExit = (code: number | null, exitSignal: NodeJS.Signals | null) => {
        const how = exitSignal ? `killed by ${exitSignal}` : `exit status ${code}`;
        done(failed(`the trial's process died (${how}); its standard error ends:\n${this.stderr}`));
      };
      const onAbort = () => {
        child.kill('SIGTERM');
        done(failed('stopped: the worker was stopped'));
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) return onAbort();
      this.stderr = '';
      child.send({ type: 'run', job });
    });
  }

  /** Lets the child go (it leaves when disconnected, stopping its trial). */
  close(): void {
    if (this.child?.connected) this.child.disconnect();
    this.child = undefined;
  }

  private start(): ChildProcess {
    const entry = workerEntry();
    const child = fork(entry.path, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-STDERR_TAIL);
    });
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    this.child = child;
    return child;
  }
}

function failed(error: string): TrialOutcome {
  return { status: 'failed', metric: null, seconds: 0, error };
}
