/**
 * `teardown race` through `main(argv, io)`, on a small planted table written here: the split
 * saved in --json is regenerated from its seed, and every contender saw those rows (each one
 * trained apart on the regenerated rows scores exactly what the race reports); a contender that
 * fails is reported while the race goes on; progress on standard error, the scorecard on standard
 * output; the JSON has the shape docs/race.md documents; every refusal is exit 2 with its message
 * and writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../src/cli/main.ts';
import type { RaceData } from '../src/race/contender.ts';
import { contendersNamed } from '../src/race/contenders.ts';
import { kNearestNeighbours } from '../src/race/knn.ts';
import { logisticRegression } from '../src/race/logistic.ts';
import { raceTask } from '../src/race/race-task.ts';
import { seededRandom } from '../src/random.ts';
import { tempDir } from './model-files.ts';
import { accuracy, gaussian } from './race-oracles.ts';

const dir = tempDir('teardown-race-');
/** The backprop MLP's stated least budget (a search and a final run). */
const MLP_MINIMUM = contendersNamed('mlp')[0].minimumBudgetSeconds!;

/**
 * A table whose label is x0 + x1 > 0 with 10% noise, and whose `shortcut` column agrees with the
 * label in `agreement` of the rows.
 */
function plantedTable(path: string, rows: number, agreement: number, seed: number): string {
  const random = seededRandom(seed);
  const lines = ['x0,x1,x2,shortcut,label'];
  for (let r = 0; r < rows; r++) {
    const x = [gaussian(random), gaussian(random), gaussian(random)];
    const label = (x[0] + x[1] > 0 ? 1 : 0) ^ (random() < 0.1 ? 1 : 0);
    const shortcut = random() < agreement ? label : 1 - label;
    lines.push(`${x.map((v) => v.toFixed(4)).join(',')},${shortcut},${label}`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const train = plantedTable(join(dir, 'train.csv'), 200, 0.95, 1);
const shifted = plantedTable(join(dir, 'shifted.csv'), 100, 0.05, 2);
const NAN_SHIFTED = join(dir, 'nan.csv');
writeFileSync(NAN_SHIFTED, 'x0,x1,x2,shortcut,label\n0,1,2,0,1\n1,0,nan,1,0\n');
const TASK = ['--task', `csv:${train}`, '--label-column', 'label', '--attribute', 'shortcut'];
/** The documented example's flags: kNN (k = 5) cannot train on 2% of 160 rows (4) and fails. */
const RACE = [
  ...TASK,
  '--shifted',
  shifted,
  '--contenders',
  'knn,logistic',
  '--fractions',
  '0.02,1',
  '--budget',
  '0.5',
];

async function teardown(args: string[]) {
  const text = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (t: string) => (text.stdout += t) },
    stderr: { write: (t: string) => (text.stderr += t) },
  };
  const status = await main(['race', ...args], io);
  return { status, ...text };
}

/** The share of rows a classifier trained apart on `train` gets right on `data`. */
async function scoredApart(
  contender: ReturnType<typeof kNearestNeighbours>,
  trainRows: RaceData,
  data: RaceData[],
): Promise<number[]> {
  const classifier = await contender.train(trainRows, { seed: 1, budgetSeconds: 0.5 });
  try {
    const scores = [];
    for (const set of data) {
      const labels = Array.from((set.labels as { data: BigInt64Array }).data, Number);
      const probabilities = (await classifier.predictProba(set.inputs)).data as Float32Array;
      scores.push(accuracy(probabilities, labels, 2));
    }
    return scores;
  } finally {
    await classifier.release();
  }
}

/** Where `actual` differs in shape from `documented`: keys both ways, JSON types, array items. */
function shapeDifferences(actual: unknown, documented: unknown, path = '$'): string[] {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (actual === null || documented === null) return [];
  if (kind(actual) !== kind(documented))
    return [`${path}: ${kind(actual)}, documented ${kind(documented)}`];
  if (Array.isArray(actual)) {
    const items = documented as unknown[];
    if (items.length === 0) return [];
    return actual.flatMap((item, i) =>
      shapeDifferences(item, items[Math.min(i, items.length - 1)], `${path}[${i}]`),
    );
  }
  if (kind(actual) !== 'object') return [];
  const [a, d] = [actual as Record<string, unknown>, documented as Record<string, unknown>];
  return [
    ...Object.keys(a)
      .filter((key) => !(key in d))
      .map((key) => `${path}.${key}: not documented`),
    ...Object.keys(d)
      .filter((key) => !(key in a))
      .map((key) => `${path}.${key}: documented, not written`),
    ...Object.keys(a)
      .filter((key) => key in d)
      .flatMap((key) => shapeDifferences(a[key], d[key], `${path}.${key}`)),
  ];
}

/** The ```json block under "### The JSON" in docs/race.md. */
function documentedJson(): unknown {
  const page = readFileSync(new URL('../docs/race.md', import.meta.url), 'utf8');
  const section = page.split('### The JSON')[1];
  const block = section?.match(/```json\n([\s\S]*?)```/)?.[1];
  assert.ok(block, 'docs/race.md has a ```json block under "### The JSON"');
  return JSON.parse(block);
}

describe('teardown race', () => {
  it('saves a split its seed regenerates, the same rows for every contender; goes on past a failure', async () => {
    const [json, report] = [join(dir, 'race.json'), join(dir, 'report')];
    const { status, stdout, stderr } = await teardown([
      ...RACE,
      '--json',
      json,
      '--report',
      report,
    ]);
    assert.equal(status, 0, stderr);
    const result = JSON.parse(readFileSync(json, 'utf8'));
    // The split, regenerated from the saved seed alone, is the same rows (their sha256).
    const task = raceTask(`csv:${train}`, {
      dataSeed: result.split.seed,
      labelColumn: 'label',
      attributes: ['shortcut'],
      shifted,
    });
    assert.deepEqual(result.split, task.record);
    assert.deepEqual([task.record.train, task.record.test, task.record.shifted], [160, 40, 100]);
    const otherSeed = raceTask(`csv:${train}`, { dataSeed: 1, labelColumn: 'label' }).record;
    assert.notEqual(otherSeed.sha256.train, task.record.sha256.train);
    // Logistic regression trained apart on those rows scores exactly what the race reports.
    const { test, shifted: shiftedRows } = task.split;
    const [logistic, knn] = ['logistic regression', 'knn (k=5)'].map((name) =>
      result.contenders.find((c: { name: string }) => c.name === name),
    );
    const apart = await scoredApart(logisticRegression(), task.split.train, [test, shiftedRows!]);
    assert.deepEqual([logistic.accuracy.in, logistic.accuracy.shifted], apart);
    // kNN failed at 2% of the rows (4 < k): reported with its reason, and the race went on.
    assert.match(knn.failed, /kNN's k must be an integer from 1 to the 4 training examples; got 5/);
    assert.equal(logistic.failed, undefined);
    assert.deepEqual(
      logistic.dataEfficiency.map((f: { fraction: number }) => f.fraction),
      [0.02, 1],
    );
    assert.match(stdout, /knn \(k=5\) failed: kNN's k must be/);
    // The scorecard on standard output, the progress on standard error.
    assert.match(stdout, /contender\s+backprop\s+in distribution\s+shifted\s+shortcut flips/);
    assert.doesNotMatch(stdout, /race \[/);
    assert.match(stderr, /race \[#{20}\] 4\/4 .*done in/);
    assert.deepEqual(shapeDifferences(result, documentedJson()), []);
    assert.match(readFileSync(join(report, 'index.html'), 'utf8'), /logistic regression/);
  });

  it('a contender trained apart on the saved split scores what the race reports (kNN)', async () => {
    const json = join(dir, 'knn.json');
    const args = [...TASK, '--shifted', shifted, '--contenders', 'knn', '--data-seed', '5'];
    const { status, stderr } = await teardown([...args, '--json', json]);
    assert.equal(status, 0, stderr);
    const result = JSON.parse(readFileSync(json, 'utf8'));
    const task = raceTask(`csv:${train}`, {
      dataSeed: 5,
      labelColumn: 'label',
      attributes: ['shortcut'],
      shifted,
    });
    assert.deepEqual(result.split, task.record);
    const [knn] = result.contenders;
    const apart = await scoredApart(kNearestNeighbours(), task.split.train, [
      task.split.test,
      task.split.shifted!,
    ]);
    assert.deepEqual([knn.accuracy.in, knn.accuracy.shifted], apart);
  });

  const refusals: [string, string[], RegExp][] = [
    [
      'an unknown contender',
      [...TASK, '--contenders', 'knn,forset'],
      /Unknown contender 'forset' \(did you mean/,
    ],
    [
      'a shifted ranking without a shifted set',
      [...TASK, '--rank-by', 'shifted'],
      /--rank-by shifted needs a shifted set, and task 'csv:.*' has none/,
    ],
    [
      'a shifted file for a task without one',
      ['--task', 'modular-addition', '--shifted', shifted],
      /modular-addition has no shifted set: --shifted FILE applies to csv: and npy: tasks/,
    ],
    ['a budget of 0', [...TASK, '--budget', '0'], /The budget must be a positive number/],
    [
      "a budget below a contender's minimum",
      [...TASK, '--contenders', 'knn,mlp', '--budget', String(MLP_MINIMUM / 2)],
      new RegExp(
        `A budget of ${MLP_MINIMUM / 2} s is below what contender 'backprop MLP' needs ` +
          `\\(${MLP_MINIMUM} s per seed\\)`,
      ),
    ],
    ['a word for a budget', [...TASK, '--budget', 'ten'], /--budget expects a number, got 'ten'/],
    ['a fraction of 0', [...TASK, '--fractions', '0,1'], /--fractions expects shares .* got 0/],
    ['a word for a fraction', [...TASK, '--fractions', '0.5,x'], /--fractions expects a number/],
    ['0 seeds', [...TASK, '--seeds', '0'], /--seeds expects a positive integer, got '0'/],
    ['10^11 seeds', [...TASK, '--seeds', '99999999999'], /--seeds expects at most 1000/],
    [
      'a missing table',
      ['--task', `csv:${join(dir, 'missing.csv')}`, '--label-column', 'label'],
      /missing\.csv/,
    ],
    ['a missing shifted table', [...TASK, '--shifted', join(dir, 'missing.csv')], /missing\.csv/],
    ['a table without its label column', ['--task', `csv:${train}`], /needs --label-column/],
    [
      'a shifted table holding NaN, even with --allow-non-finite',
      [...TASK, '--shifted', NAN_SHIFTED, '--allow-non-finite'],
      /Race inputs must be finite; example 1, feature 2 is NaN/,
    ],
    [
      'a counterfactual the data cannot take',
      [...TASK, '--counterfactual', 'shortcut:channel-swap'],
      /Transform 'channel-swap' works on images \[N, C, H, W\]; the data is a table of 4 features/,
    ],
  ];
  for (const [what, args, message] of refusals) {
    it(`refuses ${what}: exit 2, one message, nothing written`, async () => {
      const json = join(dir, `refused-${what.replace(/\W+/g, '-')}.json`);
      const report = join(dir, `refused-${what.replace(/\W+/g, '-')}-report`);
      const { status, stdout, stderr } = await teardown([
        ...args,
        '--json',
        json,
        '--report',
        report,
      ]);
      assert.equal(status, 2, stderr);
      assert.match(stderr, message);
      assert.match(stderr, /^teardown: /);
      assert.doesNotMatch(stderr, /^\s+at /m);
      assert.doesNotMatch(stdout, /contender\s+backprop/, 'no scorecard');
      assert.ok(!existsSync(json) && !existsSync(report), 'nothing written');
    });
  }
});
