/**
 * The race's terminal table on a scorecard made from hand-written runs: one row per contender
 * with its figures, failures with their reason, and a verdict line that follows the figures
 * (the same race with the avoiding contender's flip rate raised answers No).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { colorRaceSettings, colorRun } from '../../test/race-runs.ts';
import type { ContenderResult, SeedRun } from '../race/race.ts';
import { scorecard } from '../race/scorecard.ts';
import { seededRandom } from '../random.ts';
import { formatRaceTable, withSpread } from './race-table.ts';

const run = (seed: number, inside: number, shifted: number, flip: number) =>
  colorRun({
    seed,
    fraction: 1,
    inside,
    shifted,
    flip,
    seconds: 12.34,
    micros: 0.71,
    ece: 0.0512,
    worstGroup: { group: 'color = 1', accuracy: 0.41, size: 1000 },
  });

function results(knnFlips: number): ContenderResult[] {
  return [
    { name: 'mlp', family: 'network', usesBackprop: true, runs: [run(1, 0.85, 0.2, 0.7)] },
    { name: 'knn', family: 'neighbours', usesBackprop: false, runs: [run(1, 0.72, 0.7, knnFlips)] },
    { name: 'ff', family: 'network', usesBackprop: false, runs: [], failed: 'ran out of time' },
  ];
}

const settings = colorRaceSettings([1]);

describe('race table', () => {
  const text = formatRaceTable(scorecard(results(0.003), settings), undefined);
  const lines = text.split('\n');

  it('gives one row per contender with its figures', () => {
    const header = lines.find((line) => line.startsWith('contender'))!;
    for (const title of ['backprop', 'in distribution', 'shifted', 'color flips', 'ECE'])
      assert.ok(header.includes(title), `header has ${title}: ${header}`);
    assert.ok(!header.includes('noise flips'), 'robustness is left to the JSON and the report');
    const row = (name: string) => lines.find((line) => line.startsWith(`${name} `))!.split(/ {2,}/);
    assert.deepEqual(row('mlp'), [
      'mlp',
      'yes',
      '85.0% (83–87)',
      '20.0% (18–22)',
      '70.0% (69–71)',
      'color = 1: 41.0%',
      '0.051',
      '12.3',
      '0.71',
      '50,890 params',
    ]);
    assert.equal(row('knn')[4], '0.3% (0.0–1.3)', 'a small flip rate keeps its decimal');
    assert.deepEqual(row('ff'), ['ff', 'no', 'failed']);
    assert.ok(lines.includes('ff failed: ran out of time'));
    assert.match(text, /in brackets: the Wilson 95% interval over the rows \(one seed\)/);
  });

  it('answers the demo’s question from the figures', () => {
    assert.match(text, /avoid the 'color' shortcut\? Yes\./);
    assert.match(text, /Avoid it: knn \(no backprop; flips 0\.3%, shifted 70\.0%\)\./);
    assert.match(text, /Do not: mlp \(backprop; flips 70\.0%, up to 71\.0%\)\./);
    assert.match(text, /Not judged: ff \(no backprop; failed\)\./);
    const raised = formatRaceTable(scorecard(results(0.2), settings), undefined);
    assert.match(raised, /avoid the 'color' shortcut\? No\./);
    assert.match(raised, /Avoid it: none\./);
  });

  it('adds the description column when runs carry one', () => {
    const [mlp, ...others] = results(0.003);
    const description = { kind: 'circuit units', count: 12, faithfulness: 0.951, outOf: 64 };
    const runs = mlp.runs.map((r) => ({ ...r, description: { ...description, seconds: 1 } }));
    const described = { ...mlp, runs: runs as SeedRun[] };
    const table = formatRaceTable(scorecard([described, ...others], settings), undefined);
    assert.match(
      table.split('\n').find((line) => line.startsWith('contender'))!,
      /description$/,
    );
    assert.match(table, /^mlp .* 12 of 64 circuit units at 95%$/m);
    assert.match(table, /^knn .* —$/m);
  });

  it('lists every failure with its reason when nothing was measured', () => {
    const failed = results(0).map((c) => ({ ...c, runs: [], failed: `${c.name} broke` }));
    const table = formatRaceTable(scorecard(failed, settings), undefined);
    for (const name of ['mlp', 'knn', 'ff']) {
      assert.match(table, new RegExp(`^${name} +(yes|no) +failed$`, 'm'));
      assert.match(table, new RegExp(`^${name} failed: ${name} broke$`, 'm'));
    }
    assert.doesNotMatch(table, /avoid the/, 'no verdict without a measured flip rate');
  });

  it('fits a 100-column terminal by wrapping cells', () => {
    const narrow = formatRaceTable(scorecard(results(0.003), settings), 100);
    const table = narrow.split('\n\n')[1];
    for (const line of table.split('\n')) assert.ok(line.length <= 100, line);
  });
});

describe('race table: spreads', () => {
  it('never prints a range that leaves out the mean (two seeds at 75.50% and 75.51%)', () => {
    const two = [run(1, 0.755, 0.7, 0.3), run(2, 0.7551, 0.7, 0.3)];
    const card = scorecard([{ name: 'mlp', family: 'network', usesBackprop: true, runs: two }], {
      ...settings,
      seeds: [1, 2],
    });
    const row = formatRaceTable(card, 1000)
      .split('\n')
      .find((line) => line.startsWith('mlp '))!;
    // Mean (.755 + .7551) / 2 = .75505: 75.5%; the seeds' range 75.50–75.51 holds it.
    assert.equal(row.split(/ {2,}/)[2], '75.5% (75–76)');
  });

  it('holds the printed mean and the true range, at whole points and under 10%', () => {
    const random = seededRandom(11);
    for (let i = 0; i < 2000; i++) {
      const scale = i % 2 ? 1 : 0.1;
      const [low, mean, high] = [random(), random(), random()].map((v) => v * scale).sort();
      const text = withSpread(mean, low, high);
      const [shown, from, to] = text.match(/[\d.]+/g)!.map(Number);
      assert.ok(from <= shown && shown <= to, `${text} from ${low}, ${mean}, ${high}`);
      assert.ok(from <= 100 * low + 1e-9 && 100 * high - 1e-9 <= to, `${text}: ${low}–${high}`);
    }
    assert.equal(withSpread(0.85, 0.8, 0.9), '85.0% (80–90)', 'exact bounds stay as they are');
    assert.equal(withSpread(0.003, 0, 0.013), '0.3% (0.0–1.3)');
  });
});
