/**
 * GridSample (F.grid_sample): Y[n, c, p] samples X[n, c] at the grid point p = (gx, gy) ∈ [−1, 1]²,
 * unnormalised to pixels, px = ax·gx + bx with ax = (W − 1)/2 (align_corners) or W/2, bx = (W − 1)/2
 * (py alike). Bilinear: Y = Σₖ wₖ·X[cornerₖ] over the four corners around (px, py), weights
 * (1 − fx)(1 − fy), fx(1 − fy), (1 − fx)fy, fx·fy with f the fractional parts; corners outside the
 * image read 0 (padding 'zeros') or the point is first clamped into it ('border'). So
 *   dX = Σₖ wₖ·dY scattered back to cornerₖ,
 *   dgx = ax·Σ_c dY·((1 − fy)(X₁₀ − X₀₀) + fy(X₁₁ − X₀₁)), dgy alike (0 where 'border' clamped).
 * Nearest: dX = dY scattered to the rounded point, the grid gets 0. Bicubic and 'reflection' padding
 * are refused by name, as are grids over more than two spatial axes (opset 20).
 */
import { int, string as str } from '../../graph/builder.ts';
import { DataType } from '../../onnx/proto.ts';
import { AutodiffError } from '../errors.ts';
import type { Grad, GradContext } from '../context.ts';
import { castCode, dy, type GradientRule } from './shared.ts';

export const GRID_SAMPLE_RULES: Record<string, GradientRule> = {
  GridSample: (c) => gridSampleGradient(c),
};

/** One corner of the bilinear stencil: its flat pixel index [N, 1, P] and its weight (0 off the image) [N, 1, P]. */
interface Corner {
  index: string;
  weight: string;
  inside: string;
}

function gridSampleGradient(c: GradContext): Grad[] {
  const [x, grid] = [c.x(0), c.x(1)];
  const mode = c.attrString('mode', 'bilinear');
  const padding = c.attrString('padding_mode', 'zeros');
  if (c.rank(x) !== 4)
    throw new AutodiffError(
      `GridSample over ${c.rank(x) - 2} spatial axes (${c.describe()}) has no gradient rule: only 2-D sampling has one.`,
    );
  if (!['bilinear', 'linear', 'nearest'].includes(mode))
    throw new AutodiffError(
      `GridSample with mode '${mode}' (${c.describe()}) has no gradient rule: bilinear and nearest have one.`,
    );
  if (padding !== 'zeros' && padding !== 'border')
    throw new AutodiffError(
      `GridSample with padding_mode '${padding}' (${c.describe()}) has no gradient rule: zeros and border have one.`,
    );
  const [height, width] = c.shape(x).slice(2).map(Number);
  if (!Number.isInteger(height) || !Number.isInteger(width))
    throw new AutodiffError(
      `The gradient of ${c.describe()} needs the static height and width of '${x}'.`,
    );
  const alignCorners = c.attrInt('align_corners', 0) === 1;
  const flat = (value: string) => c.op('Reshape', [value, c.int64s([0, 0, -1])]);
  const dyFlat = flat(dy(c)); // [N, C, P]
  const xFlat = flat(x); // [N, C, H·W]
  const [gx, gy] = c
    .opN('Split', [grid, c.int64s([1, 1])], { axis: int(3) }, 2)
    .map((part) => c.op('Reshape', [part, c.int64s([0, 1, -1])])); // [N, 1, P]
  const axisX = pixelCoordinate(c, gx, width, alignCorners, padding === 'border');
  const axisY = pixelCoordinate(c, gy, height, alignCorners, padding === 'border');
  const spread = (corner: Corner, values: string) =>
    c.op('Expand', [corner.index, c.op('Shape', [values])]); // [N, C, P]
  const grads: Grad[] = [undefined, undefined];
  if (mode === 'nearest') {
    const corner = nearestCorner(c, axisX.pixel, axisY.pixel, width, height);
    if (c.needs(0))
      grads[0] = c.reshapeLike(
        c.op(
          'ScatterElements',
          [c.zerosLike(xFlat), spread(corner, dyFlat), c.mul(dyFlat, corner.weight)],
          { axis: int(2), reduction: str('add') },
        ),
        x,
      );
    if (c.needs(1)) grads[1] = c.zerosLike(grid);
    return grads;
  }
  const corners = bilinearCorners(c, axisX.pixel, axisY.pixel, width, height); // 00, 10, 01, 11 (x offset, y offset)
  if (c.needs(0)) {
    let total = c.zerosLike(xFlat);
    for (const corner of corners)
      total = c.op(
        'ScatterElements',
        [total, spread(corner, dyFlat), c.mul(dyFlat, corner.weight)],
        { axis: int(2), reduction: str('add') },
      );
    grads[0] = c.reshapeLike(total, x);
  }
  if (c.needs(1)) {
    const [v00, v10, v01, v11] = corners.map((corner) =>
      c.mul(
        c.op('GatherElements', [xFlat, spread(corner, dyFlat)], { axis: int(2) }),
        corner.inside,
      ),
    ); // [N, C, P]
    const [fx, fy] = [axisX.fraction, axisY.fraction];
    const one = c.scalar(1, x);
    const byX = c.add(c.mul(c.sub(one, fy), c.sub(v10, v00)), c.mul(fy, c.sub(v11, v01))); // ∂Y/∂px
    const byY = c.add(c.mul(c.sub(one, fx), c.sub(v01, v00)), c.mul(fx, c.sub(v11, v10))); // ∂Y/∂py
    const toGrid = (partial: string, axis: { slope: string }) =>
      c.mul(c.reduceSum(c.mul(dyFlat, partial), [1], true), axis.slope); // [N, 1, P]
    const pointShape = c.op(
      'Concat',
      [c.op('Slice', [c.op('Shape', [grid]), c.int64s([0]), c.int64s([3])]), c.int64s([1])],
      { axis: int(0) },
    ); // [N, Ho, Wo, 1]
    const asPoints = (value: string) => c.op('Reshape', [value, pointShape]);
    grads[1] = c.op('Concat', [asPoints(toGrid(byX, axisX)), asPoints(toGrid(byY, axisY))], {
      axis: int(3),
    });
  }
  return grads;
}

