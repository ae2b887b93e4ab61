/** Resize. */
import { AutodiffError } from '../errors.ts';
import type { GradContext } from '../context.ts';
import { dy, type GradientRule, reshapeDims } from './shared.ts';

export const RESIZE_RULES: Record<string, GradientRule> = {
  Resize: (c) => [resizeNearestGradient(c)],
};

/**
 * Resize, nearest neighbour, asymmetric coordinates, rounding down, by integer factors (nn.Upsample's
 * export): each input cell is copied into an s₀ × s₁ block, so dX = the sum of dY over each block.
 * Other modes refuse by name.
 */
function resizeNearestGradient(c: GradContext): string {
  const x = c.x(0);
  const settings = `mode '${c.attrString('mode', 'nearest')}', coordinate_transformation_mode '${c.attrString('coordinate_transformation_mode', 'half_pixel')}', nearest_mode '${c.attrString('nearest_mode', 'round_prefer_floor')}'`;
  if (c.attrString('mode', 'nearest') !== 'nearest' || c.attrString('coordinate_transformation_mode', 'half_pixel') !== 'asymmetric' || c.attrString('nearest_mode', 'round_prefer_floor') !== 'floor') {
    throw new AutodiffError(`Resize with ${settings} (${c.describe()}) has no gradient rule: only nearest-neighbour resizing with asymmetric coordinates and floor rounding (PyTorch's nn.Upsample(mode='nearest')) has one.`);
  }
  const dims = reshapeDims(c, x);
  const scales = c.constantOrUndefined(c.x(2));
  const sizes = c.x(3) ? c.constantOrUndefined(c.x(3)) : undefined;
  const factors = scales?.length ? scales : sizes ? sizes.map((size, axis) => size / dims[axis]) : [];
  if (factors.length !== dims.length || factors.some((factor) => !Number.isInteger(factor) || factor < 1)) throw new AutodiffError(`Resize by factors ${factors.join(', ')} (${c.describe()}) has no gradient rule: only integer upscaling has one.`);
  const split = c.op('Reshape', [dy(c), c.int64s(dims.flatMap((size, axis) => [size, factors[axis]]))]); // [d₀, s₀, d₁, s₁, ...]
  return c.reduceSum(split, dims.map((_, axis) => 2 * axis + 1), false);
}
