/**
 * Interventions on hooks, compiled to graph edits plus the tensors fed with them.
 *
 * Each one becomes V' = V·keep + add (graph/edit.ts), with a selection mask M that is 1 on the
 * chosen units and positions (1 everywhere when none are chosen):
 *   zero ablation      keep = 1 − M, add = 0
 *   mean ablation      keep = 1 − M, add = mean·M        (mean over reference examples, per position)
 *   resample ablation  keep = 1 − M, add = R·M           (R: the hook on other, randomly drawn inputs)
 *   patch              keep = 1 − M, add = P·M           (a whole-hook patch is a plain replacement)
 *   scale              keep = 1 + (factor − 1)·M, add = 0
 *   add (steering)     keep = 1,          add = v·M     (v: a vector along the unit axis)
 * except project-out, its own rewrite (graph/edit.ts): V' = V − (V·d̂)·(d̂·M), which removes the
 * component along the direction d̂ = d/|d| at the chosen positions, leaving V·d̂ = 0 there.
 * Interventions compose: several on one hook apply in the order given.
 */
import { InterventionError } from '../errors.ts';
import { allocate, elementCount, shapeString, type Feeds, type Tensor } from '../tensor.ts';
import { broadcastTo, map, multiply } from '../tensor-math.ts';
import type { Rewrite } from './edit.ts';
import type { Hook } from './hooks.ts';
import { positionAxis, unitAxisOf } from './units.ts';

export type AblationMethod = 'zero' | 'mean' | 'resample';

export interface Selection {
  /** Unit indices along the unit axis; all units when omitted. */
  units?: number[];
  /** Sequence positions (negative counts from the end); all positions when omitted. */
  positions?: number[];
  /** Override of the unit axis (docs/design.md, "Unit axes"). */
  unitAxis?: number;
}

export type Intervention =
  | ({
      kind: 'ablate';
      hook: string;
      method: AblationMethod;
      reference?: Feeds;
      seed?: number;
      donors?: readonly number[];
    } & Selection)
  | ({ kind: 'patch'; hook: string; value: Tensor } & Selection)
  | ({ kind: 'scale'; hook: string; factor: number } & Selection)
  | ({ kind: 'add'; hook: string; vector: Tensor | readonly number[] } & Selection)
  | ({ kind: 'project-out'; hook: string; direction: Tensor | readonly number[] } & Omit<
      Selection,
      'units'
    >);

/**
 * Resample ablation draws example i's values from reference example hash(seed, i) mod size, or
 * from reference example donors[i] when donors are given (e.g. to match another tool's draws).
 */
export const ablate = (
  hook: string,
  method: AblationMethod = 'zero',
  selection: Selection & { reference?: Feeds; seed?: number; donors?: readonly number[] } = {},
): Intervention => ({ kind: 'ablate', hook, method, ...selection });
export const patch = (hook: string, value: Tensor, selection: Selection = {}): Intervention => ({
  kind: 'patch',
  hook,
  value,
  ...selection,
});
export const scale = (hook: string, factor: number, selection: Selection = {}): Intervention => ({
  kind: 'scale',
  hook,
  factor,
  ...selection,
});
/** Adds `vector` (one value per unit) to every chosen position: a steering vector. */
export const addVector = (
  hook: string,
  vector: Tensor | readonly number[],
  selection: Selection = {},
): Intervention => ({ kind: 'add', hook, vector, ...selection });
/** Removes the component along `direction` (one value per unit; normalised here) at the chosen positions. */
export const projectOut = (
  hook: string,
  direction: Tensor | readonly number[],
  selection: Omit<Selection, 'units'> = {},
): Intervention => ({ kind: 'project-out', hook, direction, ...selection });

/** What compiling needs besides the intervention: the hook, its dims at this batch, and reference values. */
export interface InterventionContext {
  hook: Hook;
  /** The hook's dims at the batch being run. */
  dims: number[];
  /** The axis of `dims` that holds the examples; undefined for a value that is the same for every example. */
  batchAxis: number | undefined;
  /** Mean ablation: the hook's mean over the reference examples, `dims` with 1 on the batch axis. */
  mean?: Tensor;
  /** Resample ablation: the hook's values on the drawn reference examples, `dims`. */
  resampled?: Tensor;
}

export interface CompiledIntervention {
  rewrite: Rewrite;
  feeds: Feeds;
}

