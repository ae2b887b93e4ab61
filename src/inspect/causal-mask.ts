/**
 * Whether a constant attention mask hides every later key from every query: the check that lets
 * causal-suffix.ts treat an attention pattern as causal. It reads the mask's values (computed for
 * the sequence length being swept), never its name or how it was built.
 */
import type { Tensor } from '../tensor.ts';

/**
 * Additive mask values at or below this hide a key: softmax computes exp(s + m − max), and in
 * float32 exp(x) is exactly 0 below x ≈ −104, so any score |s| < 1e29 is hidden completely
 * (PyTorch's masked_fill(−inf), Hugging Face's finfo.min).
 */
export const HIDDEN_BELOW = -1e30;

/**
 * Whether `hidden(element)` holds for every element of `mask` that some query i sees at some key
 * j > i, once `mask` is broadcast (aligned from the right) onto a value of rank `rank` whose axis
 * `queryAxis` holds the queries and `keyAxis` the keys, both `positions` long. An axis of size 1
 * (or missing) stands for every query or key.
 */
export function hidesLaterKeys(
  mask: Tensor,
  rank: number,
  queryAxis: number,
  keyAxis: number,
  positions: number,
  hidden: (index: number) => boolean,
): boolean {
  const dims = mask.dims;
  const offset = rank - dims.length;
  const [ownQuery, ownKey] = [queryAxis - offset, keyAxis - offset];
  const sized = (axis: number) => axis >= 0 && dims[axis] !== 1;
  if (
    (sized(ownQuery) && dims[ownQuery] !== positions) ||
    (sized(ownKey) && dims[ownKey] !== positions)
  )
    return false;
  const strides = dims.map((_, axis) => dims.slice(axis + 1).reduce((a, b) => a * b, 1));
  for (let index = 0; index < mask.data.length; index++) {
    if (hidden(index)) continue;
    // A visible element is allowed only where every (query, key) pair it stands for has key ≤ query.
    const firstQuery = sized(ownQuery) ? Math.floor(index / strides[ownQuery]) % dims[ownQuery] : 0;
    const lastKey = sized(ownKey)
      ? Math.floor(index / strides[ownKey]) % dims[ownKey]
      : positions - 1;
    if (lastKey > firstQuery) return false;
  }
  return true;
}

/** Whether every value is at or below HIDDEN_BELOW (a fill that hides what it replaces). */
export function allHidden(values: Tensor): boolean {
  return (
    values.data.length > 0 &&
    Array.from(values.data as ArrayLike<number>).every((value) => Number(value) <= HIDDEN_BELOW)
  );
}

/** Whether no value is NaN or +∞ (adding it keeps −∞ at −∞). */
export function noneNanOrPlusInfinity(values: Tensor): boolean {
  return Array.from(values.data as ArrayLike<number>).every(
    (value) => !Number.isNaN(Number(value)) && Number(value) !== Infinity,
  );
}

/** Whether every value is finite and positive (multiplying or dividing keeps −∞ and 0 as they are). */
export function allFinitePositive(values: Tensor): boolean {
  return Array.from(values.data as ArrayLike<number>).every(
    (value) => Number.isFinite(Number(value)) && Number(value) > 0,
  );
}
