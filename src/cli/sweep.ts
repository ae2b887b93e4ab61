/**
 * `teardown sweep SPEC.json --out DIR`: how fragile a training recipe is (src/sweep). Thin: reads
 * the flags, calls the library's sweep, prints the summary.
 */
import { Command } from 'commander';
import { InputError } from '../errors.ts';
import { jsonResult } from '../report/json.ts';
import { formatTable } from '../report/table.ts';
import { percent } from '../stats.ts';
import type { SweepAnalysis } from '../sweep/analysis.ts';
import type { SweepResult } from '../sweep/sweep.ts';
import { print } from './io.ts';
import {
  cliProgress,
  emitJson,
  numberOption,
  routeOutput,
  smokeMode,
  smokeOption,
  withCommonOptions,
} from './options.ts';

export function sweepCommand(): Command {
  return withCommonOptions(
    new Command('sweep')
      .description(
        'Measure how fragile a training recipe is: run every configuration × seed of SPEC.json ' +
          '(teardown training or your own command), store each trial in DIR/sweep.db, and report ' +
          'the success rate, the seed spread, the variance decomposition, parameter importance ' +
          'and the working ranges (DIR/sweep.json).',
      )
      .argument(
        '<spec.json>',
        'the sweep spec (docs/sweep.md): parameters, sampler, configurations, seeds, metric, ' +
          'direction, success, and train or command',
      )
      .option(
        '--out <dir>',
        'the sweep folder: sweep.db (every trial, readable while the sweep runs) and sweep.json',
      )
      .addOption(
        numberOption(
          '--workers <n>',
          'worker processes, one trial each at a time (default: one per core)',
          'positive integer',
        ),
      )
      .option(
        '--resume',
        'continue the sweep in --out: trials already finished are kept, the others run',
      )
      .option(
        '--queue <redis://host:port>',
        'run the trials through a BullMQ queue in Redis on `teardown worker` processes (any ' +
          'number, on any machine) instead of local workers; this process keeps the store',
      )
      .option('--report <dir>', 'also write an HTML report with charts to DIR/index.html')
      .addOption(smokeOption()),
    'write the analysis as JSON (the same as DIR/sweep.json, with provenance)',
  )
    .addHelpText(
      'after',
      `
A trial is teardown's own training ("train": a training spec with {placeholders}) or your command
("command": "python3 train.py --lr {lr} --seed {seed}", or an argv array) whose last line of
standard output is a JSON object holding the metric. Failed trials (non-zero exit, NaN, timeout)
are recorded with the end of their standard error. --threads sets each training trial's
onnxruntime threads (default 1 in a sweep: the pool runs one trial per worker).

Distributed: teardown sweep SPEC.json --out DIR --queue redis://HOST:PORT puts the trials on a
queue in Redis; start 'teardown worker --queue redis://HOST:PORT' on each machine (a command
trial runs in its spec's cwd, which must exist there too). A worker killed mid-trial has its
trial re-queued (docs/sweep.md, heartbeats); a coordinator stopped at any moment continues with
--resume, reading back the results that came in meanwhile.

Examples:
  teardown sweep examples/sweep/planted.json --out planted-sweep --workers 2
  teardown sweep examples/sweep/mnist-lr.json --out mnist-lr-sweep --report mnist-lr-report
  teardown sweep examples/sweep/mnist-lr.json --out mnist-lr-sweep --resume
(--smoke, or TEARDOWN_SMOKE=1: training trials take 5 steps.)`,
    )
    .action(async (specPath: string, options) => {
      routeOutput(options);
      if (!options.out)
        throw new InputError(
          'Give --out DIR: the folder the sweep keeps its trials and results in.',
        );
      if (options.queue && options.workers !== undefined)
        throw new InputError(
          '--workers sets the local pool, --queue sends the trials to `teardown worker` ' +
            'processes instead: give one of them (start as many workers as you want).',
        );
      const { readSweepSpec } = await import('../sweep/spec.ts');
      const { sweep, sweepResultBody } = await import('../sweep/sweep.ts');
      const spec = readSweepSpec(specPath);
      const result = await sweep(spec, {
        out: options.out,
        workers: options.workers,
        resume: options.resume === true,
        smoke: smokeMode(options),
        threads: options.threads ?? 1,
        queue: options.queue,
        onProgress: cliProgress(options),
      });
      printSummary(result, spec.sampler);
      if (options.report) {
        const { writeSweepReport } = await import('../report/sweep-html.ts');
        const path = await writeSweepReport(options.report, {
          analysis: result.analysis,
          trials: result.trials,
          parameters: spec.parameters.map((p) => p.name),
          logParameters: spec.parameters.filter((p) => p.kind === 'log').map((p) => p.name),
        });
        print(`Report: ${path}`);
      }
      if (options.json)
        emitJson(
          options.json,
          jsonResult(
            'sweep',
            { threads: options.threads ?? 1, seeds: { sampler: spec.samplerSeed } },
            sweepResultBody(spec, result),
          ),
        );
    });
}

