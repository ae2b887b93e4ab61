/**
 * The queue's cost per trial, the last part of `npm run bench -- sweep` (bench/sweep.ts): 300
 * `printf` trials (no work: the time is all overhead and a process start) on one worker, through
 * the local pool and through the queue (`sweep` with `queue`, one `teardown worker` process,
 * Debian's redis-server started here on a free loopback port), alternately, three times each.
 * One JSON line per run, then the overhead: the median over the three pairs of (queue − local)
 * ms per trial, against the goal of under 20 ms. Without redis-server it prints why it
 * skips and returns.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSweepSpec, type SweepSpec } from '../src/sweep/spec.ts';
import { sweep } from '../src/sweep/sweep.ts';
import { round } from './peer.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const GOAL_MS = 20;
const REPS = 3;
const temporary = (name: string) => join(mkdtempSync(join(tmpdir(), 'bench-queue-')), name);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function printfSpec(configurations: number): SweepSpec {
  return parseSweepSpec(
    {
      parameters: { x: { range: [0, 1] } },
      sampler: 'sobol',
      configurations,
      seeds: 3,
      metric: 'metric',
      success: 0.5,
      command: ['printf', '{"metric": %s}\\n', '{x}'],
    },
    tmpdir(),
  );
}

/** Wall seconds of one sweep of `spec`, through the local pool (1 worker) or the queue. */
async function timedSweep(spec: SweepSpec, queue?: string): Promise<number> {
  const out = temporary(queue ? 'queue' : 'local');
  const started = performance.now();
  const result = await sweep(spec, queue ? { out, queue } : { out, workers: 1 });
  const seconds = (performance.now() - started) / 1000;
  const trials = spec.configurations * spec.seeds;
  if (result.counts.done !== trials)
    throw new Error(
      `bench sweep-queue: ${trials - result.counts.done} of ${trials} trials not done`,
    );
  return seconds;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

export async function benchSweepQueue(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    console.log(
      'SKIPPED sweep-queue: redis-server is not installed (apt-get install redis-server); ' +
        'the queue overhead was not measured',
    );
    return;
  }
  const url = `redis://127.0.0.1:${await freePort()}`;
  const redis = spawn(
    'redis-server',
    ['--port', url.split(':').at(-1)!, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { cwd: mkdtempSync(join(tmpdir(), 'bench-queue-redis-')), stdio: 'ignore' },
  );
  let worker: ChildProcess | undefined;
  try {
    worker = spawn(process.execPath, [BIN, 'worker', '--queue', url, '--quiet'], {
      stdio: 'inherit',
    });
    // Warm-up through the queue: it returns once the worker is up and has taken trials, so the
    // timed runs below do not count the worker's start.
    await timedSweep(printfSpec(4), url);
    const spec = printfSpec(100);
    const trials = spec.configurations * spec.seeds;
    const differences: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const msPerTrial: Record<string, number> = {};
      for (const mode of ['local', 'queue'] as const) {
        const seconds = await timedSweep(spec, mode === 'queue' ? url : undefined);
        msPerTrial[mode] = (1000 * seconds) / trials;
        console.log(
          JSON.stringify({
            case: 'sweep-queue',
            mode,
            workers: 1,
            trials,
            seconds: round(seconds, 2),
            ms_per_trial: round(msPerTrial[mode], 1),
            trials_per_minute: round((60 * trials) / seconds, 0),
            load_average: round(loadavg()[0], 1),
          }),
        );
      }
      differences.push(msPerTrial.queue - msPerTrial.local);
    }
    const overhead = median(differences);
    console.log(
      JSON.stringify({
        case: 'sweep-queue-overhead',
        trials,
        queue_overhead_ms_per_trial: round(overhead, 1),
        per_rep_ms: differences.map((d) => round(d, 1)),
        goal_ms: GOAL_MS,
        meets_goal: overhead < GOAL_MS,
        load_average: round(loadavg()[0], 1),
      }),
    );
  } finally {
    worker?.kill('SIGTERM');
    redis.kill('SIGTERM');
  }
}
