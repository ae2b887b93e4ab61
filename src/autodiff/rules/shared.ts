/** What every rule family shares: the rule type, dY, and small helpers. */
import { AutodiffError } from '../errors.ts';
import type { Grad, GradContext } from '../context.ts';

export type GradientRule = (ctx: GradContext) => Grad[];

/** The gradient of the node's first output (every rule that runs has one). */
export const dy = (ctx: GradContext) => ctx.dy(0)!;

/** The ONNX element type code of a float dtype (Cast's `to`). */
export function castCode(dtype: string): number {
  return { float32: 1, float64: 11 }[dtype] ?? 1;
}

/** A value's dims for a Reshape: numbers, with its one symbolic axis (the batch) as −1. */
export function reshapeDims(c: GradContext, value: string): number[] {
  const dims = c.shape(value).map((dim) => (typeof dim === 'number' ? dim : -1));
  if (dims.filter((dim) => dim === -1).length > 1) throw new AutodiffError(`The gradient of ${c.describe()} needs the sizes of '${value}', which has more than one symbolic axis.`);
  return dims;
}