function printSummary(result: SweepResult, sampler: string): void {
  const { analysis, counts } = result;
  const configurations = analysis.configurations.length;
  const seeds = configurations > 0 ? result.trials.length / configurations : 0;
  print(
    `Sweep in ${result.dir}: ${configurations} configurations (${sampler}) × ${seeds} seeds, ` +
      `${counts.done} trials done, ${counts.failed} failed` +
      (result.requeued ? `, ${result.requeued} re-run after an interrupted run` : '') +
      (counts.duplicates ? `, ${counts.duplicates} late duplicate results discarded` : '') +
      '.',
  );
  const s = analysis.success;
  print(
    `Success (${analysis.metric} ${analysis.direction === 'maximize' ? '≥' : '≤'} ` +
      `${analysis.threshold}): ${percent(s.rate)} of ${s.trials} trials ` +
      `[95% ${percent(s.low)}, ${percent(s.high)}].`,
  );
  if (analysis.variance) {
    const v = analysis.variance;
    print(
      `Variance of ${analysis.metric}: hyperparameters ${percent(v.params, 0)}, ` +
        `seeds ${percent(v.seed, 0)}, seed × configuration ${percent(v.interaction, 0)} ` +
        `(over the ${v.configurations} configurations with every seed done).`,
    );
  }
  printImportance(analysis);
  printKnifeEdges(analysis);
  printBest(analysis);
  const failed = result.trials.find((t) => t.status === 'failed');
  if (failed)
    print(
      `First failed trial (#${failed.id}, seed ${failed.seed}, ${JSON.stringify(failed.params)}): ` +
        `${failed.error?.split('\n').slice(0, 4).join(' | ')}`,
    );
  print(`Every trial: ${result.dir}/sweep.db (SQLite); the analysis: ${result.dir}/sweep.json.`);
}

function printImportance(analysis: SweepAnalysis): void {
  if (analysis.importance.length === 0) return;
  const params = [...new Set(analysis.importance.map((row) => row.param))];
  const cell = (param: string, method: string) => {
    const row = analysis.importance.find((r) => r.param === param && r.method === method)!;
    return `${percent(row.share, 0)} [${percent(row.low, 0)}, ${percent(row.high, 0)}]`;
  };
  print('\nImportance (share of the effect on the mean metric; 95% bootstrap intervals):');
  print(
    formatTable(
      ['parameter', 'fANOVA', 'PED-ANOVA (top 10%)'],
      params.map((p) => [p, cell(p, 'fanova'), cell(p, 'ped-anova')]),
    ),
  );
  if (analysis.interactions !== null)
    print(
      `fANOVA: ${percent(analysis.interactions, 0)} of the variance is in interactions between parameters.`,
    );
}

function printKnifeEdges(analysis: SweepAnalysis): void {
  print('\nWorking range (bins where ≥ 50% of trials succeed):');
  print(
    formatTable(
      ['parameter', 'from', 'to', 'share of the searched range'],
      analysis.knifeEdges.map((edge) => [
        edge.param,
        edge.low === null ? '-' : format(edge.low),
        edge.high === null ? '-' : format(edge.high),
        `${percent(edge.width, 0)}${edge.runs > 1 ? ` (${edge.runs} separate ranges)` : ''}`,
      ]),
    ),
  );
}

function printBest(analysis: SweepAnalysis): void {
  const ranked = analysis.configurations
    .filter((c) => c.mean !== undefined)
    .sort((a, b) => (analysis.direction === 'maximize' ? b.mean! - a.mean! : a.mean! - b.mean!))
    .slice(0, 5);
  if (ranked.length === 0) return;
  print(`\nBest configurations (${analysis.metric} over seeds):`);
  print(
    formatTable(
      ['#', 'parameters', 'mean [95%]', 'std', 'range', 'success'],
      ranked.map((c) => [
        String(c.configuration),
        Object.entries(c.params)
          .map(([k, v]) => `${k}=${format(v)}`)
          .join(' '),
        `${format(c.mean!)} [${format(c.meanLow!)}, ${format(c.meanHigh!)}]`,
        format(c.std!),
        format(c.range!),
        `${c.successes}/${c.trials}`,
      ]),
    ),
  );
}

function format(value: number | string | boolean): string {
  return typeof value === 'number' ? Number(value.toPrecision(4)).toString() : String(value);
}
