/**
 * Exact k-nearest neighbours (Cover & Hart 1967). The squared distances from a batch of queries
 * to every stored example are one onnxruntime MatMul and two broadcast adds:
 *   ‖q − x‖² = ‖q‖² − 2 q·x + ‖x‖²
 * then TopK (smallest first; ONNX's TopK puts the lower index first among equal values, so ties
 * go to the example stored first). A query's probabilities are its k neighbours' label votes / k.
 */
import { GraphBuilder, int, ints } from '../graph/builder.ts';
import { openSession, type Session } from '../runtime/session.ts';
import { tensor, type Tensor as TensorLike } from '../tensor.ts';
import { InputError } from '../errors.ts';
import { trackProgress } from '../progress.ts';
import {
  featureMatrix,
  queryMatrix,
  type Contender,
  type FeatureMatrix,
  type TrainedClassifier,
} from './contender.ts';

export interface KnnSettings {
  /** Neighbours that vote (default 5). */
  k?: number;
}

/** Query rows per run, so that the distance matrix [queries, stored] stays near 64 MB. */
const DISTANCE_VALUES_PER_RUN = 16 * 2 ** 20;

export function kNearestNeighbours(settings: KnnSettings = {}): Contender {
  const k = settings.k ?? 5;
  return {
    name: `knn (k=${k})`,
    family: 'neighbours',
    usesBackprop: false,
    async train(data, options) {
      const stored = featureMatrix(data);
      if (!Number.isInteger(k) || k < 1 || k > stored.rows) {
        throw new InputError(
          `kNN's k must be an integer from 1 to the ${stored.rows} training examples; got ${k}.`,
        );
      }
      trackProgress('train', 1, options).tick();
      const index = await NeighbourIndex.open(stored, k, options.threads ?? 1);
      return knnClassifier(index, stored);
    },
  };
}

function knnClassifier(index: NeighbourIndex, stored: FeatureMatrix): TrainedClassifier {
  const { classes, labels, rows } = stored;
  return {
    classes,
    size: { kind: 'prototypes', count: rows },
    async predictProba(inputs) {
      const neighbours = await index.nearest(inputs);
      const queries = neighbours.length / index.k;
      const votes = new Float32Array(queries * classes); // [queries, classes]
      for (let q = 0; q < queries; q++) {
        for (let j = 0; j < index.k; j++)
          votes[q * classes + labels[neighbours[q * index.k + j]]] += 1 / index.k;
      }
      return tensor('float32', [queries, classes], votes);
    },
    release: () => index.release(),
  };
}

/** The stored examples inside an onnxruntime graph that returns each query's k nearest. */
export class NeighbourIndex {
  private constructor(
    private readonly session: Session,
    readonly k: number,
    private readonly stored: FeatureMatrix,
  ) {}

  static async open(stored: FeatureMatrix, k: number, threads: number): Promise<NeighbourIndex> {
    const session = await openSession(
      distanceGraph(stored, k),
      { threads },
      'the kNN distance graph',
    );
    return new NeighbourIndex(session, k, stored);
  }

  /** Indices of the stored examples nearest each query, nearest first: [queries · k]. */
  async nearest(inputs: TensorLike): Promise<Int32Array> {
    const { values, rows } = queryMatrix(inputs, this.stored.features);
    const features = this.stored.features;
    const step = Math.max(1, Math.floor(DISTANCE_VALUES_PER_RUN / this.stored.rows));
    const found = new Int32Array(rows * this.k);
    for (let start = 0; start < rows; start += step) {
      const end = Math.min(rows, start + step);
      const query = tensor(
        'float32',
        [end - start, features],
        values.subarray(start * features, end * features),
      );
      const { indices } = await this.session.run({ query }, ['indices']);
      found.set(Array.from(indices.data as BigInt64Array, Number), start * this.k);
    }
    return found;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** query [m, f] → indices [m, k] of the k smallest ‖q‖² − 2 q·x + ‖x‖² over the stored x. */
function distanceGraph(stored: FeatureMatrix, k: number) {
  const { rows, features, values } = stored;
  const transposed = new Float32Array(features * rows); // [f, n]
  const storedNorms = new Float32Array(rows); // [1, n]
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < features; f++) {
      const value = values[r * features + f];
      transposed[f * rows + r] = value;
      storedNorms[r] += value * value;
    }
  }
  const g = new GraphBuilder('knn');
  const query = g.input('query', 'float32', ['queries', features]);
  const storedT = g.initializer('stored_t', tensor('float32', [features, rows], transposed));
  const norms = g.initializer('stored_norms', tensor('float32', [1, rows], storedNorms));
  const count = g.initializer('k', tensor('int64', [1], [k]));
  const dot = g.node('MatMul', [query, storedT], {}, '/knn/MatMul'); // [m, n]
  const queryNorms = g.node(
    'ReduceSumSquare',
    [query],
    { axes: ints([1]), keepdims: int(1) },
    '/knn/QueryNorms',
  ); // [m, 1]
  const scaled = g.node(
    'Mul',
    [dot, g.initializer('minus_two', tensor('float32', [], [-2]))],
    {},
    '/knn/Scale',
  );
  const distances = g.node(
    'Add',
    [g.node('Add', [scaled, norms], {}, '/knn/AddStored'), queryNorms],
    {},
    '/knn/Distances',
  );
  g.nodeN(
    'TopK',
    [distances, count],
    { axis: int(1), largest: int(0), sorted: int(1) },
    '/knn/TopK',
    2,
    ['nearest', 'indices'],
  );
  g.output('indices', 'int64', ['queries', k]);
  return g.build();
}
