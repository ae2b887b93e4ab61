/**
 * The queue's cost per trial: `node --import tsx bench/sweep-queue.ts` runs 300 `printf` trials
 * (no work: the time is all overhead and a process start) on one worker, through the local pool
 * and through the queue (`teardown sweep --queue`, a `teardown worker` started before, Debian's
 * redis-server started here on a free loopback port), three times each. One JSON line per run.
 * Not registered in bench/run.ts (bench/sweep.ts measures the local pool).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSweepSpec } from '../src/sweep/spec.ts';
import { sweep } from '../src/sweep/sweep.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const temporary = (name: string) => join(mkdtempSync(join(tmpdir(), 'bench-queue-')), name);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const port = await freePort();
const url = `redis://127.0.0.1:${port}`;
if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0)
  throw new Error('redis-server is not installed (apt-get install redis-server)');
const redis = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  { cwd: mkdtempSync(join(tmpdir(), 'bench-queue-redis-')), stdio: 'ignore' },
);
const worker = spawn(process.execPath, [BIN, 'worker', '--queue', url, '--quiet'], {
  stdio: 'inherit',
});
// Both started (the worker under tsx takes a few seconds on a loaded machine).
await new Promise((resolve) => setTimeout(resolve, 6000));

const spec = parseSweepSpec(
  {
    parameters: { x: { range: [0, 1] } },
    sampler: 'sobol',
    configurations: 100,
    seeds: 3,
    metric: 'metric',
    success: 0.5,
    command: ['printf', '{"metric": %s}\\n', '{x}'],
  },
  tmpdir(),
);
try {
  for (let rep = 0; rep < 3; rep++) {
    for (const mode of ['local', 'queue'] as const) {
      const out = temporary(mode);
      const started = performance.now();
      const result = await sweep(
        spec,
        mode === 'local' ? { out, workers: 1 } : { out, queue: url },
      );
      const seconds = (performance.now() - started) / 1000;
      const trials = result.counts.done;
      console.log(
        JSON.stringify({
          mode,
          trials,
          seconds: Number(seconds.toFixed(2)),
          msPerTrial: Number(((1000 * seconds) / trials).toFixed(1)),
          trialsPerMinute: Math.round((60 * trials) / seconds),
          load: Number(loadavg()[0].toFixed(1)),
        }),
      );
    }
  }
} finally {
  worker.kill('SIGTERM');
  redis.kill('SIGTERM');
}
