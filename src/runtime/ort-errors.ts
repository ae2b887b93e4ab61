/**
 * onnxruntime's own messages, put in the project's form (what, which, the fix). Filled in below.
 */
import type { UserError } from '../errors.ts';

/** An error thrown by onnxruntime (or by Node on its behalf) as the UserError it stands for, if any. */
export function asUserError(_error: unknown): UserError | undefined {
  return undefined;
}