export function compileIntervention(
  intervention: Intervention,
  context: InterventionContext,
  slot: number,
): CompiledIntervention {
  const { hook, dims, batchAxis } = context;
  const dtype = hook.dtype;
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new InterventionError(
      `Cannot ${intervention.kind} hook '${hook.name}': it holds ${dtype ?? 'values of unknown type'}, and only float values can be intervened on.`,
    );
  }
  const prefix = `teardown::intervention${slot}`;
  if (intervention.kind === 'project-out') return compileProjectOut(intervention, context, prefix);
  const hasSelection = intervention.units !== undefined || intervention.positions !== undefined;
  if (intervention.kind === 'patch' && !hasSelection) {
    const value = fitPatchValue(intervention.value, hook, dims, batchAxis);
    return {
      rewrite: { kind: 'replace', value: hook.value, input: `${prefix}::value` },
      feeds: { [`${prefix}::value`]: value },
    };
  }
  const mask = selectionMask(intervention, hook, dims, batchAxis);
  let keep = map(mask, (m) => 1 - m);
  let add: Tensor = { dtype, dims: dims.map(() => 1), data: allocate(dtype, 1) };
  switch (intervention.kind) {
    case 'ablate':
      if (intervention.method === 'mean')
        add = multiply(requireReference(context.mean, hook, 'mean'), mask);
      if (intervention.method === 'resample')
        add = multiply(requireReference(context.resampled, hook, 'resample'), mask);
      break;
    case 'patch':
      add = multiply(fitPatchValue(intervention.value, hook, dims, batchAxis), mask);
      break;
    case 'scale':
      keep = map(mask, (m) => 1 + (intervention.factor - 1) * m);
      break;
    case 'add':
      keep = {
        dtype,
        dims: dims.map(() => 1),
        data: dtype === 'float64' ? Float64Array.of(1) : Float32Array.of(1),
      };
      add = multiply(alongUnitAxis(intervention.vector, intervention, context, 'vector'), mask);
      break;
  }
  return {
    rewrite: {
      kind: 'affine',
      value: hook.value,
      keepInput: `${prefix}::keep`,
      addInput: `${prefix}::add`,
    },
    feeds: { [`${prefix}::keep`]: keep, [`${prefix}::add`]: add },
  };
}

/** V' = V − (V·d̂)·(d̂·M): d̂ fed for the dot product, d̂·M (zero at unchosen positions) for the removal. */
function compileProjectOut(
  intervention: Extract<Intervention, { kind: 'project-out' }>,
  context: InterventionContext,
  prefix: string,
): CompiledIntervention {
  const { hook, dims, batchAxis } = context;
  if ((intervention as Selection).units !== undefined) {
    throw new InterventionError(
      `project-out on hook '${hook.name}' takes no units: it removes a direction across all units; choose positions, or use ablate for single units.`,
    );
  }
  const direction = alongUnitAxis(intervention.direction, intervention, context, 'direction');
  const norm = Math.hypot(...Array.from(direction.data as Float32Array, Number));
  if (!(norm > 0))
    throw new InterventionError(
      `The direction to project out of hook '${hook.name}' is zero (or not finite): give a direction with a nonzero length.`,
    );
  const unit = map(direction, (x) => x / norm);
  const removal =
    intervention.positions === undefined
      ? unit
      : multiply(unit, selectionMask(intervention, hook, dims, batchAxis));
  const axis = intervention.unitAxis ?? unitAxisOf(hook, dims.length, batchAxis);
  return {
    rewrite: {
      kind: 'project-out',
      value: hook.value,
      directionInput: `${prefix}::direction`,
      removalInput: `${prefix}::removal`,
      axis,
    },
    feeds: { [`${prefix}::direction`]: unit, [`${prefix}::removal`]: removal },
  };
}

/**
 * One value per unit laid along the unit axis: [1, .., units, .., 1] in the hook's dtype, from a
 * list of numbers or a tensor of that many values (any shape, e.g. [units] or [1, 1, units]).
 */
function alongUnitAxis(
  values: Tensor | readonly number[],
  selection: Selection,
  context: InterventionContext,
  what: string,
): Tensor {
  const { hook, dims, batchAxis } = context;
  const axis = selection.unitAxis ?? unitAxisOf(hook, dims.length, batchAxis);
  if (axis < 0 || axis >= dims.length) {
    throw new InterventionError(
      `Unit axis ${axis} does not exist in hook '${hook.name}' of shape ${shapeString(dims)}: use an axis from 0 to ${dims.length - 1}.`,
    );
  }
  const numbers = Array.isArray(values)
    ? (values as readonly number[])
    : Array.from((values as Tensor).data as ArrayLike<number | bigint>, Number);
  if (numbers.length !== dims[axis]) {
    throw new InterventionError(
      `The ${what} for hook '${hook.name}' has ${numbers.length} values but the hook has ${dims[axis]} units (axis ${axis} of ${shapeString(dims)}): give one value per unit.`,
    );
  }
  const data = allocate(
    hook.dtype === 'float64' ? 'float64' : 'float32',
    numbers.length,
  ) as Float32Array;
  data.set(numbers);
  return {
    dtype: hook.dtype === 'float64' ? 'float64' : 'float32',
    dims: dims.map((size, a) => (a === axis ? size : 1)),
    data,
  };
}

