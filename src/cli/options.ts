/** Parsers for flags shared by several commands. */
import { cpus } from 'node:os';
import { InputError } from '../errors.ts';
import { NpyFile } from '../data/npy.ts';
import type { RuntimeOptions } from '../runtime/session.ts';

/** `NAME=VALUE`, split at the first '=' (names may hold ':' and '/'). */
export function splitAssignment(text: string, flag: string, example: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1) throw new InputError(`${flag} expects NAME=VALUE (e.g. ${flag} ${example}), got '${text}'.`);
  return [text.slice(0, at), text.slice(at + 1)];
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];

export function parseInputs(specs: string[] = [], flag = '--input'): Record<string, NpyFile> {
  const inputs: Record<string, NpyFile> = {};
  for (const spec of specs) {
    const [name, path] = splitAssignment(spec, flag, `${flag === '--attribute' ? 'color' : 'input'}=x.npy`);
    inputs[name] = new NpyFile(path);
  }
  return inputs;
}

export function parseDims(specs: string[] = []): Record<string, number> {
  return Object.fromEntries(specs.map((spec) => {
    const [name, size] = splitAssignment(spec, '--dim', 'seq=12');
    return [name, positiveInteger(size, `--dim ${name}`)];
  }));
}

export function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InputError(`${flag} expects a positive integer, got '${text}'.`);
  return value;
}

export function runtimeOptions(options: { threads?: string; verbose?: boolean }): RuntimeOptions {
  return { threads: options.threads ? positiveInteger(options.threads, '--threads') : cpus().length, verbose: options.verbose };
}
