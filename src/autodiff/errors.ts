import { UserError } from '../errors.ts';

/** A model teardown cannot differentiate (an op without a rule, a dynamic value a rule needs static). */
export class AutodiffError extends UserError {}
