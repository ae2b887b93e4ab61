import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { decode, encode, planConfigurations, planTrials } from './plan.ts';
import { parseSweepSpec, type Parameter } from './spec.ts';

const base = {
  parameters: { lr: { log: [1e-4, 1e-1] }, act: { values: ['relu', 'tanh'] } },
  configurations: 8,
  metric: 'm',
  success: 0.5,
  command: 'python3 train.py --lr {lr} --act {act} --seed {seed}',
};

/** The refusal of this spec: an InputError whose message names `field`. */
function refuses(spec: object, field: RegExp) {
  assert.throws(
    () => parseSweepSpec(spec, '/tmp'),
    (error: unknown) => error instanceof InputError && field.test(error.message),
  );
}

describe('sweep spec', () => {
  it('reads a spec with its defaults (sobol, 5 seeds, maximize)', () => {
    const spec = parseSweepSpec(base, '/tmp');
    assert.equal(spec.sampler, 'sobol');
    assert.equal(spec.seeds, 5);
    assert.equal(spec.direction, 'maximize');
    assert.deepEqual(spec.parameters[0], { name: 'lr', kind: 'log', low: 1e-4, high: 1e-1 });
    assert.deepEqual(spec.trial, { kind: 'command', command: base.command, cwd: '/tmp' });
  });

  it('refuses malformed specs with one message naming the field', () => {
    refuses({ ...base, sampler: 'halton' }, /'sampler'/);
    refuses({ ...base, seeds: 0 }, /'seeds'/);
    refuses({ ...base, success: 'high' }, /'success'/);
    refuses({ ...base, parameters: { lr: { log: [0, 1] } } }, /parameters\.lr\.log.*low > 0/);
    refuses({ ...base, parameters: { lr: { range: [1, 1] } } }, /parameters\.lr\.range/);
    refuses({ ...base, parameters: { n: { int: [1.5, 4] } } }, /parameters\.n\.int/);
    refuses({ ...base, parameters: { lr: { uniform: [0, 1] } } }, /parameters\.lr/);
    refuses({ ...base, metric: undefined }, /'metric' is missing/);
    refuses({ ...base, epochs: 3 }, /'epochs' is not known/);
    refuses({ ...base, train: { task: 'mnist' } }, /either 'train'.*or 'command'/);
    refuses({ ...base, direction: 'up' }, /'direction'/);
    refuses(
      { ...base, cwd: 'no/such/folder' },
      /'cwd': folder '\/tmp\/no\/such\/folder' does not exist/,
    );
    refuses({ ...base, timeout: 1e300 }, /'timeout' is 1e\+300 s: at most/);
    refuses(
      { ...base, configurations: 1e9 },
      /1000000000 configurations × 5 seeds .* more than 1000000/,
    );
    refuses(
      { ...base, sampler: 'grid', configurations: undefined, levels: 1e8 },
      /more than 1000000/,
    );
  });

  it('refuses a placeholder that is no parameter, and a parameter that reaches no trial', () => {
    refuses(
      { ...base, command: 'train --lr {lr} --act {act} --wd {wd}' },
      /'\{wd\}', which is not a parameter/,
    );
    refuses({ ...base, command: 'train --lr {lr}' }, /parameter 'act' reaches no trial/);
  });

  it('sets the grid size itself and refuses another', () => {
    const spec = parseSweepSpec({ ...base, sampler: 'grid', configurations: undefined, levels: 4 });
    assert.equal(spec.configurations, 4 * 2);
    refuses({ ...base, sampler: 'grid', configurations: 9 }, /'configurations'.*holds 6/);
  });
});

describe('sweep plan', () => {
  const lr: Parameter = { name: 'lr', kind: 'log', low: 1e-4, high: 1e-1 };
  const n: Parameter = { name: 'n', kind: 'int', low: 2, high: 5 };
  const act: Parameter = { name: 'act', kind: 'values', values: ['relu', 'tanh', 'gelu'] };

  it('maps unit coordinates to values and back (log space for log)', () => {
    assert.ok(Math.abs((decode(lr, 0.5) as number) - 10 ** -2.5) < 1e-15);
    assert.equal(decode(lr, 0), 1e-4);
    assert.deepEqual(
      [0, 0.24, 0.25, 0.99, 1].map((u) => decode(n, u)),
      [2, 2, 3, 5, 5],
    );
    assert.deepEqual(
      [0, 0.4, 0.99].map((u) => decode(act, u)),
      ['relu', 'tanh', 'gelu'],
    );
    for (const u of [0.1, 0.5, 0.9]) assert.ok(Math.abs(encode(lr, decode(lr, u)) - u) < 1e-12);
    assert.equal(encode(n, 3), 1.5 / 4);
  });

  it('grid: every combination, bounds included, the first parameter slowest', () => {
    const spec = parseSweepSpec({ ...base, sampler: 'grid', configurations: undefined, levels: 3 });
    const configurations = planConfigurations(spec).map((c) => c.params);
    assert.equal(configurations.length, 6);
    assert.deepEqual(
      configurations.map((c) => c.act),
      ['relu', 'tanh', 'relu', 'tanh', 'relu', 'tanh'],
    );
    assert.deepEqual(
      configurations
        .filter((_, i) => i % 2 === 0)
        .map((c) => Number((c.lr as number).toPrecision(6))),
      [1e-4, 0.00316228, 0.1],
    );
  });

  it('sobol and random: the same plan every time; random changes with samplerSeed', () => {
    const sobol = parseSweepSpec(base);
    assert.deepEqual(planConfigurations(sobol), planConfigurations(sobol));
    assert.equal(planConfigurations(sobol)[1].params.act, 'tanh'); // u = ½
    const random = parseSweepSpec({ ...base, sampler: 'random' });
    const other = parseSweepSpec({ ...base, sampler: 'random', samplerSeed: 1 });
    assert.deepEqual(planConfigurations(random), planConfigurations(random));
    assert.notDeepEqual(planConfigurations(random), planConfigurations(other));
  });

  it('trials: configurations × seeds, each pair once', () => {
    const trials = planTrials(parseSweepSpec({ ...base, seeds: 3 }));
    assert.equal(trials.length, 24);
    assert.equal(new Set(trials.map((t) => `${t.configuration}/${t.seed}`)).size, 24);
  });
});
