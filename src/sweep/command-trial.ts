/**
 * A trial that runs the user's own training command. Placeholders `{name}` take the trial's
 * parameter values and `{seed}` its seed: in a command line (run by /bin/sh) each value is
 * substituted single-quoted, so no value is ever read as shell syntax; in an argv array each is
 * substituted as it is, with no shell involved. The last non-empty line of standard output must be
 * a JSON object holding the metric. A non-zero exit, a missing or non-finite metric, or a run past
 * the timeout is a failed trial, recorded with the tail of standard error.
 */
import { spawn } from 'node:child_process';
import type { Params } from './plan.ts';
import type { TrialOutcome } from './store.ts';

export interface CommandTrial {
  command: string | string[];
  cwd: string;
  params: Params;
  seed: number;
  metric: string;
  timeoutSeconds: number;
  signal?: AbortSignal;
}

/** Characters of standard error kept with a failed trial. */
export const STDERR_TAIL = 2000;
/** Characters of standard output kept: enough for a last line holding a JSON object. */
const STDOUT_TAIL = 64 * 1024;

/** 'it'\''s' — a value as one single-quoted shell word. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}

/** The template with every {name} replaced by `format(value)`. */
export function substitute(
  template: string,
  values: Params,
  format: (value: string) => string,
): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) =>
    Object.hasOwn(values, name) ? format(String(values[name])) : whole,
  );
}

/** The program and its arguments for this trial. */
export function commandLine(trial: Pick<CommandTrial, 'command' | 'params' | 'seed'>): {
  file: string;
  args: string[];
} {
  const values = { ...trial.params, seed: trial.seed };
  if (typeof trial.command === 'string') {
    return { file: '/bin/sh', args: ['-c', substitute(trial.command, values, shellQuote)] };
  }
  const [file, ...args] = trial.command.map((part) => substitute(part, values, (value) => value));
  return { file, args };
}

export function runCommandTrial(trial: CommandTrial): Promise<TrialOutcome> {
  const started = performance.now();
  const { file, args } = commandLine(trial);
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // Its own process group, so a timeout or a cancelled sweep stops the command and its children.
    const child = spawn(file, args, {
      cwd: trial.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stop = () => killGroup(child.pid);
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, trial.timeoutSeconds * 1000);
    trial.signal?.addEventListener('abort', stop, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = (stdout + chunk.toString()).slice(-STDOUT_TAIL);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL);
    });
    const finish = (outcome: Omit<TrialOutcome, 'seconds'>) => {
      clearTimeout(timer);
      trial.signal?.removeEventListener('abort', stop);
      resolve({ ...outcome, seconds: (performance.now() - started) / 1000 });
    };
    child.on('error', (error) => finish(failed(`cannot run '${file}': ${error.message}`, '')));
    child.on('close', (code, signal) => {
      if (timedOut) return finish(failed(`timed out after ${trial.timeoutSeconds} s`, stderr));
      if (code !== 0)
        return finish(failed(signal ? `killed by ${signal}` : `exit status ${code}`, stderr));
      finish(metricOf(stdout, trial.metric, stderr));
    });
  });
}

/** The metric from the last non-empty line of standard output. */
export function metricOf(
  stdout: string,
  metric: string,
  stderr = '',
): Omit<TrialOutcome, 'seconds'> {
  const lines = stdout
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const last = lines.at(-1);
  if (last === undefined)
    return failed(
      `printed nothing: the last line of standard output must be a JSON object holding '${metric}'`,
      stderr,
    );
  const result = parseJsonLine(last);
  if (result === undefined) {
    return failed(
      `the last line of standard output is not JSON: ${JSON.stringify(last.slice(0, 200))}`,
      stderr,
    );
  }
  if (typeof result !== 'object' || result === null || Array.isArray(result)) {
    return failed(
      `the last line of standard output is not a JSON object: ${last.slice(0, 200)}`,
      stderr,
    );
  }
  const value = (result as Record<string, unknown>)[metric];
  if (value === undefined)
    return failed(
      `the result has no '${metric}' (it has ${Object.keys(result).join(', ') || 'nothing'})`,
      stderr,
    );
  // JSON has no NaN: scripts write it as null, "NaN" or a string; all are a failed trial.
  const number = typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(number))
    return failed(`metric '${metric}' is ${JSON.stringify(value)}, not a finite number`, stderr);
  return { status: 'done', metric: number };
}

/** JSON, also as Python's json.dumps writes it: bare NaN and ±Infinity read as strings. */
function parseJsonLine(line: string): unknown {
  for (const text of [line, line.replace(/(?<![\w"])(-?Infinity|NaN)(?![\w"])/g, '"$1"')]) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Try the next reading.
    }
  }
  return undefined;
}

function failed(reason: string, stderr: string): Omit<TrialOutcome, 'seconds'> {
  const tail = stderr.trim();
  return {
    status: 'failed',
    metric: null,
    error: tail ? `${reason}; standard error ends:\n${tail}` : reason,
  };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
