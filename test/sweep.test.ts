/**
 * `teardown sweep` end to end, with the real pieces: worker processes, the SQLite store, external
 * commands and teardown's own training. The "training" of the command trials is
 * examples/sweep/planted-trial.mjs, whose metric is planted: 3x + 0.5y + 0z, plus 0.1·(seed − 2)
 * alike in every configuration, plus ±0.05 of noise per configuration and seed, so the analysis
 * has a known truth.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.ts';
import { train } from '../src/api/train.ts';
import { planConfigurations } from '../src/sweep/plan.ts';
import { parseSweepSpec, readSweepSpec } from '../src/sweep/spec.ts';
import { SweepStore } from '../src/sweep/store.ts';
import { sweep, type SweepStatus } from '../src/sweep/sweep.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const EXAMPLES = join(ROOT, 'examples/sweep');
const BIN = join(ROOT, 'bin/teardown.js');
const temporary = () => mkdtempSync(join(tmpdir(), 'teardown-sweep-'));

/** The sample variance (n − 1) of some numbers. */
function sampleVariance(values: number[]): number {
  const m = values.reduce((s, x) => s + x, 0) / values.length;
  return values.reduce((s, x) => s + (x - m) ** 2, 0) / (values.length - 1);
}

/** `teardown ...args` in this process; its exit status and what it wrote. */
async function teardown(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { status, stdout, stderr };
}

