/** Indexing: gathers, scatters and TopK. */
import { int, ints, string as str } from '../../graph/builder.ts';
import { DataType } from '../../onnx/proto.ts';
import { AutodiffError } from '../errors.ts';
import { axisOf, type Grad, type GradContext } from '../context.ts';
import { castCode, dy, gradientByCopies, type GradientRule } from './shared.ts';

export const INDEXING_RULES: Record<string, GradientRule> = {
  Gather: (c) => [gatherGradient(c)],
  GatherElements: (c) => {
    // dData = scatter-add dY at the gathered indices
    const axis = axisOf(c.attrInt('axis', 0), c.rank(c.x(0)));
    return [
      c.op('ScatterElements', [c.zerosLike(c.x(0)), c.x(1), dy(c)], {
        axis: int(axis),
        reduction: str('add'),
      }),
    ];
  },
  GatherND: (c) => {
    // dData = scatter-add dY at the gathered slices
    const batchDims = c.attrInt('batch_dims', 0);
    // with batch_dims, each cell of Y is still a copy of one of X: the same gather of X's positions names it
    if (batchDims !== 0)
      return [
        gradientByCopies(c, (positions) =>
          c.op('GatherND', [positions, c.x(1)], { batch_dims: int(batchDims) }),
        ),
        undefined,
      ];
    return [
      c.op('ScatterND', [c.zerosLike(c.x(0)), c.x(1), dy(c)], { reduction: str('add') }),
      undefined,
    ];
  },
  // Compress keeps the slices whose condition holds: each cell of Y is a copy of one of X
  Compress: (c) => [
    gradientByCopies(c, (positions) =>
      c.op(
        'Compress',
        [positions, c.x(1)],
        c.attr('axis') ? { axis: int(c.attrInt('axis', 0)) } : {},
      ),
    ),
    undefined,
  ],
  ScatterElements: (c) => scatterGradient(c, 'GatherElements'),
  ScatterND: (c) => scatterGradient(c, 'GatherND'),
  // TopK: dX = dY scattered to the positions the values came from (distinct along the axis); indices get none
  TopK: (c) => [
    c.dy(0)
      ? c.op('ScatterElements', [c.zerosLike(c.x(0)), c.y(1), dy(c)], {
          axis: int(axisOf(c.attrInt('axis', -1), c.rank(c.x(0)))),
        })
      : undefined,
    undefined,
  ],
};

/**
 * Gather: dData = scatter-add of dY at the gathered indices (negative ones count from the end).
 * Along axis a, data is viewed with axis a first (Transpose), dY with its index axes first, so
 * one ScatterND adds every gathered slice back; axis 0 (embedding lookups) needs no transposes.
 */
function gatherGradient(c: GradContext): string {
  const data = c.x(0);
  const rank = c.rank(data);
  const indexRank = c.rank(c.x(1));
  const axis = axisOf(c.attrInt('axis', 0), rank);
  const indices = c.op('Cast', [c.x(1)], { to: int(DataType.INT64) });
  const size = c.op('Gather', [c.op('Shape', [data]), c.int64s([axis])]);
  const wrapped = c.reshapeLike(
    c.op('Where', [c.op('Less', [indices, c.int64s([0])]), c.add(indices, size), indices]),
    indices,
  ); // keeps a scalar index scalar
  const dataPerm = [axis, ...[...Array(rank).keys()].filter((k) => k !== axis)];
  const dyPerm = [...Array(indexRank).keys()]
    .map((k) => axis + k)
    .concat(
      [...Array(axis).keys()],
      [...Array(rank - axis - 1).keys()].map((k) => axis + indexRank + k),
    );
  const moved = (value: string, perm: number[]) =>
    perm.every((p, k) => p === k) ? value : c.op('Transpose', [value], { perm: ints(perm) });
  const scattered = c.op(
    'ScatterND',
    [moved(c.zerosLike(data), dataPerm), c.unsqueeze(wrapped, [indexRank]), moved(dy(c), dyPerm)],
    { reduction: str('add') },
  );
  return moved(
    scattered,
    dataPerm.map((_, k) => dataPerm.indexOf(k)),
  );
}

/**
 * ScatterElements / ScatterND: Y is `data` with `updates` written at `indices`, or combined there
 * by `reduction`. With G = the gather at the indices (GatherElements / GatherND) and S the scatter:
 *   none: dData = dY with the written positions zeroed, dUpdates = G(dY) (indices distinct);
 *   add:  dData = dY, dUpdates = G(dY) (repeated indices each get their position's dY);
 *   mul:  P = S(ones, updates, mul), the product landing at each position: dData = dY·P,
 *         dUpdates = G(dY·Y) / updates (updates without zeros, as ReduceProd's rule);
 *   max / min: dY shared equally among data and the updates equal to Y at each position (ties
 *         split, as PyTorch's scatter_reduce amax / amin).
 */
function scatterGradient(c: GradContext, gather: 'GatherElements' | 'GatherND'): Grad[] {
  const reduction = c.attrString('reduction', 'none');
  const axis =
    gather === 'GatherElements' ? { axis: int(axisOf(c.attrInt('axis', 0), c.rank(c.x(0)))) } : {};
  const [data, indices, updates] = [c.x(0), c.x(1), c.x(2)];
  const gathered = (value: string) => c.op(gather, [value, indices], axis);
  const scattered = (base: string, values: string, how: string) =>
    c.op(c.node.opType, [base, indices, values], { ...axis, reduction: str(how) });
  switch (reduction) {
    case 'none':
      return [
        c.needs(0) ? c.op(c.node.opType, [dy(c), indices, c.zerosLike(updates)], axis) : undefined,
        undefined,
        c.needs(2) ? gathered(dy(c)) : undefined,
      ];
    case 'add':
      return [c.needs(0) ? dy(c) : undefined, undefined, c.needs(2) ? gathered(dy(c)) : undefined];
    case 'mul': {
      const landed = scattered(c.add(c.zerosLike(data), c.scalar(1, data)), updates, 'mul');
      return [
        c.needs(0) ? c.mul(dy(c), landed) : undefined,
        undefined,
        c.needs(2) ? c.div(gathered(c.mul(dy(c), c.y(0))), updates) : undefined,
      ];
    }
    case 'max':
    case 'min': {
      const asFloat = (mask: string) => c.op('Cast', [mask], { to: int(castCode(c.dtype(data))) });
      const dataHits = asFloat(c.op('Equal', [data, c.y(0)]));
      const updateHits = asFloat(c.op('Equal', [updates, gathered(c.y(0))]));
      const share = c.div(dy(c), c.add(dataHits, scattered(c.zerosLike(data), updateHits, 'add')));
      return [
        c.needs(0) ? c.mul(share, dataHits) : undefined,
        undefined,
        c.needs(2) ? c.mul(gathered(share), updateHits) : undefined,
      ];
    }
    default:
      throw new AutodiffError(
        `${c.node.opType} with reduction '${reduction}' (${c.describe()}) has no gradient rule: none, add, mul, max and min have one.`,
      );
  }
}
