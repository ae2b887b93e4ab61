/**
 * The scorecard on race results written by hand: every mean, range and standard deviation below
 * is worked out by hand from the runs' numbers (in the comments), not by the code under test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContenderResult, SeedRun } from './race.ts';
import { scorecard, type RaceSettings } from './scorecard.ts';

interface RunFigures {
  seed: number;
  fraction?: number;
  in: number;
  shifted?: number;
  flip?: number;
  severity?: string;
  worst?: [string, number];
  ece?: number;
  /** Flip rate under noise, and whether the audit made a finding of it. */
  noise?: number;
  noiseFinding?: boolean;
  seconds?: number;
  micros?: number;
  count?: number;
  description?: { kind: string; count: number; faithfulness: number; outOf?: number };
}

/** A run with made-up intervals that differ from the values (to tell range from interval). */
function run(f: RunFigures): SeedRun {
  const around = (v: number): [number, number] => [v - 0.01, v + 0.02];
  return {
    seed: f.seed,
    fraction: f.fraction ?? 1,
    accuracy: {
      in: { value: f.in, interval: around(f.in) },
      ...(f.shifted !== undefined
        ? { shifted: { value: f.shifted, interval: around(f.shifted) } }
        : {}),
    },
    trainSeconds: f.seconds ?? 1,
    predictMicrosPerExample: f.micros ?? 2,
    size: { kind: 'parameters', count: f.count ?? 100 },
    ...(f.flip !== undefined
      ? {
          audit: {
            ece: f.ece ?? 0.1,
            ...(f.worst
              ? { worstGroup: { group: f.worst[0], accuracy: f.worst[1], size: 40 } }
              : {}),
            featureReliance: [],
            shortcuts: [
              { attribute: 'other', transform: 'flip', flipRate: 0.9, interval: [0.8, 0.95] },
              {
                attribute: 'color',
                transform: 'channel-swap',
                flipRate: f.flip,
                interval: around(f.flip),
                ...(f.severity ? { severity: f.severity } : {}),
              },
            ],
            ...(f.noise !== undefined
              ? {
                  robustness: {
                    perturbation: 'Gaussian pixel noise σ = 0.05',
                    flipRate: f.noise,
                    interval: around(f.noise),
                    ...(f.noiseFinding ? { severity: 'medium' } : {}),
                  },
                }
              : {}),
            findings: f.severity ? 1 : 0,
          },
        }
      : {}),
    ...(f.description ? { description: f.description } : {}),
  } as SeedRun;
}

function contender(
  name: string,
  usesBackprop: boolean,
  runs: SeedRun[],
  failed?: string,
): ContenderResult {
  return { name, family: 'network', usesBackprop, runs, ...(failed ? { failed } : {}) };
}

const settings: RaceSettings = {
  task: 'colored-mnist',
  seeds: [1, 2, 3],
  fractions: [1, 0.5],
  budgetSeconds: 30,
  split: { seed: 1, train: 8000, test: 2000, shifted: 2000 },
  shortcutAttribute: 'color',
  classes: 2,
};

function close(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(
    actual !== null && actual !== undefined && Math.abs(actual - expected) < 1e-12,
    `${what}: ${actual}, expected ${expected}`,
  );
}

const backprop = contender('mlp', true, [
  run({ seed: 1, fraction: 0.5, in: 0.6, shifted: 0.3 }),
  run({ seed: 2, fraction: 0.5, in: 0.7, shifted: 0.2 }),
  run({ seed: 3, fraction: 0.5, in: 0.8, shifted: 0.1 }),
  run({
    seed: 1,
    in: 0.8,
    shifted: 0.2,
    flip: 0.6,
    severity: 'high',
    worst: ['digit 3', 0.5],
    ece: 0.1,
    noise: 0.02,
    seconds: 10,
    micros: 3,
    count: 1000,
  }),
  run({
    seed: 2,
    in: 0.9,
    shifted: 0.3,
    flip: 0.7,
    severity: 'high',
    worst: ['digit 5', 0.4],
    ece: 0.2,
    noise: 0.09,
    noiseFinding: true,
    seconds: 12,
    micros: 5,
    count: 1000,
  }),
  run({
    seed: 3,
    in: 0.85,
    shifted: 0.1,
    flip: 0.8,
    worst: ['digit 3', 0.6],
    ece: 0.3,
    noise: 0.04,
    seconds: 14,
    micros: 4,
    count: 1000,
  }),
]);