/** Pixel coordinate along one axis, its fractional part, and d pixel / d grid (0 where 'border' clamps). */
function pixelCoordinate(
  c: GradContext,
  normalised: string,
  size: number,
  alignCorners: boolean,
  border: boolean,
): { pixel: string; fraction: string; slope: string } {
  const scale = alignCorners ? (size - 1) / 2 : size / 2;
  const unclamped = c.add(
    c.mul(normalised, c.scalar(scale, normalised)),
    c.scalar((size - 1) / 2, normalised),
  );
  let pixel = unclamped;
  let slope = c.scalar(scale, normalised);
  if (border) {
    const low = c.scalar(0, normalised);
    const high = c.scalar(size - 1, normalised);
    pixel = c.op('Min', [c.op('Max', [unclamped, low]), high]);
    const inside = c.op('And', [
      c.op('Not', [c.op('Less', [unclamped, low])]),
      c.op('Not', [c.op('Greater', [unclamped, high])]),
    ]);
    slope = c.op('Where', [inside, slope, low]);
  }
  return { pixel, fraction: c.sub(pixel, c.op('Floor', [pixel])), slope };
}

/** 1 where 0 ≤ value ≤ size − 1 (as the float type), and the value clamped there as an int64 index. */
function onImage(c: GradContext, value: string, size: number): { inside: string; clamped: string } {
  const inside = c.op('And', [
    c.op('Not', [c.op('Less', [value, c.scalar(0, value)])]),
    c.op('Not', [c.op('Greater', [value, c.scalar(size - 1, value)])]),
  ]);
  const clamped = c.op(
    'Cast',
    [c.op('Min', [c.op('Max', [value, c.scalar(0, value)]), c.scalar(size - 1, value)])],
    { to: int(DataType.INT64) },
  );
  return { inside, clamped };
}

function corner(
  c: GradContext,
  column: string,
  row: string,
  width: number,
  height: number,
  weight: string,
): Corner {
  const [onX, onY] = [onImage(c, column, width), onImage(c, row, height)];
  const inside = c.op('Cast', [c.op('And', [onX.inside, onY.inside])], {
    to: int(castCode(c.dtype(column))),
  });
  return {
    index: c.add(c.mul(onY.clamped, c.int64s([width])), onX.clamped),
    weight: c.mul(weight, inside),
    inside,
  };
}

/** The four corners around (px, py) in the order 00, 10, 01, 11 (x offset, y offset), with their bilinear weights. */
function bilinearCorners(
  c: GradContext,
  px: string,
  py: string,
  width: number,
  height: number,
): Corner[] {
  const [x0, y0] = [c.op('Floor', [px]), c.op('Floor', [py])];
  const one = c.scalar(1, px);
  const [x1, y1] = [c.add(x0, one), c.add(y0, one)];
  const [fx, fy] = [c.sub(px, x0), c.sub(py, y0)];
  const [gx, gy] = [c.sub(one, fx), c.sub(one, fy)];
  return [
    corner(c, x0, y0, width, height, c.mul(gx, gy)),
    corner(c, x1, y0, width, height, c.mul(fx, gy)),
    corner(c, x0, y1, width, height, c.mul(gx, fy)),
    corner(c, x1, y1, width, height, c.mul(fx, fy)),
  ];
}

/** The rounded point (half to even, as onnxruntime's nearbyint), weight 1 on the image and 0 off it. */
function nearestCorner(
  c: GradContext,
  px: string,
  py: string,
  width: number,
  height: number,
): Corner {
  return corner(c, c.op('Round', [px]), c.op('Round', [py]), width, height, c.scalar(1, px));
}
