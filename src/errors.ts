/**
 * Errors a user can fix (bad file, wrong shape, unsupported op) are UserErrors: the CLI prints
 * their message alone and exits 2. Anything else is a bug in teardown: it exits 1 with the stack.
 *
 * A message says what went wrong and with which thing, expected vs actual, then the fix:
 *   Input 'input' has rank 3 but the model expects rank 2 ([batch, 20]): reshape the .npy file.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The model file is missing, unreadable, not ONNX, or uses something onnxruntime cannot run. */
export class ModelError extends UserError {}

/** A tensor, table or feed does not match what the model or the command expects. */
export class InputError extends UserError {}

/** A hook name or pattern does not name a value of the model. */
export class HookError extends UserError {}

/** An intervention is malformed or does not fit the hook it targets. */
export class InterventionError extends UserError {}

/** The closest candidates to `name` by edit distance, for "did you mean" lists. */
export function nearestNames(name: string, candidates: Iterable<string>, count = 5): string[] {
  const scored = [...candidates].map((candidate) => ({ candidate, distance: editDistance(name, candidate) }));
  scored.sort((a, b) => a.distance - b.distance || a.candidate.localeCompare(b.candidate));
  return scored.slice(0, count).map((entry) => entry.candidate);
}

/** Levenshtein distance: the fewest single-character insertions, deletions and substitutions from a to b. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length];
}