/**
 * M: shape [1, ..] with the unit axis and the position axis at full size when selected; 1 where
 * both the unit and the position are selected.
 */
export function selectionMask(
  selection: Selection & { kind?: string },
  hook: Hook,
  dims: number[],
  batchAxis: number | undefined = 0,
): Tensor {
  const rank = dims.length;
  const unitAxis = selection.unitAxis ?? unitAxisOf(hook, rank, batchAxis);
  if (unitAxis < 0 || unitAxis >= rank) {
    throw new InterventionError(
      `Unit axis ${unitAxis} does not exist in hook '${hook.name}' of shape ${shapeString(dims)}: use an axis from 0 to ${rank - 1}.`,
    );
  }
  const maskDims = dims.map(() => 1);
  const chosen: { axis: number; indices: Set<number> }[] = [];
  if (selection.units !== undefined) {
    chosen.push({
      axis: unitAxis,
      indices: checkIndices(selection.units, dims[unitAxis], `unit`, hook, dims, unitAxis),
    });
  }
  if (selection.positions !== undefined) {
    const axis = positionAxis(rank, unitAxis, batchAxis);
    if (axis === undefined) {
      throw new InterventionError(
        `Hook '${hook.name}' of shape ${shapeString(dims)} has no sequence-position axis (positions need [batch, seq, d], [seq, batch, d], [seq, d] or [batch, heads, seq, ·]): drop the positions or pick a sequence hook.`,
      );
    }
    chosen.push({
      axis,
      indices: checkIndices(selection.positions, dims[axis], 'position', hook, dims, axis),
    });
  }
  for (const { axis } of chosen) maskDims[axis] = dims[axis];
  const mask = allocate(
    hook.dtype === 'float64' ? 'float64' : 'float32',
    elementCount(maskDims),
  ) as Float32Array;
  const strides = maskDims.map((_, axis) => elementCount(maskDims.slice(axis + 1)));
  for (let flat = 0; flat < mask.length; flat++) {
    mask[flat] = chosen.every(({ axis, indices }) =>
      indices.has(Math.floor(flat / strides[axis]) % maskDims[axis]),
    )
      ? 1
      : 0;
  }
  return { dtype: hook.dtype === 'float64' ? 'float64' : 'float32', dims: maskDims, data: mask };
}

function checkIndices(
  indices: number[],
  size: number,
  what: string,
  hook: Hook,
  dims: number[],
  axis: number,
): Set<number> {
  const normalised = new Set<number>();
  for (const index of indices) {
    const resolved = index < 0 ? size + index : index;
    if (!Number.isInteger(index) || resolved < 0 || resolved >= size) {
      throw new InterventionError(
        `${what[0].toUpperCase()}${what.slice(1)} ${index} is out of range for hook '${hook.name}' of shape ${shapeString(dims)}: ${what}s run along axis ${axis} from 0 to ${size - 1}.`,
      );
    }
    normalised.add(resolved);
  }
  return normalised;
}

/**
 * A patch value must have the hook's shape, or its shape with one example on the batch axis (then
 * it is used for every example). A value without a batch axis takes only its own shape.
 */
function fitPatchValue(
  value: Tensor,
  hook: Hook,
  dims: number[],
  batchAxis: number | undefined,
): Tensor {
  const same = (a: number[], b: number[]) =>
    a.length === b.length && a.every((size, i) => size === b[i]);
  if (value.dtype !== hook.dtype) {
    throw new InterventionError(
      `Patch for hook '${hook.name}' has dtype ${value.dtype} but the hook holds ${hook.dtype}: convert the array.`,
    );
  }
  if (same(value.dims, dims)) return value;
  if (batchAxis === undefined) {
    throw new InterventionError(
      `Patch for hook '${hook.name}' has shape ${shapeString(value.dims)} but the hook has shape ${shapeString(dims)}, the same for every example (it has no batch axis): give one value of that shape.`,
    );
  }
  const oneExample = dims.map((size, axis) => (axis === batchAxis ? 1 : size));
  if (same(value.dims, oneExample)) return broadcastTo(value, dims);
  throw new InterventionError(
    `Patch for hook '${hook.name}' has shape ${shapeString(value.dims)} but the hook has shape ${shapeString(dims)} in this run (examples on axis ${batchAxis}): give one value per example, or a single one ${shapeString(oneExample)} for all.`,
  );
}

function requireReference(reference: Tensor | undefined, hook: Hook, method: string): Tensor {
  if (!reference)
    throw new InterventionError(
      `${method} ablation of hook '${hook.name}' needs reference values, and none were computed.`,
    );
  return reference;
}