describe('teardown sweep: external command trials (planted metric)', () => {
  it('runs 16 configurations × 3 seeds on 2 workers; the analysis finds the planted truth', async () => {
    const spec = readSweepSpec(join(EXAMPLES, 'planted.json'));
    const out = join(temporary(), 'planted');
    let readWhileRunning: number | undefined;
    const updates: SweepStatus[] = [];
    const result = await sweep(spec, {
      out,
      workers: 2,
      onUpdate: (status) => {
        updates.push(status);
        // Another process reads the store while the sweep writes it (WAL).
        if (readWhileRunning === undefined && status.done >= 10 && status.pending > 0) {
          const reader = spawnSync(
            process.execPath,
            [
              '-e',
              `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(join(out, 'sweep.db'))}, { readonly: true }); console.log(db.prepare("SELECT COUNT(*) AS n FROM trials WHERE status = 'done'").get().n)`,
            ],
            { cwd: ROOT, encoding: 'utf8' },
          );
          readWhileRunning = Number(reader.stdout.trim());
        }
      },
    });
    assert.deepEqual(
      { ...result.counts },
      { pending: 0, running: 0, done: 48, failed: 0, duplicates: 0 },
    );
    assert.ok(
      readWhileRunning !== undefined && readWhileRunning >= 10 && readWhileRunning < 48,
      `read ${readWhileRunning} done trials mid-sweep`,
    );
    assert.equal(new Set(result.trials.map((t) => `${t.configuration}/${t.seed}`)).size, 48);
    // Progress: counts always add up, at most 2 running, the best so far ends as the analysis' best.
    for (const u of updates) assert.equal(u.done + u.failed + u.running + u.pending, 48);
    assert.ok(updates.every((u) => u.running <= 2) && updates.some((u) => u.running === 2));
    assert.equal(updates.at(-1)!.done, 48);
    assert.equal(updates.at(-1)!.secondsLeft, 0);
    assert.ok(updates.filter((u) => u.done > 0).every((u) => Number.isFinite(u.secondsLeft)));
    assert.equal(updates.at(-1)!.best!.configuration, result.analysis.best!.configuration);
    assert.ok(Math.abs(updates.at(-1)!.best!.mean - result.analysis.best!.mean) < 1e-12);
    assert.deepEqual([...new Set(result.trials.map((t) => t.worker))].sort(), [
      'local-1',
      'local-2',
    ]);

    // Variance components against the planted ones: the configurations' own spread of 3x + 0.5y,
    // the seeds' shifts −0.2, −0.1, 0 (sample variance 0.01), the noise 0.1·U(−½, ½) (0.01/12).
    const { variance } = result.analysis;
    const planted = planConfigurations(spec).map(
      (c) => 3 * (c.params.x as number) + 0.5 * (c.params.y as number),
    );
    assert.ok(
      Math.abs(variance!.components.params / sampleVariance(planted) - 1) < 0.02,
      `params ${variance!.components.params} vs ${sampleVariance(planted)}`,
    );
    assert.ok(
      Math.abs(variance!.components.seed / 0.01 - 1) < 0.2,
      `seed ${variance!.components.seed}`,
    );
    const noise = 0.01 / 12;
    assert.ok(
      variance!.components.interaction > 0.4 * noise &&
        variance!.components.interaction < 1.6 * noise,
      `interaction ${variance!.components.interaction}`,
    );

    // Importance: x first for both methods (16 configurations are too few to order y and z reliably;
    // src/sweep/importance.test.ts checks x ≫ y ≫ z on 256 and 512).
    for (const method of ['fanova', 'ped-anova']) {
      const rows = result.analysis.importance
        .filter((row) => row.method === method)
        .sort((a, b) => b.share - a.share);
      assert.equal(rows[0].param, 'x', method);
      assert.ok(rows[0].share > 0.6, `${method} x ${rows[0].share}`);
    }
    // Success (metric ≥ 2) needs x ≳ 0.5–0.75 whatever y and the seed: the working range of x is its top.
    const x = result.analysis.knifeEdges.find((edge) => edge.param === 'x')!;
    assert.equal(x.high, 1);
    assert.ok((x.low as number) >= 0.5 && (x.low as number) <= 0.75, `x works from ${x.low}`);
    const successes = result.trials.filter((t) => t.metric! >= 2).length;
    assert.equal(result.analysis.success.successes, successes);
    assert.ok(
      result.analysis.success.low < successes / 48 && successes / 48 < result.analysis.success.high,
    );

    const json = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
    assert.equal(json.trials.length, 48);
    assert.deepEqual(Object.keys(json.trials[0]).slice(0, 8), [
      'id',
      'configuration',
      'params',
      'seed',
      'status',
      'metric',
      'seconds',
      'worker',
    ]);
    assert.deepEqual(Object.keys(json.variance).slice(0, 3), ['params', 'seed', 'interaction']);
    // The rest of the names issue 15 gives the JSON (docs/json.md, teardown sweep).
    assert.deepEqual(Object.keys(json.importance[0]), ['param', 'method', 'share', 'low', 'high']);
    assert.deepEqual(
      [...new Set(json.importance.map((row: { method: string }) => row.method))].sort(),
      ['fanova', 'ped-anova'],
    );
    for (const key of ['rate', 'low', 'high']) assert.equal(typeof json.success[key], 'number');
    assert.deepEqual(Object.keys(json.knifeEdges[0]).slice(0, 4), [
      'param',
      'low',
      'high',
      'width',
    ]);
    assert.deepEqual(
      json.knifeEdges.map((edge: { param: string }) => edge.param),
      ['x', 'y', 'z'],
    );
  });

  it('records failed trials (non-zero exit, NaN, timeout) with the end of standard error, and goes on', async () => {
    const spec = parseSweepSpec(
      {
        parameters: { mode: { values: ['ok', 'crash', 'nan', 'hang'] } },
        sampler: 'grid',
        seeds: 1,
        metric: 'metric',
        success: 0,
        timeout: 1.5,
        command: ['node', 'planted-trial.mjs', 'x=0.5', 'mode={mode}', 'seed={seed}'],
      },
      EXAMPLES,
    );
    const result = await sweep(spec, { out: join(temporary(), 'failures'), workers: 2 });
    const byMode = Object.fromEntries(result.trials.map((t) => [t.params.mode, t]));
    assert.equal(byMode.ok.status, 'done');
    assert.match(
      byMode.crash.error!,
      /exit status 3; standard error ends:\nTraceback[\s\S]*planted crash/,
    );
    assert.match(byMode.nan.error!, /metric 'metric' is null, not a finite number/);
    assert.match(byMode.hang.error!, /timed out after 1.5 s/);
    assert.deepEqual([result.counts.done, result.counts.failed], [1, 3]);
    assert.deepEqual([result.analysis.success.successes, result.analysis.success.trials], [1, 4]);
  });
});

