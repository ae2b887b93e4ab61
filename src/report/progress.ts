/**
 * The command line's view of library progress: the CLI passes `progressReporter()` as the
 * `onProgress` callback of a library call (library code never draws). On a terminal it redraws one
 * line, at most ten times a second; elsewhere (a pipe, a log, CI) it writes one line every few
 * seconds and one at the end, so a long run in a pipe still shows movement. Every line gives the
 * rate and the time left, estimated as (total − done) ÷ (done ÷ elapsed).
 */
import type { ProgressEvent } from '../progress.ts';

export interface ProgressDisplayOptions {
  /** Draw nothing (--quiet). */
  quiet?: boolean;
  /** Where to draw: standard error unless told. */
  stream?: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** Seconds between lines when the stream is not a terminal. */
  intervalSeconds?: number;
  /** The clock in milliseconds (tests pass their own). */
  now?: () => number;
}

interface TaskState {
  started: number;
  lastDrawn: number;
  lastDone: number;
  finished: boolean;
}

/** An onProgress callback that draws every task it sees on standard error. */
export function progressReporter(
  options: ProgressDisplayOptions = {},
): (event: ProgressEvent) => void {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const terminal = stream.isTTY === true;
  const interval =
    1000 * (options.intervalSeconds ?? Number(process.env.TEARDOWN_PROGRESS_SECONDS ?? 5));
  const tasks = new Map<string, TaskState>();
  // Library calls report a step when it ends, not when the task starts: a task is taken to start
  // at the previous event (of any task) or when the reporter was made, as tasks run one by one.
  let lastEvent = now();
  return (event) => {
    if (options.quiet) return;
    const time = now();
    let state = tasks.get(event.task);
    // A task seen again after it finished (fixes retrain three times) starts over.
    if (!state || (state.finished && event.done < state.lastDone)) {
      state = { started: lastEvent, lastDrawn: -Infinity, lastDone: 0, finished: false };
      tasks.set(event.task, state);
    }
    lastEvent = time;
    const done = event.done >= event.total;
    state.lastDone = event.done;
    if (state.finished) return;
    const due = time - state.lastDrawn >= (terminal ? 100 : interval);
    if (!due && !done) return;
    state.lastDrawn = time;
    const line = progressLine(
      event,
      (time - state.started) / 1000,
      terminal ? stream.columns : undefined,
    );
    stream.write(terminal ? `\r${line}\x1b[K${done ? '\n' : ''}` : `${line}\n`);
    if (done) state.finished = true;
  };
}

/** 'audit [#####.....] 3/8 0.52/s 9.6 s left (shortcut)': the bar only when there is room. */
export function progressLine(event: ProgressEvent, seconds: number, columns?: number): string {
  const rate = seconds > 0 ? event.done / seconds : 0;
  const left =
    event.done >= event.total
      ? `done in ${duration(seconds)}`
      : rate > 0
        ? `${duration((event.total - event.done) / rate)} left`
        : '';
  // Nothing done yet (a resumed or just-started task): no rate to show.
  const counts =
    event.done === 0
      ? `0/${event.total}`
      : `${event.done}/${event.total} ${rate >= 10 ? rate.toFixed(0) : rate.toPrecision(2)}/s ${left}`.trimEnd();
  const status = event.status ? ` (${event.status})` : '';
  const width = 20;
  const filled = Math.min(width, Math.round((width * event.done) / Math.max(1, event.total)));
  const withBar = `${event.task} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${counts}${status}`;
  if (columns === undefined || withBar.length < columns) return withBar;
  return `${event.task} ${counts}${status}`.slice(0, Math.max(10, columns - 1));
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes} min ${Math.round(seconds % 60)} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
