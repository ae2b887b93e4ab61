/**
 * Progress and cancellation for long library calls: a callback gets every step, batch or run as
 * it finishes, and an AbortSignal is checked at the same points (an aborted call rejects with the
 * signal's reason, an AbortError by default). The terminal bar (report/progress.ts) is drawn only
 * when `progress` is true, which only the CLI asks for.
 */
import { Progress } from './report/progress.ts';

export interface ProgressEvent {
  /** What is running: 'train', 'audit', 'inspect', 'grad', 'run'. */
  task: string;
  done: number;
  total: number;
  /** e.g. the current loss, or the detector running. */
  status?: string;
}

export interface ProgressOptions {
  /** Draw a bar on standard error (the CLI's choice; library callers leave it off). */
  progress?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  /** Checked between steps, batches and runs. */
  signal?: AbortSignal;
}

export interface ProgressTracker {
  tick(count?: number, status?: string): void;
  finish(): void;
}

/** A tracker that checks the signal, then reports to the callback and the bar (when asked for). */
export function trackProgress(task: string, total: number, options: ProgressOptions): ProgressTracker {
  options.signal?.throwIfAborted();
  const bar = new Progress(task, total, options.progress === true);
  let done = 0;
  return {
    tick(count = 1, status = '') {
      done += count;
      bar.tick(count, status);
      options.onProgress?.({ task, done, total, ...(status ? { status } : {}) });
      options.signal?.throwIfAborted();
    },
    finish() {
      bar.finish();
    },
  };
}
