/**
 * Progress and cancellation for long library calls: a callback gets every step, batch or run as
 * it finishes, and an AbortSignal is checked at the same points (an aborted call rejects with the
 * signal's reason, an AbortError by default). Nothing here draws: the CLI passes a callback that
 * does (report/progress.ts).
 */

export interface ProgressEvent {
  /** What is running: 'train', 'audit', 'inspect', 'grad', 'run'. */
  task: string;
  done: number;
  total: number;
  /** e.g. the current loss, or the detector running. */
  status?: string;
}

export interface ProgressOptions {
  onProgress?: (event: ProgressEvent) => void;
  /** Checked between steps, batches and runs. */
  signal?: AbortSignal;
}

export interface ProgressTracker {
  tick(count?: number, status?: string): void;
  finish(): void;
}

/** A tracker that checks the signal and reports each tick to the callback. */
export function trackProgress(
  task: string,
  total: number,
  options: ProgressOptions,
): ProgressTracker {
  options.signal?.throwIfAborted();
  let done = 0;
  return {
    tick(count = 1, status = '') {
      done += count;
      options.onProgress?.({ task, done, total, ...(status ? { status } : {}) });
      options.signal?.throwIfAborted();
    },
    finish() {},
  };
}