describe('scorecard', () => {
  const card = scorecard(
    [
      backprop,
      contender('knn', false, [
        run({ seed: 1, in: 0.75, shifted: 0.72, flip: 0.01, noise: 0.1 }),
        run({ seed: 2, in: 0.7, shifted: 0.7, flip: 0.02, noise: 0.2 }),
        run({ seed: 3, in: 0.8, shifted: 0.74, flip: 0 }),
      ]),
      contender('collapses', false, [
        run({ seed: 1, in: 0.9, shifted: 0.5, flip: 0 }),
        run({ seed: 2, in: 0.9, shifted: 0.5, flip: 0 }),
      ]),
      contender('near chance', false, [
        run({ seed: 1, in: 0.55, shifted: 0.55, flip: 0 }),
        run({ seed: 2, in: 0.57, shifted: 0.57, flip: 0 }),
      ]),
      contender('at the threshold', false, [
        run({ seed: 1, in: 0.7, shifted: 0.7, flip: 0.01 }),
        run({ seed: 2, in: 0.7, shifted: 0.7, flip: 0.05 }),
      ]),
      contender('broken', false, [], 'out of memory'),
    ],
    settings,
  );
  const [mlp, knn, collapses, nearChance, atThreshold, broken] = card.contenders;

  it('keeps the race settings at the top level', () => {
    assert.equal(card.task, 'colored-mnist');
    assert.deepEqual(card.seeds, [1, 2, 3]);
    assert.deepEqual(card.fractions, [1, 0.5]);
    assert.equal(card.budgetSeconds, 30);
    assert.deepEqual(card.split, settings.split);
    assert.equal(card.shortcutAttribute, 'color');
  });

  it('averages the seeds at the largest fraction, with their range and sample std', () => {
    assert.equal(mlp.seedsMeasured, 3);
    close(mlp.accuracy!.in, 0.85, 'mean of .8, .9, .85');
    close(mlp.accuracy!.low, 0.8, 'lowest seed');
    close(mlp.accuracy!.high, 0.9, 'highest seed');
    assert.equal(mlp.accuracy!.spread, 'seed range');
    close(mlp.accuracy!.shifted, 0.2, 'mean of .2, .3, .1');
    close(mlp.accuracy!.shiftedLow, 0.1, 'lowest shifted');
    close(mlp.accuracy!.shiftedHigh, 0.3, 'highest shifted');
    // Deviations −.05, +.05, 0: √((.0025 + .0025) / 2) = .05.
    close(mlp.seedStd, 0.05, 'seed std');
    close(mlp.trainSeconds, 12, 'mean of 10, 12, 14 s');
    close(mlp.predictMicrosPerExample, 4, 'mean of 3, 5, 4 µs');
    assert.deepEqual(mlp.size, { kind: 'parameters', count: 1000 });
    close(mlp.ece, 0.2, 'mean of .1, .2, .3');
    assert.equal(mlp.usesBackprop, true);
    assert.equal(mlp.failed, undefined);
  });

  it('takes the named attribute’s flip rate, and the worst group named most often', () => {
    const s = mlp.shortcut!;
    assert.equal(s.attribute, 'color');
    assert.equal(s.transform, 'channel-swap');
    close(s.flipRate, 0.7, 'mean of .6, .7, .8');
    close(s.low, 0.6, 'lowest');
    close(s.high, 0.8, 'highest');
    assert.equal(s.findings, 2);
    assert.equal(mlp.worstGroup!.group, 'digit 3');
    close(mlp.worstGroup!.accuracy, 0.5, 'mean of .5, .4, .6');
  });

  it('averages the flip rate under noise over the seeds, null unless every seed measured it', () => {
    const r = mlp.robustness!;
    assert.equal(r.perturbation, 'Gaussian pixel noise σ = 0.05');
    // (.02 + .09 + .04) / 3 = .15 / 3 = .05; range .02–.09.
    close(r.flipRate, 0.05, 'mean of .02, .09, .04');
    close(r.low, 0.02, 'lowest');
    close(r.high, 0.09, 'highest');
    assert.equal(r.spread, 'seed range');
    assert.equal(r.findings, 1, 'a finding in seed 2 only');
    // knn's third seed has no robustness measurement: no mean over two of three seeds.
    assert.equal(knn.robustness, null);
    assert.equal(collapses.robustness, null, 'not measured at all');
  });

  it('gives accuracy at every fraction, smallest first', () => {
    assert.deepEqual(
      mlp.dataEfficiency.map((f) => [f.fraction, f.seedsMeasured]),
      [
        [0.5, 3],
        [1, 3],
      ],
    );
    close(mlp.dataEfficiency[0].accuracy.in, 0.7, 'mean of .6, .7, .8 at half the data');
    close(mlp.dataEfficiency[0].accuracy.shifted, 0.2, 'mean of .3, .2, .1 at half');
  });

  it('marks the Pareto fronts', () => {
    // Accuracy vs time: 'collapses' (.9 in 1 s) beats every other on both axes.
    assert.deepEqual(card.pareto.accuracyVsTime, ['collapses']);
    // In vs shifted: knn (.75, .72) and collapses (.9, .5); mlp (.85, .2) is below collapses,
    // near chance (.56, .56) and at the threshold (.7, .7) below knn.
    assert.deepEqual(card.pareto.inVsShifted, ['knn', 'collapses']);
  });

  it('reports a failed contender with its reason and no figures', () => {
    assert.equal(broken.failed, 'out of memory');
    assert.equal(broken.accuracy, null);
    assert.equal(broken.shortcut, null);
    assert.equal(broken.seedStd, null);
    assert.deepEqual(broken.dataEfficiency, []);
  });

  it('finds who avoids the shortcut from the figures', () => {
    const verdict = card.verdict!;
    assert.equal(verdict.attribute, 'color');
    assert.equal(verdict.rule.chance, 0.5);
    assert.equal(verdict.rule.shiftedChecked, true);
    // knn: flips up to .02 < .05; shifted .72 is .03 below .75 and ≥ .5 + .1.
    assert.deepEqual(verdict.avoiding, ['knn']);
    const byName = Object.fromEntries(verdict.contenders.map((v) => [v.name, v]));
    assert.equal(byName.mlp.avoids, false);
    assert.match(byName.mlp.reason, /flips 70\.0%, up to 80\.0%/);
    // collapses: flips 0 but shifted .5 is .4 below .9.
    assert.equal(byName.collapses.avoids, false);
    assert.match(byName.collapses.reason, /shifted accuracy 50\.0%, 40\.0 points below/);
    // near chance: .56 on both, under .5 + .1.
    assert.equal(byName['near chance'].avoids, false);
    assert.match(byName['near chance'].reason, /near chance/);
    // A flip rate reaching .05 in one seed is not below .05.
    assert.equal(byName['at the threshold'].avoids, false);
    assert.equal(byName.broken.avoids, null);
    assert.equal(byName.broken.reason, 'failed');
    assert.equal(collapses.shortcut!.findings, 0);
    assert.equal(nearChance.seedsMeasured, 2);
    assert.equal(atThreshold.shortcut!.high, 0.05);
    assert.equal(knn.usesBackprop, false);
  });
});

