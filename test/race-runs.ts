/**
 * Hand-written race results for the tests of the race's reports: one seed's run on a task with a
 * colour shortcut, its intervals made up as ±0.02 around each accuracy and ±0.01 around the flip.
 */
import type { SeedRun } from '../src/race/race.ts';
import type { RaceSettings } from '../src/race/scorecard.ts';

export interface ColorRunFigures {
  seed: number;
  fraction: number;
  inside: number;
  shifted: number;
  /** Flip rate under the colour swap. */
  flip: number;
  seconds: number;
  micros: number;
  ece: number;
  worstGroup?: { group: string; accuracy: number; size: number };
}

export function colorRun(f: ColorRunFigures): SeedRun {
  const around = (v: number): [number, number] => [v - 0.02, v + 0.02];
  return {
    seed: f.seed,
    fraction: f.fraction,
    accuracy: {
      in: { value: f.inside, interval: around(f.inside) },
      shifted: { value: f.shifted, interval: around(f.shifted) },
    },
    trainSeconds: f.seconds,
    predictMicrosPerExample: f.micros,
    size: { kind: 'parameters', count: 50890 },
    audit: {
      ece: f.ece,
      ...(f.worstGroup ? { worstGroup: f.worstGroup } : {}),
      featureReliance: [],
      shortcuts: [
        {
          attribute: 'color',
          transform: 'channel-swap',
          flipRate: f.flip,
          interval: [Math.max(0, f.flip - 0.01), f.flip + 0.01],
        },
      ],
      robustness: {
        perturbation: 'Gaussian pixel noise σ = 0.05',
        flipRate: 0.04,
        interval: [0.03, 0.05],
      },
      findings: 0,
    },
  };
}

/** Colored MNIST with one seed, 30 s a run, the colour as its shortcut. */
export function colorRaceSettings(fractions: number[]): RaceSettings {
  return {
    task: 'colored-mnist',
    seeds: [1],
    fractions,
    budgetSeconds: 30,
    split: { seed: 1, train: 8000, test: 2000, shifted: 2000 },
    shortcutAttribute: 'color',
    classes: 2,
  };
}
