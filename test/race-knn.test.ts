/**
 * kNN against a brute-force reference: every query's k nearest stored examples, by squared
 * distance in float64 computed coordinate by coordinate, ties broken by the lower index.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../src/random.ts';
import { tensor } from '../src/tensor.ts';
import { featureMatrix } from '../src/race/contender.ts';
import { kNearestNeighbours, NeighbourIndex } from '../src/race/knn.ts';

function randomMatrix(rows: number, features: number, seed: number, draw: (u: number) => number) {
  const random = seededRandom(seed);
  return Float32Array.from({ length: rows * features }, () => draw(random()));
}

/** The k nearest by sorting (distance, index) pairs: no MatMul, no TopK. */
function bruteForceNearest(
  stored: Float32Array,
  queries: Float32Array,
  features: number,
  k: number,
): number[][] {
  const rows = stored.length / features;
  return Array.from({ length: queries.length / features }, (_, q) => {
    const distances = Array.from({ length: rows }, (_, r) => {
      let sum = 0;
      for (let f = 0; f < features; f++)
        sum += (queries[q * features + f] - stored[r * features + f]) ** 2;
      return { r, sum };
    });
    distances.sort((a, b) => a.sum - b.sum || a.r - b.r);
    return distances.slice(0, k).map(({ r }) => r);
  });
}

async function nearestByIndex(
  stored: Float32Array,
  queries: Float32Array,
  features: number,
  k: number,
) {
  const rows = stored.length / features;
  const matrix = featureMatrix({
    inputs: tensor('float32', [rows, features], stored),
    labels: new Int32Array(rows),
  });
  const index = await NeighbourIndex.open(matrix, k, 1);
  try {
    const found = await index.nearest(
      tensor('float32', [queries.length / features, features], queries),
    );
    return Array.from({ length: found.length / k }, (_, q) =>
      Array.from(found.subarray(q * k, (q + 1) * k)),
    );
  } finally {
    await index.release();
  }
}

describe('race: k-nearest neighbours', () => {
  it('finds the same neighbours as brute force on continuous data', async () => {
    const [features, k] = [7, 5];
    const stored = randomMatrix(400, features, 1, (u) => 4 * u - 2);
    const queries = randomMatrix(60, features, 2, (u) => 4 * u - 2);
    assert.deepEqual(
      await nearestByIndex(stored, queries, features, k),
      bruteForceNearest(stored, queries, features, k),
    );
  });

  it('breaks ties by the lower index (integer data: many equal distances, all exact)', async () => {
    const [features, k] = [3, 9];
    const stored = randomMatrix(300, features, 3, (u) => Math.floor(3 * u));
    const queries = randomMatrix(40, features, 4, (u) => Math.floor(3 * u));
    const expected = bruteForceNearest(stored, queries, features, k);
    assert.deepEqual(await nearestByIndex(stored, queries, features, k), expected);
  });

  it("votes the neighbours' label shares; an example is its own nearest", async () => {
    const features = 4;
    const rows = 200;
    const inputs = randomMatrix(rows, features, 5, (u) => u);
    const labels = Int32Array.from({ length: rows }, (_, r) => r % 3);
    const data = { inputs: tensor('float32', [rows, features], inputs), labels };
    const one = await kNearestNeighbours({ k: 1 }).train(data, { seed: 0, budgetSeconds: 10 });
    const five = await kNearestNeighbours({ k: 5 }).train(data, { seed: 0, budgetSeconds: 10 });
    try {
      const probabilities = (await one.predictProba(data.inputs)).data as Float32Array;
      labels.forEach((label, r) => assert.equal(probabilities[r * 3 + label], 1, `example ${r}`));
      const query = inputs.subarray(0, 10 * features);
      const votes = (await five.predictProba(tensor('float32', [10, features], query)))
        .data as Float32Array;
      bruteForceNearest(inputs, query, features, 5).forEach((nearest, q) => {
        const expected = [0, 1, 2].map((c) => nearest.filter((r) => labels[r] === c).length / 5);
        assert.deepEqual(
          Array.from(votes.subarray(q * 3, q * 3 + 3), (v) => +v.toFixed(6)),
          expected,
        );
      });
      assert.deepEqual(five.size, { kind: 'prototypes', count: rows });
    } finally {
      await one.release();
      await five.release();
    }
  });
});
