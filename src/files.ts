/** File helpers shared by every writer: nothing is written half-way (temporary file, then rename). */
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { InputError } from './errors.ts';

export function writeFileAtomic(path: string, contents: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, contents);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Fail with a clear message when `path` is not a readable regular file. */
export function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new InputError(`${what} '${path}' does not exist: check the path.`);
  if (!statSync(path).isFile()) throw new InputError(`${what} '${path}' is not a file.`);
}

/**
 * Writes every file of a result folder into a hidden staging folder, then moves them into `dir`
 * only once all were written, so a failure leaves `dir` as it was.
 */
export class StagedFolder {
  private readonly staging: string;
  private readonly names: string[] = [];

  constructor(private readonly dir: string) {
    this.staging = join(dirname(dir), `.${basename(dir)}.${process.pid}.staging`);
    rmSync(this.staging, { recursive: true, force: true });
    mkdirSync(this.staging, { recursive: true });
  }

  write(name: string, contents: Uint8Array | string): void {
    writeFileSync(join(this.staging, name), contents);
    this.names.push(name);
  }

  commit(): void {
    mkdirSync(this.dir, { recursive: true });
    for (const name of this.names) renameSync(join(this.staging, name), join(this.dir, name));
    rmSync(this.staging, { recursive: true, force: true });
  }

  abandon(): void {
    rmSync(this.staging, { recursive: true, force: true });
  }
}
