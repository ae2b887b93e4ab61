/**
 * inspect against planted ground truth (planted.ts): on networks with hand-set AND, OR, NOT,
 * threshold and XOR units among weak distractors, the planted units rank above every distractor
 * by importance (recall 1.0 of the planted units at the top) and each planted unit's input
 * dependencies are exactly the inputs it was wired to.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Model } from '../runtime/model.ts';
import { sliceFeeds } from '../tensor.ts';
import { CensusAccumulator } from './census.ts';
import { inspectModel } from './inspect.ts';
import { buildPlantedNetwork, type PlantedFunction } from './planted.ts';
import { floatTensor, tensor } from '../tensor.ts';

const NETWORKS: {
  name: string;
  features: number;
  functions: PlantedFunction[];
  distractors: number;
  seed: number;
}[] = [
  {
    name: 'AND, OR, NOT, threshold, XOR among 10 distractors',
    features: 8,
    distractors: 10,
    seed: 1,
    functions: [
      { kind: 'and', inputs: [0, 1] },
      { kind: 'or', inputs: [2, 3] },
      { kind: 'not', inputs: [4] },
      { kind: 'threshold', inputs: [5, 6, 7], atLeast: 2 },
      { kind: 'xor', inputs: [1, 6] },
    ],
  },
  {
    name: 'three functions among 24 distractors, another seed',
    features: 7,
    distractors: 24,
    seed: 7,
    functions: [
      { kind: 'xor', inputs: [0, 3] },
      { kind: 'threshold', inputs: [1, 2, 4, 5], atLeast: 3 },
      { kind: 'not', inputs: [6] },
    ],
  },
];

describe('inspect recovers planted units', () => {
  for (const network of NETWORKS) {
    it(network.name, async () => {
      const planted = buildPlantedNetwork(network);
      const model = Model.fromProto(planted.proto, 'planted', { threads: 1 });
      const data = {
        examples: planted.data.labels.dims[0],
        read: (start: number, end: number) =>
          sliceFeeds({ input: planted.data.inputs }, start, end),
      };
      const result = await inspectModel(model, data, planted.data.labels, {
        metric: { kind: 'loss' },
        batchSize: 64,
        hooks: ['act1', 'act2'],
      });
      const key = (hook: string, unit: number) => `${hook}#${unit}`;
      const plantedKeys = new Set(planted.planted.map((unit) => key(unit.hook, unit.unit)));
      const top = result.units.slice(0, plantedKeys.size).map((unit) => key(unit.hook, unit.unit));
      assert.deepEqual(
        new Set(top),
        plantedKeys,
        `top ${plantedKeys.size} by importance: ${top.join(', ')}`,
      );
      for (const unit of planted.planted) {
        const found = result.units.find((u) => u.hook === unit.hook && u.unit === unit.unit)!;
        if (unit.hook === 'act1')
          assert.deepEqual(
            [...found.inputs!].sort((a, b) => a - b),
            unit.inputs,
            `inputs of ${key(unit.hook, unit.unit)} (${unit.function.kind})`,
          );
        assert.ok(found.interval[0] > 0, `${key(unit.hook, unit.unit)} importance CI excludes 0`);
      }
      await model.release();
    });
  }
});

describe('attribute roles', () => {
  it('names the unit that encodes an attribute: the planted NOT(x4) unit for the attribute x4', async () => {
    const planted = buildPlantedNetwork(NETWORKS[0]);
    const model = Model.fromProto(planted.proto, 'planted', { threads: 1 });
    const rows = planted.data.labels.dims[0];
    const x4 = tensor(
      'int64',
      [rows],
      Array.from({ length: rows }, (_, n) => Number(planted.data.inputs.data[n * 8 + 4])),
    );
    const data = {
      examples: rows,
      read: (start: number, end: number) => sliceFeeds({ input: planted.data.inputs }, start, end),
    };
    const result = await inspectModel(model, data, planted.data.labels, {
      metric: { kind: 'loss' },
      batchSize: 128,
      hooks: ['act1'],
      attributes: new Map([['x4', x4]]),
    });
    const notUnit = planted.planted.find((unit) => unit.function.kind === 'not')!;
    const found = result.units.find((unit) => unit.hook === 'act1' && unit.unit === notUnit.unit)!;
    assert.ok(Math.abs(found.attributes!.x4.correlation) > 0.99, JSON.stringify(found.attributes));
    const strongest = result.units
      .filter((unit) => unit.attributes?.x4)
      .sort(
        (a, b) => Math.abs(b.attributes!.x4.correlation) - Math.abs(a.attributes!.x4.correlation),
      )[0];
    assert.equal(strongest.unit, notUnit.unit);
    // x4 is linearly readable from act1 (the NOT unit carries it): the held-out probe is right on (nearly) every example.
    assert.ok(result.hooks[0].probes.x4 > 0.95, `probe accuracy ${result.hooks[0].probes.x4}`);
    await model.release();
  });
});

describe('unit census', () => {
  it('streams the same mean, spread, activity and top examples as a direct computation', () => {
    const values = floatTensor([6, 2], [1, -1, 3, 0, -2, 5, 4, -3, 0, 2, 2, 1]); // unit 0: 1 3 −2 4 0 2; unit 1: −1 0 5 −3 2 1
    const census = new CensusAccumulator(2);
    census.add(sliceRowsOf(values, 0, 4), 0);
    census.add(sliceRowsOf(values, 4, 6), 4);
    const [u0, u1] = census.result();
    assert.ok(Math.abs(u0.mean - 8 / 6) < 1e-12);
    const variance = [1, 3, -2, 4, 0, 2].reduce((s, v) => s + (v - 8 / 6) ** 2, 0) / 5;
    assert.ok(Math.abs(u0.std - Math.sqrt(variance)) < 1e-12);
    assert.equal(u0.fractionActive, 4 / 6);
    assert.deepEqual(u0.top, [
      { example: 3, value: 4 },
      { example: 1, value: 3 },
    ]);
    assert.deepEqual(u1.top, [
      { example: 2, value: 5 },
      { example: 4, value: 2 },
    ]);
    assert.equal(u1.dead, false);
  });
});

function sliceRowsOf(t: ReturnType<typeof floatTensor>, start: number, end: number) {
  return {
    ...t,
    dims: [end - start, t.dims[1]],
    data: t.data.slice(start * t.dims[1], end * t.dims[1]),
  };
}

describe('importance through the downstream part equals importance through whole-graph sweeps', () => {
  it('mlp fixture: every unit of fc1, act1, fc2, act2', async () => {
    const { loadFixture } = await import('../../test/helpers.ts');
    const { unitImportance } = await import('./importance.ts');
    const { runWithCache } = await import('../runtime/run.ts');
    const { RowSum } = await import('../tensor-math.ts');
    const fixture = loadFixture('mlp');
    const hooks = ['fc1', 'act1', 'fc2', 'act2'].map((name) => fixture.model.hooks.resolve(name));
    const { cache } = await runWithCache(
      fixture.model,
      { input: fixture.input },
      hooks.map((hook) => hook.name),
    );
    const means = new Map(
      hooks.map((hook) => {
        const sum = new RowSum();
        sum.add(cache.get(hook.name)!);
        return [hook.name, sum.mean('float32')];
      }),
    );
    const counts = new Map(hooks.map((hook) => [hook.name, cache.get(hook.name)!.dims[1]]));
    const data = {
      examples: 16,
      read: (start: number, end: number) => sliceFeeds({ input: fixture.input }, start, end),
    };
    const labels = (await import('../data/npy.ts')).readNpy(`${fixture.dir}/target.npy`);
    const fast = await unitImportance(
      fixture.model,
      data,
      labels,
      hooks,
      means,
      counts,
      { kind: 'loss' },
      { batchSize: 5 },
    );
    const slow = await unitImportance(
      fixture.model,
      data,
      labels,
      hooks,
      means,
      counts,
      { kind: 'loss' },
      { batchSize: 5, unitAxis: 1 },
    ); // an explicit axis takes the whole-graph path
    fast.forEach((hook, h) => {
      hook.units.forEach((unit, u) =>
        assert.ok(
          Math.abs(unit.importance - slow[h].units[u].importance) < 1e-5,
          `${hook.hook}#${u}`,
        ),
      );
      assert.ok(Math.abs(hook.wholeHook.importance - slow[h].wholeHook.importance) < 1e-5);
    });
    await fixture.model.release();
  });
});

describe('circuit discovery', () => {
  it('prunes a planted network down to exactly its planted units', async () => {
    const { discoverCircuit } = await import('./circuit.ts');
    const { runWithCache } = await import('../runtime/run.ts');
    const { RowSum } = await import('../tensor-math.ts');
    const planted = buildPlantedNetwork({ ...NETWORKS[0], distractors: 6 });
    const model = Model.fromProto(planted.proto, 'planted', { threads: 1 });
    const feeds = { input: planted.data.inputs };
    const hooks = ['act1', 'act2'].map((name) => model.hooks.resolve(name));
    const { cache } = await runWithCache(model, feeds, ['act1', 'act2']);
    const means = new Map(
      hooks.map((hook) => {
        const sum = new RowSum();
        sum.add(cache.get(hook.name)!);
        return [hook.name, sum.mean('float32')];
      }),
    );
    const counts = new Map(hooks.map((hook) => [hook.name, cache.get(hook.name)!.dims[1]]));
    const circuit = await discoverCircuit(model, feeds, planted.data.labels, hooks, means, counts, {
      metric: { kind: 'accuracy' },
      tolerance: 0.01,
    });
    const key = (unit: { hook: string; unit: number }) => `${unit.hook}#${unit.unit}`;
    assert.deepEqual(new Set(circuit.units.map(key)), new Set(planted.planted.map(key)));
    assert.ok(circuit.faithfulness >= 0.99, `faithfulness ${circuit.faithfulness}`);
    assert.equal(circuit.curve.at(-1)!.kept, planted.planted.length);
    await model.release();
  });
});