describe('teardown sweep: worker processes and cancellation', () => {
  it('a worker process that dies mid-trial fails that trial only; a new worker takes the rest', async () => {
    // The command's parent is the worker process itself (argv form, no shell in between).
    const spec = parseSweepSpec(
      {
        parameters: { mode: { values: ['ok', 'kill-worker'] } },
        sampler: 'grid',
        seeds: 2,
        metric: 'metric',
        success: 0,
        command: [
          'sh',
          '-c',
          'if [ {mode} = kill-worker ]; then kill -9 $PPID; sleep 5; fi; echo \'{"metric": 1}\'',
        ],
      },
      EXAMPLES,
    );
    const result = await sweep(spec, { out: join(temporary(), 'dying'), workers: 1 });
    assert.deepEqual([result.counts.done, result.counts.failed], [2, 2]);
    for (const trial of result.trials.filter((t) => t.params.mode === 'kill-worker')) {
      assert.match(trial.error!, /the worker process died \(killed by SIGKILL\)/);
    }
    assert.ok(new Set(result.trials.map((t) => t.worker)).size >= 2, 'a new worker was started');
  });

  it('an AbortSignal stops the sweep: finished trials stay, the ones in flight go back to pending, resume completes', async () => {
    const dir = temporary();
    const spec = parseSweepSpec(
      {
        ...JSON.parse(readFileSync(join(EXAMPLES, 'planted.json'), 'utf8')),
        configurations: 4,
        seeds: 2,
        command: 'node planted-trial.mjs x={x} y={y} z={z} seed={seed} sleep=200',
      },
      EXAMPLES,
    );
    const controller = new AbortController();
    const out = join(dir, 'aborted');
    await assert.rejects(
      sweep(spec, {
        out,
        workers: 2,
        signal: controller.signal,
        onUpdate: (status) => {
          if (status.done >= 3) controller.abort();
        },
      }),
      (error: unknown) => (error as Error).name === 'AbortError',
    );
    const store = await SweepStore.read(out);
    const counts = store.counts();
    store.close();
    assert.equal(counts.running, 0);
    assert.ok(
      counts.done >= 3 && counts.done < 8 && counts.pending === 8 - counts.done,
      JSON.stringify(counts),
    );
    const resumed = await sweep(spec, { out, workers: 2, resume: true });
    assert.deepEqual([resumed.counts.done, resumed.requeued], [8, 0]);
  });
});

