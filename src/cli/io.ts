/**
 * Where the command line writes. `main(argv, io)` runs a command with its own streams (the
 * process's own from bin.ts, string buffers from an in-process test or fuzzer); the command
 * modules print through `print` and `printError`, which write to the streams of the `main` call
 * they run under. The streams are found through AsyncLocalStorage, so that concurrent in-process
 * calls each keep theirs; outside any `main` call they are the process's own.
 *
 * Text from model files (value and model names) may hold control characters: `terminalSafe`
 * escapes them before they are printed, so that a model cannot drive the terminal (ANSI escape
 * sequences, carriage returns that overwrite a line).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { formatWithOptions } from 'node:util';

/** A stream the command line writes to: process.stdout, or anything with `write`. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** The streams of one `main` call. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
}

interface CallState {
  io: CliIo;
  /** The arguments of the `main` call (recorded in --json results). */
  argv?: readonly string[];
  /** Where `print` goes: standard output, standard error (`--json -`) or nowhere (`--quiet`). */
  text: OutputStream | null;
  /** The exit status a command asks for without failing (3: a `--fail-on` gate). */
  exitCode: number;
}

const calls = new AsyncLocalStorage<CallState>();

function state(): CallState {
  const io = { stdout: process.stdout, stderr: process.stderr };
  return calls.getStore() ?? { io, text: process.stdout, exitCode: 0 };
}

/** Runs `body` with these streams; returns its result and the exit status a command asked for. */
export async function withIo<T>(
  io: CliIo,
  body: () => Promise<T>,
  argv?: readonly string[],
): Promise<{ value: T; exitCode: number }> {
  const call: CallState = { io, argv, text: io.stdout, exitCode: 0 };
  const value = await calls.run(call, body);
  return { value, exitCode: call.exitCode };
}

/** The streams of the current call. */
export function currentIo(): CliIo {
  return state().io;
}

/** The arguments of the current `main` call, if any. */
export function currentArgv(): readonly string[] | undefined {
  return calls.getStore()?.argv;
}

/** A command's text, formatted as console.log formats its arguments, then a newline. */
export function print(...args: unknown[]): void {
  state().text?.write(`${terminalSafe(formatWithOptions({ colors: false }, ...args))}\n`);
}

/** A line on standard error (warnings, progress lines), whatever --quiet or --json - say. */
export function printError(text: string): void {
  state().io.stderr.write(`${terminalSafe(text)}\n`);
}

/** Raw output on standard output (the JSON of `--json -`), not routed by --quiet. */
export function writeStdout(text: string): void {
  state().io.stdout.write(text);
}

/** Sends `print` to standard error (`--json -` takes standard output) or nowhere (`--quiet`). */
export function routeText(to: 'stdout' | 'stderr' | 'none'): void {
  const call = state();
  call.text = to === 'none' ? null : call.io[to];
}

/** Asks the current call to end with this status once the command is done (3: a --fail-on gate). */
export function setExitCode(code: number): void {
  const call = calls.getStore();
  if (call) call.exitCode = code;
  else process.exitCode = code;
}

/**
 * `text` with its control characters escaped: C0 (but tab and newline), DEL and C1 as `\xHH`,
 * so ESC [ 31 m shows as `\x1b[31m` and does nothing. Table layout and newlines are kept.
 */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${hex(c)}`);
}
