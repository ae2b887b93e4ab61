/**
 * `teardown sweep --queue` and `teardown worker` with the real pieces: Debian's redis-server
 * started here on a free loopback port (no persistence, in a temporary folder), BullMQ, worker
 * processes of bin/teardown.js, and the planted command trial of test/sweep.test.ts
 * (examples/sweep/planted-trial.mjs: a known metric per configuration and seed, a log line per
 * run). Without redis-server, the set-up installs it (root with apt-get), else every case is
 * skipped with a printed reason.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.ts';
import { lateKey } from '../src/sweep/queue-connection.ts';
import { parseSweepSpec } from '../src/sweep/spec.ts';
import { SweepStore, type TrialRecord } from '../src/sweep/store.ts';
import { sweep, type SweepStatus } from '../src/sweep/sweep.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const EXAMPLES = join(ROOT, 'examples/sweep');
const BIN = join(ROOT, 'bin/teardown.js');
const temporary = () => mkdtempSync(join(tmpdir(), 'teardown-sweep-queue-'));
const PLANTED = JSON.parse(readFileSync(join(EXAMPLES, 'planted.json'), 'utf8'));

/** redis-server's path, installing Debian's package where we may; else why not. */
function findRedisServer(): { path: string } | { skip: string } {
  const which = () => spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which().status === 0) return { path: which().stdout.trim() };
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
  if (process.getuid?.() !== 0 || !apt)
    return { skip: 'redis-server is not installed and this is not root with apt-get' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', 'redis-server'], { encoding: 'utf8' }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update'], { encoding: 'utf8' });
    if (!install()) return { skip: 'apt-get install -y redis-server failed' };
  }
  return which().status === 0 ? { path: which().stdout.trim() } : { skip: 'no redis-server' };
}

const redisServer = findRedisServer();
const skip = 'skip' in redisServer ? redisServer.skip : false;
if (skip) console.log(`SKIPPED test/sweep-queue.test.ts: ${skip}`);