describe('scorecard: one seed, no audit, descriptions', () => {
  it('spreads one run by its Wilson interval', () => {
    const card = scorecard(
      [contender('solo', false, [run({ seed: 7, in: 0.9, shifted: 0.4, flip: 0.3, noise: 0.05 })])],
      { ...settings, seeds: [7], fractions: [1] },
    );
    const [solo] = card.contenders;
    assert.equal(solo.accuracy!.spread, 'wilson 95%');
    close(solo.accuracy!.low, 0.89, 'the run’s interval, low');
    close(solo.accuracy!.high, 0.92, 'the run’s interval, high');
    close(solo.accuracy!.shiftedLow, 0.39, 'shifted interval, low');
    close(solo.shortcut!.high, 0.32, 'flip interval, high');
    assert.equal(solo.robustness!.spread, 'wilson 95%');
    close(solo.robustness!.flipRate, 0.05, 'the one run’s flip rate under noise');
    close(solo.robustness!.low, 0.04, 'noise flip interval, low');
    close(solo.robustness!.high, 0.07, 'noise flip interval, high');
    assert.equal(solo.seedStd, 0);
  });

  it('has no shortcut, verdict or ECE without an audit; else the first audited attribute', () => {
    const bare = scorecard([contender('plain', false, [run({ seed: 1, in: 0.9 })])], {
      ...settings,
      shortcutAttribute: undefined,
      fractions: [1],
    });
    assert.equal(bare.shortcutAttribute, null);
    assert.equal(bare.contenders[0].shortcut, null);
    assert.equal(bare.contenders[0].ece, null);
    assert.equal(bare.contenders[0].robustness, null);
    assert.equal(bare.contenders[0].accuracy!.shifted, null);
    assert.equal(bare.verdict, null);
    const audited = scorecard([contender('a', false, [run({ seed: 1, in: 0.9, flip: 0.1 })])], {
      ...settings,
      shortcutAttribute: undefined,
      fractions: [1],
    });
    assert.equal(audited.shortcutAttribute, 'other');
    close(audited.contenders[0].shortcut!.flipRate, 0.9, 'the first audited attribute');
  });

  it('averages the description of the learned function where runs carry one', () => {
    const described = (seed: number, count: number, faithfulness: number) =>
      run({
        seed,
        in: 0.9,
        description: { kind: 'circuit units', count, faithfulness, outOf: 64 },
      });
    const card = scorecard(
      [contender('net', true, [described(1, 10, 0.95), described(2, 20, 0.97)])],
      { ...settings, fractions: [1] },
    );
    const { description } = card.contenders[0];
    assert.equal(description!.kind, 'circuit units');
    close(description!.count, 15, 'mean of 10 and 20');
    close(description!.faithfulness, 0.96, 'mean of .95 and .97');
    close(description!.outOf, 64, 'both cut down from 64');
  });
});
