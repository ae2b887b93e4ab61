/**
 * The race's HTML report, rendered (charts as inline SVG, as the sweep's report is tested) from a
 * scorecard of hand-written runs: the Pareto fronts worked out by hand here are the points the
 * charts ring, backprop and non-backprop points differ in shape and colour, every string from
 * the race is escaped, and a failure shows its reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { colorRaceSettings, colorRun } from '../../test/race-runs.ts';
import type { ContenderResult, SeedRun } from '../race/race.ts';
import { scorecard } from '../race/scorecard.ts';
import { renderRaceReport } from './race-html.ts';

const run = (fraction: number, inside: number, shifted: number, flip: number, seconds: number) =>
  colorRun({ seed: 1, fraction, inside, shifted, flip, seconds, micros: 0.7, ece: 0.05 });

const HOSTILE = '<img src=x onerror=alert(1)>';
const entry = (name: string, usesBackprop: boolean, runs: SeedRun[]): ContenderResult => ({
  name,
  family: 'network',
  usesBackprop,
  runs,
});
const results: ContenderResult[] = [
  entry('mlp', true, [run(0.1, 0.7, 0.2, 0.6, 3), run(1, 0.85, 0.2, 0.7, 20)]),
  entry('knn', false, [run(0.1, 0.6, 0.5, 0.1, 0.1), run(1, 0.72, 0.7, 0.003, 0.3)]),
  entry('dfa', false, [run(0.1, 0.6, 0.3, 0.1, 2), run(1, 0.83, 0.3, 0.5, 20)]),
  entry(HOSTILE, false, [run(0.1, 0.6, 0.5, 0.1, 1), run(1, 0.8, 0.5, 0.3, 5)]),
  { ...entry('ff', false, []), failed: 'budget <b>too short</b>' },
];
const settings = colorRaceSettings([0.1, 1]);

/** The SVG's point marks as {label, at, ring, square, fill}. */
function points(svg: string) {
  return [
    ...svg.matchAll(/<path aria-label="([^"]*)"[^>]*aria-roledescription="point"[^>]*>/g),
  ].map(([path, label = '']) => ({
    label,
    at: /transform="translate\(([^)]*)\)"/.exec(path)![1],
    ring: path.includes('stroke="#333"') && !path.includes('fill='),
    square: / d="M[-\d.]+,[-\d.]+h/.test(path),
    fill: /fill="([^"]*)"/.exec(path)?.[1],
  }));
}

describe('race report', async () => {
  const html = await renderRaceReport({ scorecard: scorecard(results, settings) });
  const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];

  it('draws both Pareto charts, the flip rates and data efficiency as inline SVG', () => {
    assert.equal(svgs.length, 4);
    assert.match(svgs[0], /Accuracy against training time/);
    assert.match(svgs[1], /Shifted against in-distribution accuracy/);
    assert.ok(!html.includes('<script'), 'no script');
  });

  it('rings the front worked out by hand, around the contenders’ own points', () => {
    // Accuracy vs time: knn (72%, 0.3 s), the hostile name (80%, 5 s), mlp (85%, 20 s);
    // dfa (83%, 20 s) is beaten by mlp. In vs shifted: knn (72, 70), hostile (80, 50),
    // dfa (83, 30), mlp (85, 20) each trade one axis for the other: all four are on it.
    const expected = [
      ['training seconds per seed (log): 0.3; in-distribution accuracy: 72%', 'knn'],
      ['training seconds per seed (log): 5; in-distribution accuracy: 80%', 'hostile'],
      ['training seconds per seed (log): 20; in-distribution accuracy: 85%', 'mlp'],
    ];
    const marks = points(svgs[0]!);
    const rings = marks.filter((p) => p.ring);
    assert.deepEqual(rings.map((p) => p.label).sort(), expected.map(([label]) => label).sort());
    const dots = marks.filter((p) => !p.ring);
    assert.equal(dots.length, 4);
    for (const ring of rings)
      assert.ok(dots.some((dot) => dot.at === ring.at && dot.label.startsWith(ring.label)));
    assert.equal(points(svgs[1]!).filter((p) => p.ring).length, 4);
  });

  it('draws backprop as squares and the others as circles, each contender in its colour', () => {
    const dots = points(svgs[0]!).filter((p) => !p.ring);
    for (const dot of dots)
      assert.equal(dot.square, dot.label.endsWith('kind: backprop'), dot.label);
    assert.equal(dots.filter((dot) => dot.square).length, 1, 'one backprop contender');
    assert.equal(new Set(dots.map((dot) => dot.fill)).size, dots.length, 'a colour each');
    assert.match(svgs[2]!, />mlp \(backprop\)</, 'the flip rates name the backprop contender');
  });

  it('escapes the race’s strings and shows the table, the failure and the verdict', () => {
    assert.ok(!html.includes('<img src=x'), 'a contender name is escaped');
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;'));
    assert.ok(!html.includes('<b>too short'), 'a failure reason is escaped');
    assert.match(html, /failed: budget &lt;b&gt;too short&lt;\/b&gt;/);
    assert.match(
      html,
      /<td>knn<\/td><td>no<\/td><td>72\.0% \(70–74\)<\/td><td>70\.0% \(68–72\)<\/td>/,
    );
    assert.match(html, /<th>color flips<\/th><th>noise flips<\/th><th>worst group<\/th>/);
    // knn's one run at the largest fraction: its flip rate under noise with its interval.
    assert.match(
      html,
      /<td>70\.0% \(68–72\)<\/td><td>0\.3% \(0\.0–1\.3\)<\/td><td>4\.0% \(3\.0–5\.0\)<\/td>/,
    );
    assert.match(
      html,
      /Noise flips: the share of test predictions changed by Gaussian pixel noise σ = 0\.05\./,
    );
    assert.match(html, /avoid the &#39;color&#39; shortcut\? Yes\./);
    assert.match(html, /<b>knn<\/b> \(no backprop\): avoids it/);
    assert.match(html, /<b>mlp<\/b> \(backprop\): does not — flips 70\.0%, up to 71\.0%/);
  });
});

describe('race report without a shifted set or an audit', () => {
  it('draws accuracy against time alone, and no verdict', async () => {
    const bare = (r: SeedRun): SeedRun => {
      const { audit: _audit, ...rest } = r;
      return { ...rest, accuracy: { in: r.accuracy.in } };
    };
    const plain = results.map((c) => ({ ...c, runs: c.runs.map(bare) }));
    const card = scorecard(plain, { ...settings, shortcutAttribute: undefined, fractions: [1] });
    const html = await renderRaceReport({ scorecard: card });
    assert.equal(html.match(/<svg/g)?.length, 1);
    assert.doesNotMatch(html, /avoid the/);
  });

  it('renders a race where every contender failed, with their reasons and no chart', async () => {
    const failed = results.map((c) => ({ ...c, runs: [], failed: 'no memory' }));
    const html = await renderRaceReport({ scorecard: scorecard(failed, settings) });
    assert.equal(html.match(/<svg/g), null);
    assert.equal(html.match(/failed: no memory/g)?.length, results.length);
  });
});
