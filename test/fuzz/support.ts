/**
 * What every fuzz target shares: the run count and seed, and the property every reader and
 * command must keep whatever it is given — it returns a value or throws one of the project's
 * UserErrors (never a TypeError, RangeError or anything else), soon, without a large allocation.
 *
 * `npm test` runs each target FUZZ_RUNS times (default 200) from seed FUZZ_SEED (default 14), so
 * a run is reproducible; longer runs by hand:
 *   FUZZ_RUNS=20000 FUZZ_SEED=$RANDOM node --import tsx --test test/fuzz/npy.test.ts
 * A failure prints the seed, the path and the shrunk counterexample (fast-check's report).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { UserError } from '../../src/errors.ts';

export const FUZZ_RUNS = positiveInteger(process.env.FUZZ_RUNS, 200);
export const FUZZ_SEED = Number.parseInt(process.env.FUZZ_SEED ?? '14', 10);

/** fast-check's settings for a target: fixed seed, FUZZ_RUNS runs (or `share` of them). */
export function fuzzParameters(share = 1): fc.Parameters<unknown> {
  return {
    seed: FUZZ_SEED,
    numRuns: Math.max(1, Math.round(FUZZ_RUNS * share)),
    endOnFailure: false,
    includeErrorInReport: true,
  };
}

/** A reader may take this long on an input of a few kilobytes (a loaded 2-core machine included). */
export const TIME_LIMIT_MS = 2000;
/** ...and keep at most this much more memory in array buffers while its result is alive. */
export const ALLOCATION_LIMIT_BYTES = 64 * 2 ** 20;

export type Outcome =
  | { kind: 'value'; value: unknown; ms: number; allocated: number }
  | { kind: 'refused'; error: UserError; ms: number; allocated: number }
  | { kind: 'bug'; error: unknown; ms: number; allocated: number };

/** Runs `read` and says how it ended, how long it took and how much array memory it kept. */
export async function outcomeOf(read: () => unknown): Promise<Outcome> {
  const before = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  try {
    const value = await read();
    const allocated = process.memoryUsage().arrayBuffers - before;
    return { kind: 'value', value, ms: performance.now() - start, allocated };
  } catch (error) {
    const ms = performance.now() - start;
    const allocated = process.memoryUsage().arrayBuffers - before;
    if (error instanceof UserError) return { kind: 'refused', error, ms, allocated };
    return { kind: 'bug', error, ms, allocated };
  }
}

/** The property: a value or a UserError, within the time and memory limits. */
export async function assertWellBehaved(read: () => unknown, what: string): Promise<Outcome> {
  const outcome = await outcomeOf(read);
  if (outcome.kind === 'bug') {
    const error = outcome.error as Error;
    assert.fail(
      `${what}: threw ${error?.name ?? typeof error} (not a UserError): ${error?.stack ?? error}`,
    );
  }
  if (outcome.kind === 'refused') assertOneMessage(outcome.error, what);
  assert.ok(outcome.ms < TIME_LIMIT_MS, `${what}: took ${outcome.ms.toFixed(0)} ms`);
  assert.ok(
    outcome.allocated < ALLOCATION_LIMIT_BYTES,
    `${what}: kept ${(outcome.allocated / 2 ** 20).toFixed(0)} MiB of array buffers`,
  );
  return outcome;
}

/** A refusal is one message that says something (not an empty or 'undefined' text). */
function assertOneMessage(error: UserError, what: string): void {
  assert.ok(error.message.length > 10, `${what}: refusal without a message`);
  assert.doesNotMatch(
    error.message,
    /\bundefined\b|\[object Object\]/,
    `${what}: ${error.message}`,
  );
}

/** A fresh folder for one case, removed when `body` is done. */
export async function inFreshDir<T>(body: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'teardown-fuzz-'));
  try {
    return await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Mutations of a byte string: flipped bytes, a cut, an inserted run, or bytes overwritten. */
export function mutatedBytes(original: Uint8Array): fc.Arbitrary<Uint8Array> {
  const position = fc.nat({ max: Math.max(0, original.length - 1) });
  return fc.oneof(
    fc
      .array(fc.tuple(position, fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 })
      .map((flips) => {
        const bytes = original.slice();
        for (const [at, mask] of flips) bytes[at] ^= mask;
        return bytes;
      }),
    fc.nat({ max: original.length }).map((cut) => original.slice(0, cut)),
    fc.tuple(position, fc.uint8Array({ minLength: 1, maxLength: 32 })).map(([at, run]) => {
      const bytes = new Uint8Array(original.length + run.length);
      bytes.set(original.subarray(0, at));
      bytes.set(run, at);
      bytes.set(original.subarray(at), at + run.length);
      return bytes;
    }),
    fc.tuple(position, fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([at, run]) => {
      const bytes = original.slice();
      bytes.set(run.subarray(0, Math.max(0, bytes.length - at)), at);
      return bytes;
    }),
  );
}

/** Strings that break naive code: empty, long, control characters, path parts, non-ASCII. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '.',
    '..',
    '/',
    '../x',
    '/etc/passwd',
    'a\u0000b',
    '\u001b[31mred',
    'é',
    '\uFEFF',
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.nat({ max: 400 }).map((length) => 'n'.repeat(length)),
);

function positiveInteger(text: string | undefined, fallback: number): number {
  const value = Number(text);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}
