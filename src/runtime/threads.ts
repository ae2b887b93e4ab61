/**
 * The intra-op thread count given to onnxruntime, checked before a session is made (kept apart
 * from session.ts so that the command line can check --threads without loading onnxruntime).
 */
import { availableParallelism } from 'node:os';
import { InputError } from '../errors.ts';

/** More intra-op threads is a mistake: onnxruntime starts them all (100,000 hung the process). */
export const MAX_THREADS = 1024;

/** Refuses a thread count onnxruntime cannot or should not start (`flag` names it). */
export function checkThreads(threads: number | undefined, flag = 'threads'): void {
  if (threads === undefined || threads === 0) return;
  if (Number.isInteger(threads) && threads >= 1 && threads <= MAX_THREADS) return;
  const cores = availableParallelism();
  throw new InputError(
    `${flag} must be an integer from 1 to ${MAX_THREADS} (this machine has ${cores} cores), got ${threads}.`,
  );
}
