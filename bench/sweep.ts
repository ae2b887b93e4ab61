/**
 * `npm run bench -- sweep`: throughput of a local sweep (trials per minute) with 1 and 2 worker
 * processes, and the sweep's own cost per trial (pool, store, process spawn bookkeeping) against
 * the same commands spawned one after another by a bare loop. Two trial kinds: `printf` (no work:
 * the cost is all overhead) and the planted Node script of examples/sweep (a process start).
 * One JSON line per case and worker count; then the queue's overhead per trial against the local
 * pool (bench/sweep-queue.ts, skipped with the reason printed when redis-server is absent).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine } from '../src/sweep/command-trial.ts';
import { planConfigurations, planTrials } from '../src/sweep/plan.ts';
import { parseSweepSpec, type SweepSpec } from '../src/sweep/spec.ts';
import { sweep } from '../src/sweep/sweep.ts';
import { round } from './peer.ts';
import { benchSweepQueue } from './sweep-queue.ts';

const EXAMPLES = fileURLToPath(new URL('../examples/sweep/', import.meta.url));

const CASES: { name: string; command: string[]; configurations: number }[] = [
  { name: 'printf', command: ['printf', '{"metric": %s}\\n', '{x}'], configurations: 64 },
  {
    name: 'node-script',
    command: ['node', 'planted-trial.mjs', 'x={x}', 'seed={seed}'],
    configurations: 32,
  },
];

function specFor(command: string[], configurations: number): SweepSpec {
  return parseSweepSpec(
    {
      parameters: { x: { range: [0, 1] } },
      sampler: 'sobol',
      configurations,
      seeds: 2,
      metric: 'metric',
      success: 0.5,
      command,
    },
    EXAMPLES,
  );
}

/** Seconds to spawn every trial's command one after another, with nothing else. */
function bareLoopSeconds(spec: SweepSpec): number {
  const configurations = planConfigurations(spec);
  const started = performance.now();
  for (const trial of planTrials(spec)) {
    const { file, args } = commandLine({
      command: spec.trial.kind === 'command' ? spec.trial.command : [],
      params: configurations[trial.configuration].params,
      seed: trial.seed,
    });
    spawnSync(file, args, { cwd: EXAMPLES, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  return (performance.now() - started) / 1000;
}

export async function benchSweep(): Promise<void> {
  for (const benchCase of CASES) {
    const spec = specFor(benchCase.command, benchCase.configurations);
    const trials = spec.configurations * spec.seeds;
    const bare = bareLoopSeconds(spec);
    for (const workers of [1, 2]) {
      const out = join(mkdtempSync(join(tmpdir(), 'teardown-bench-sweep-')), 'sweep');
      const started = performance.now();
      const result = await sweep(spec, { out, workers });
      const seconds = (performance.now() - started) / 1000;
      if (result.counts.done !== trials)
        throw new Error(`bench sweep: ${result.counts.failed} trials failed`);
      console.log(
        JSON.stringify({
          case: `sweep-${benchCase.name}`,
          workers,
          trials,
          seconds: round(seconds, 2),
          trials_per_minute: round((60 * trials) / seconds, 0),
          bare_loop_seconds: round(bare, 2),
          // With one worker the sweep runs the same commands one at a time: the difference is its own cost.
          ...(workers === 1
            ? { overhead_ms_per_trial: round((1000 * (seconds - bare)) / trials, 1) }
            : {}),
          load_average: round(loadavg()[0], 1),
        }),
      );
    }
  }
  await benchSweepQueue();
}
