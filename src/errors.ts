/**
 * Errors a user can fix (bad file, wrong shape, unsupported op) are UserErrors: the CLI prints
 * their message alone and exits 2 (so do the system's refusals: environmentError). Anything else,
 * InternalError included, is a bug in teardown: exit 1, "please report it", the stack only with
 * --verbose.
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

/**
 * A bug in teardown found by one of its own checks (a graph it built that is not valid ONNX, a
 * state it should never reach): exit status 1 and "please report it", never advice to the user
 * about their model.
 */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}

/**
 * Runs `check` on something teardown built (`what`: 'the gradient graph'), turning the UserError
 * such a check throws for users' models ("re-export the model") into the InternalError it is here.
 */
export function builtByTeardown<T>(what: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    // The advice a user's model gets ("Re-export the model.") is wrong for teardown's own graph.
    const message = error.message.replace(
      /\s*:?\s*(?:Re-export|Export) the model(?: again)?\.?$/i,
      '',
    );
    throw new InternalError(`teardown built ${what} wrongly: ${message}`);
  }
}

/** Failures of the machine, not of teardown (errno codes), and what to do about each. */
const ENVIRONMENT_FAULTS: Record<string, string> = {
  ENOSPC: 'free some disk space',
  EDQUOT: 'free some of your disk quota',
  EROFS: 'the file system is read-only: choose a writable place',
  EACCES: 'check the permissions, or choose another place',
  EPERM: 'check the permissions, or choose another place',
  EMFILE: 'too many files are open: raise the limit (ulimit -n)',
  ENFILE: 'too many files are open on this machine',
  EIO: 'the device reported an input/output error',
  ENAMETOOLONG: 'choose a shorter path',
  ENOMEM: 'free memory, or use smaller batches',
};

/** A system error (ENOSPC, EROFS, EACCES, ...) as the UserError it is: exit status 2. */
export function environmentError(error: unknown): UserError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !Object.hasOwn(ENVIRONMENT_FAULTS, code)) return undefined;
  const path = (error as NodeJS.ErrnoException).path;
  const syscall = (error as NodeJS.ErrnoException).syscall;
  const what = path ? `${syscall ?? 'access'} '${path}'` : (syscall ?? 'a system call');
  return new UserError(`The system refused to ${what} (${code}): ${ENVIRONMENT_FAULTS[code]}.`);
}

/** The closest candidates to `name` by edit distance, for "did you mean" lists. */
export function nearestNames(name: string, candidates: Iterable<string>, count = 5): string[] {
  const scored = [...candidates].map((candidate) => ({
    candidate,
    distance: editDistance(name, candidate),
  }));
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