describe('teardown sweep: a coordinator killed mid-sweep, then --resume', () => {
  it('loses and duplicates nothing: every configuration × seed once, with the results of an uninterrupted sweep', async () => {
    const dir = temporary();
    const log = join(dir, 'runs.log');
    const spec = {
      ...JSON.parse(readFileSync(join(EXAMPLES, 'planted.json'), 'utf8')),
      configurations: 8,
      seeds: 2,
      cwd: EXAMPLES,
      command: `node planted-trial.mjs x={x} y={y} z={z} seed={seed} sleep=300 log=${log}`,
    };
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    const out = join(dir, 'killed');
    const coordinator = spawn(
      process.execPath,
      [BIN, 'sweep', join(dir, 'spec.json'), '--out', out, '--workers', '2', '--quiet'],
      { stdio: 'ignore' },
    );
    const finished = await waitForDone(out, 4, 60_000);
    coordinator.kill('SIGKILL');
    await new Promise((resolve) => coordinator.once('exit', resolve));
    assert.ok(finished >= 4 && finished < 16, `${finished} trials done when killed`);

    const again = await teardown('sweep', join(dir, 'spec.json'), '--out', out, '--workers', '2');
    assert.equal(again.status, 2, 'an existing sweep without --resume is refused');
    assert.match(again.stderr, /already holds a sweep.*--resume/);
    const resumed = await teardown(
      'sweep',
      join(dir, 'spec.json'),
      '--out',
      out,
      '--workers',
      '2',
      '--resume',
      '--quiet',
    );
    assert.equal(resumed.status, 0, resumed.stderr);

    const store = await SweepStore.read(out);
    const trials = store.trials();
    store.close();
    assert.equal(trials.length, 16);
    assert.ok(trials.every((t) => t.status === 'done'));
    assert.equal(new Set(trials.map((t) => `${t.configuration}/${t.seed}`)).size, 16);
    const runs = readFileSync(log, 'utf8').trim().split('\n').length;
    assert.ok(
      runs >= 16 && runs <= 16 + 2,
      `${runs} runs of the command (the killed run's 2 in flight ran again)`,
    );

    const reference = await sweep(
      parseSweepSpec(
        { ...spec, command: spec.command.replace(/ sleep=300 log=\S+/, '') },
        EXAMPLES,
      ),
      { out: join(dir, 'reference'), workers: 2 },
    );
    assert.deepEqual(
      trials.map((t) => t.metric),
      reference.trials.map((t) => t.metric),
    );

    const changed = await teardown(
      'sweep',
      join(EXAMPLES, 'planted.json'),
      '--out',
      out,
      '--resume',
    );
    assert.equal(changed.status, 2);
    assert.match(changed.stderr, /another spec \(field '\w+' differs\)/);
  });
});

/** Polls the store (read-only) until `count` trials are done; returns how many were. */
async function waitForDone(out: string, count: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      const store = await SweepStore.read(out);
      const done = store.counts().done;
      store.close();
      if (done >= count) return done;
    } catch {
      // Not created yet.
    }
  }
  throw new Error(`fewer than ${count} trials done after ${timeoutMs} ms`);
}

describe('teardown sweep: teardown training trials', () => {
  it('trains a tiny MLP per trial; each result equals the same training run through the library', async () => {
    const spec = parseSweepSpec({
      parameters: { lr: { values: [0.01, 0.1] } },
      sampler: 'grid',
      seeds: 2,
      metric: 'testAccuracy',
      success: 0.3,
      train: {
        task: 'mnist',
        model: 'mlp:hidden=8',
        optimizer: { kind: 'sgd', momentum: 0.9 },
        steps: 6,
        evalEvery: 3,
      },
    });
    const result = await sweep(spec, { out: join(temporary(), 'train'), workers: 2 });
    assert.deepEqual([result.counts.done, result.counts.failed], [4, 0]);
    const trial = result.trials.find((t) => t.params.lr === 0.1 && t.seed === 1)!;
    const direct = await train(
      {
        task: 'mnist',
        model: 'mlp:hidden=8',
        optimizer: { kind: 'sgd', momentum: 0.9 },
        steps: 6,
        evalEvery: 3,
        lr: 0.1,
        seed: 1,
      },
      { threads: 1 },
    );
    assert.equal(trial.metric, direct.final.testAccuracy);
    assert.deepEqual(
      trial.curve,
      direct.curve.map((p) => [p.step, p.testAccuracy]),
    );
    const band = result.analysis.configurations[1].curve!;
    assert.deepEqual(
      band.map((p) => p.step),
      [3, 6],
    );
    assert.ok(band.every((p) => p.min <= p.median && p.median <= p.max));
  });
});