let redis: ChildProcess | undefined;
let url = '';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** redis-cli-like: one command on a fresh connection (ioredis, as teardown uses). */
async function redisCommand(...args: string[]): Promise<unknown> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    return await client.call(args[0], ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/** `teardown ...args` in this process. */
async function teardown(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { status, stdout, stderr };
}

interface WorkerProcess {
  name: string;
  process: ChildProcess;
  output: () => string;
}

/** `teardown worker` as its own process, resolved once it waits for trials. */
async function startWorker(
  name: string,
  heartbeat: number,
  extra: string[] = [],
): Promise<WorkerProcess> {
  const child = spawn(
    process.execPath,
    [BIN, 'worker', '--queue', url, '--name', name, '--heartbeat', String(heartbeat), ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await waitFor(
    () => output.includes('waiting for trials'),
    30_000,
    () => output,
  );
  return { name, process: child, output: () => output };
}

async function stopWorkers(workers: WorkerProcess[]): Promise<void> {
  await Promise.all(
    workers.map(async ({ process: child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await exited;
    }),
  );
}

async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: () => string = () => '',
): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The store's trials, read by another connection while the sweep writes it (or after). */
async function storedTrials(out: string): Promise<TrialRecord[]> {
  if (!existsSync(join(out, 'sweep.db'))) return [];
  const store = await SweepStore.read(out);
  try {
    return store.trials();
  } finally {
    store.close();
  }
}

/** A planted spec: `configurations` × `seeds`, each run sleeping `sleep` ms, logged to `log`. */
function plantedSpec(configurations: number, seeds: number, sleep: number, log: string) {
  return {
    ...PLANTED,
    configurations,
    seeds,
    cwd: EXAMPLES,
    command: `node planted-trial.mjs x={x} y={y} z={z} seed={seed} sleep=${sleep} log=${log}`,
  };
}

const runsLogged = (log: string) =>
  existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).length : 0;

describe('teardown sweep --queue: trials through BullMQ on Redis', { skip }, () => {
  before(async () => {
    if (skip) return;
    const dir = temporary();
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    redis = spawn(
      (redisServer as { path: string }).path,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { cwd: dir, stdio: 'ignore' },
    );
    await waitFor(
      async () => (await redisCommand('PING').catch(() => '')) === 'PONG',
      10_000,
      () => 'redis-server did not answer',
    );
  });

  after(async () => {
    if (!redis) return;
    const exited = new Promise((resolve) => redis!.once('exit', resolve));
    redis.kill('SIGTERM');
    await exited;
  });

  it('two workers finish a sweep; the store holds what the local pool gives, by the same seeds', async () => {
    await redisCommand('FLUSHALL');
    const dir = temporary();
    const ranByA = join(dir, 'wA.json');
    const workers = await Promise.all([
      startWorker('wA', 5, ['--json', ranByA]),
      startWorker('wB', 5),
    ]);
    let queuedTrials: TrialRecord[] = [];
    try {
      const spec = parseSweepSpec({ ...PLANTED, configurations: 8, seeds: 3 }, EXAMPLES);
      const updates: SweepStatus[] = [];
      const queued = await sweep(spec, {
        out: join(dir, 'queued'),
        queue: url,
        onUpdate: (status) => updates.push(status),
      });
      const local = await sweep(spec, { out: join(dir, 'local'), workers: 2 });
      assert.deepEqual(
        { ...queued.counts },
        { pending: 0, running: 0, done: 24, failed: 0, duplicates: 0 },
      );
      const row = (t: TrialRecord) => [t.id, t.configuration, t.seed, t.status, t.metric];
      assert.deepEqual(queued.trials.map(row), local.trials.map(row));
      queuedTrials = queued.trials;
      assert.deepEqual([...new Set(queued.trials.map((t) => t.worker))].sort(), ['wA', 'wB']);
      assert.deepEqual(queued.analysis.success, local.analysis.success);
      // Progress as the local sweep's: the counts add up, trials were seen running, then done.
      for (const u of updates) assert.equal(u.done + u.failed + u.running + u.pending, 24);
      assert.ok(updates.some((u) => u.running > 0));
      assert.equal(updates.at(-1)!.done, 24);
      assert.equal(updates.at(-1)!.best!.configuration, local.analysis.best!.configuration);
      // Every job the sweep put on the queue was taken off again once recorded.
      const key = await sweepKey(join(dir, 'queued'));
      assert.equal(((await redisCommand('KEYS', `bull:teardown-sweep:${key}-*`)) as []).length, 0);
    } finally {
      await stopWorkers(workers);
    }
    // wA's --json, written when it stopped, lists the trials the store says wA ran.
    const ran = JSON.parse(readFileSync(ranByA, 'utf8')) as {
      worker: string;
      trials: { trial: number; status: string; metric: number }[];
    };
    assert.equal(ran.worker, 'wA');
    const byA = queuedTrials.filter((t) => t.worker === 'wA');
    assert.ok(byA.length > 0);
    const listed = ran.trials.map((t) => [t.trial, t.status, t.metric]);
    assert.deepEqual(listed.sort(), byA.map((t) => [t.id, t.status, t.metric]).sort());
  });

  it("training trials through the queue give the local pool's metrics and curves (one onnxruntime thread each)", async () => {
    await redisCommand('FLUSHALL');
    const dir = temporary();
    const workers = await Promise.all([startWorker('wA', 5), startWorker('wB', 5)]);
    try {
      const spec = parseSweepSpec({
        parameters: { lr: { values: [0.01, 0.1] } },
        sampler: 'grid',
        seeds: 2,
        metric: 'testAccuracy',
        success: 0.3,
        train: { task: 'mnist', model: 'mlp:hidden=8', steps: 6, evalEvery: 3 },
      });
      const queued = await sweep(spec, { out: join(dir, 'queued'), queue: url, threads: 1 });
      const local = await sweep(spec, { out: join(dir, 'local'), workers: 2, threads: 1 });
      assert.deepEqual([queued.counts.done, queued.counts.failed], [4, 0]);
      const row = (t: TrialRecord) => [t.id, t.metric, t.curve];
      assert.deepEqual(queued.trials.map(row), local.trials.map(row));
    } finally {
      await stopWorkers(workers);
    }
  });

  it('a worker killed with SIGKILL mid-trial: its trial goes back on the queue and the other worker finishes it', async () => {
    await redisCommand('FLUSHALL');
    const dir = temporary();
    const log = join(dir, 'runs.log');
    const spec = parseSweepSpec(plantedSpec(4, 2, 800, log), EXAMPLES);
    const [a, b] = await Promise.all([startWorker('wA', 2), startWorker('wB', 2)]);
    const out = join(dir, 'killed-worker');
    try {
      const running = sweep(spec, { out, queue: url });
      let killed: TrialRecord | undefined;
      await waitFor(async () => {
        killed = (await storedTrials(out)).find((t) => t.status === 'running' && t.worker === 'wA');
        return killed !== undefined;
      }, 30_000);
      // Mid-trial: its command has started (and logged its run) and sleeps 800 ms.
      await new Promise((resolve) => setTimeout(resolve, 300));
      a.process.kill('SIGKILL');
      const result = await running;
      assert.deepEqual(
        { ...result.counts },
        { pending: 0, running: 0, done: 8, failed: 0, duplicates: 0 },
      );
      assert.equal(new Set(result.trials.map((t) => `${t.configuration}/${t.seed}`)).size, 8);
      const again = result.trials.find((t) => t.id === killed!.id)!;
      assert.equal(again.worker, 'wB', 'the killed worker’s trial was finished by the other');
      // The killed run is the only one that ran twice (its command started, then again on wB).
      assert.equal(runsLogged(log), 9);
    } finally {
      await stopWorkers([a, b]);
    }
  });

  it('a coordinator killed with SIGKILL, then --resume: every trial once, the results that came in meanwhile read back', async () => {
    await redisCommand('FLUSHALL');
    const dir = temporary();
    const log = join(dir, 'runs.log');
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(plantedSpec(8, 2, 300, log)));
    const workers = await Promise.all([startWorker('wA', 5), startWorker('wB', 5)]);
    const out = join(dir, 'killed');
    try {
      const flags = ['--out', out, '--queue', url, '--quiet'];
      const coordinator = spawn(
        process.execPath,
        [BIN, 'sweep', join(dir, 'spec.json'), ...flags],
        { stdio: 'ignore' },
      );
      await waitFor(async () => (await storedTrials(out)).some((t) => t.status === 'done'), 30_000);
      coordinator.kill('SIGKILL');
      await new Promise((resolve) => coordinator.once('exit', resolve));
      const recordedBefore = (await storedTrials(out)).filter((t) => t.status === 'done').length;
      // The workers go on while no coordinator runs: wait until every trial has run.
      await waitFor(
        () => runsLogged(log) >= 16,
        30_000,
        () => `${runsLogged(log)} runs`,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok(recordedBefore < 16, `${recordedBefore} recorded before the kill`);

      const resumed = await teardown('sweep', join(dir, 'spec.json'), ...flags, '--resume');
      assert.equal(resumed.status, 0, resumed.stderr);
      const trials = await storedTrials(out);
      assert.equal(trials.length, 16);
      assert.ok(trials.every((t) => t.status === 'done'));
      assert.equal(new Set(trials.map((t) => `${t.configuration}/${t.seed}`)).size, 16);
      assert.equal(runsLogged(log), 16, 'no trial ran twice: the resume re-added nothing');
      const json = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
      assert.deepEqual(
        { ...json.counts },
        { pending: 0, running: 0, done: 16, failed: 0, duplicates: 0 },
      );
      // The metrics are the planted ones: a local sweep of the same spec gives them.
      const reference = await sweep(
        parseSweepSpec({ ...PLANTED, configurations: 8, seeds: 2 }, EXAMPLES),
        { out: join(dir, 'reference'), workers: 2 },
      );
      assert.deepEqual(
        trials.map((t) => t.metric),
        reference.trials.map((t) => t.metric),
      );
    } finally {
      await stopWorkers(workers);
    }
  });

  it('a late result (a worker paused past its heartbeat, its trial finished elsewhere) is discarded and counted', async () => {
    await redisCommand('FLUSHALL');
    const dir = temporary();
    const log = join(dir, 'runs.log');
    const spec = parseSweepSpec(plantedSpec(3, 2, 800, log), EXAMPLES);
    const [a, b] = await Promise.all([startWorker('wA', 2), startWorker('wB', 2)]);
    const out = join(dir, 'late');
    try {
      const running = sweep(spec, { out, queue: url });
      let paused: TrialRecord | undefined;
      await waitFor(async () => {
        paused = (await storedTrials(out)).find((t) => t.status === 'running' && t.worker === 'wA');
        return paused !== undefined;
      }, 30_000);
      a.process.kill('SIGSTOP');
      // wA's lock expires, wB's stalled check re-queues the trial, and wB runs it.
      await waitFor(
        async () =>
          (await storedTrials(out)).some((t) => t.id === paused!.id && t.status === 'done'),
        30_000,
      );
      a.process.kill('SIGCONT');
      const result = await running;
      await waitFor(() => a.output().includes('late'), 15_000, a.output);
      // The coordinator may have ended before the late result came: a --resume collects it.
      const resumed = await sweep(spec, { out, queue: url, resume: true });
      assert.equal(result.counts.done + result.counts.failed, 6);
      assert.deepEqual(
        { ...resumed.counts },
        { pending: 0, running: 0, done: 6, failed: 0, duplicates: 1 },
      );
      assert.equal(resumed.trials.find((t) => t.id === paused!.id)!.worker, 'wB');
      assert.equal(await redisCommand('LLEN', lateKey(await sweepKey(out))), 0);
    } finally {
      await stopWorkers([a, b]);
    }
  });

  it('an unreachable Redis, --workers with --queue, a URL that is not redis://: one message, exit 2, nothing written', async () => {
    const out = join(temporary(), 'none');
    const port = await freePort();
    const { status, stderr } = await teardown(
      'sweep',
      join(EXAMPLES, 'planted.json'),
      '--out',
      out,
      '--queue',
      `redis://127.0.0.1:${port}`,
    );
    assert.equal(status, 2, stderr);
    assert.match(stderr, /cannot reach Redis .*Start redis-server/);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.ok(!existsSync(out));
    const both = await teardown(
      'sweep',
      join(EXAMPLES, 'planted.json'),
      '--out',
      out,
      '--queue',
      url,
      '--workers',
      '2',
    );
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--workers sets the local pool, --queue sends/);
    assert.ok(!existsSync(out));
    const worker = await teardown('worker', '--queue', `http://127.0.0.1:${port}`);
    assert.equal(worker.status, 2);
    assert.match(worker.stderr, /is a http: URL: give redis:\/\/HOST:PORT/);
  });
});

/** The sweep's queue key, from its store. */
async function sweepKey(out: string): Promise<string> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(out, 'sweep.db'), { readonly: true });
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'queueKey'").get() as { value: string })
      .value;
  } finally {
    db.close();
  }
}