describe('teardown sweep: refusals (exit 2, one message naming the field)', () => {
  const write = (spec: object) => {
    const path = join(temporary(), 'spec.json');
    writeFileSync(path, JSON.stringify(spec));
    return path;
  };
  const planted = JSON.parse(readFileSync(join(EXAMPLES, 'planted.json'), 'utf8'));

  for (const [what, spec, message] of [
    [
      'a malformed parameter',
      { ...planted, parameters: { ...planted.parameters, x: { log: [0, 1] } } },
      /field 'parameters\.x\.log': a log range needs low > 0/,
    ],
    [
      'an unknown placeholder',
      { ...planted, command: `${planted.command} w={w}` },
      /'\{w\}', which is not a parameter/,
    ],
    [
      'a training field that is wrong',
      {
        ...planted,
        command: undefined,
        parameters: { hidden: { int: [8, 16] } },
        metric: 'testAccuracy',
        train: { task: 'mnist', model: 'mlp:hidden={hidden}', steps: 0 },
      },
      /Sweep spec field 'train' \(configuration 0\): --steps must be a positive integer, got 0/,
    ],
    [
      'a metric training does not measure',
      {
        ...planted,
        command: undefined,
        parameters: { lr: { log: [0.01, 0.1] } },
        train: { task: 'mnist', model: 'mlp:hidden=8', steps: 5 },
      },
      /'metric' is 'metric': a training trial measures one of/,
    ],
  ] as const) {
    it(what, async () => {
      const { status, stderr } = await teardown(
        'sweep',
        write(spec),
        '--out',
        join(temporary(), 'out'),
      );
      assert.equal(status, 2, stderr);
      assert.match(stderr, message);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
    });
  }

  it('JSON that does not parse', async () => {
    const path = join(temporary(), 'broken.json');
    writeFileSync(path, '{"parameters": ');
    const { status, stderr } = await teardown('sweep', path, '--out', join(temporary(), 'out'));
    assert.equal(status, 2);
    assert.match(stderr, /is not JSON/);
  });
});

describe('teardown sweep: lazy native modules', () => {
  it("import 'backprop-teardown' (src/index.ts, sweep exported) loads neither better-sqlite3 nor bullmq", () => {
    const script = `await import(${JSON.stringify(join(ROOT, 'src/index.ts'))});
      const { createRequire } = await import('node:module');
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify(loaded.filter((path) => /better-sqlite3|bullmq|ioredis/.test(path))));`;
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT, encoding: 'utf8' },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').at(-1)!), []);
  });
});

describe('teardown sweep: HTML report', () => {
  it('renders the five charts as inline SVG and escapes values from the spec', async () => {
    const { analyzeSweep } = await import('../src/sweep/analysis.ts');
    const { renderSweepReport } = await import('../src/report/sweep-html.ts');
    const spec = parseSweepSpec({
      parameters: {
        lr: { log: [0.001, 1] },
        act: { values: ['relu', '<img src=x onerror=alert(1)>'] },
      },
      sampler: 'grid',
      levels: 3,
      seeds: 3,
      metric: 'acc',
      success: 0.5,
      command: 'train {lr} {act} {seed}',
    });
    const configurations = planConfigurations(spec);
    const trials = configurations.flatMap((c) =>
      [0, 1, 2].map((seed) => ({
        id: c.index * 3 + seed + 1,
        configuration: c.index,
        seed,
        params: c.params,
        status: 'done' as const,
        metric: (c.params.lr as number) > 0.01 ? 0.8 + 0.01 * seed : 0.2,
        seconds: 1,
        worker: 'w',
        error: null,
        curve: [
          [10, 0.1],
          [20, 0.2 + 0.01 * seed],
        ] as [number, number][],
      })),
    );
    const analysis = analyzeSweep(spec, configurations, trials);
    const band = analysis.configurations[0].curve!;
    assert.deepEqual(
      band.map((p) => p.step),
      [10, 20],
    );
    assert.deepEqual([band[1].min, band[1].max], [0.2, 0.22]);
    assert.ok(Math.abs(band[1].median - 0.21) < 1e-12, 'the median of 3 seeds');
    const html = await renderSweepReport({
      analysis,
      trials,
      parameters: ['lr', 'act'],
      logParameters: ['lr'],
    });
    assert.equal(html.match(/<svg/g)?.length, 5);
    assert.ok(!html.includes('<img src=x'), 'a value from the spec is escaped');
    // Three bins of the log range: the grid's 0.0316 and 1 work, so the range is the upper two bins.
    assert.match(html, /lr works from 0\.01 to 1 \(67% of the range\)/);
  });
});
