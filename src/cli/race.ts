/**
 * `teardown race --task TASK`: learners that do and do not use backprop on one task, the same
 * rows, clock and audit for each (src/race). Thin: reads the flags, builds the task's split
 * (race/race-task.ts), calls the library's race, prints the table, writes the JSON and report.
 */
import { Command, Option } from 'commander';
import { InputError } from '../errors.ts';
import type { ContenderResult } from '../race/race.ts';
import type { ContenderScore, Scorecard } from '../race/scorecard.ts';
import type { RaceTask } from '../race/race-task.ts';
import { jsonResult } from '../report/json.ts';
import { currentIo, print } from './io.ts';
import {
  cliProgress,
  collect,
  emitJson,
  numberOption,
  parseNumber,
  routeOutput,
  runtimeOptions,
  smokeMode,
  smokeOption,
  withCommonOptions,
} from './options.ts';

/** The demo's question in under three minutes on two cores (docs/race.md, "Defaults"). */
const DEFAULT_CONTENDERS = 'knn,logistic,gbt,dfa,ff,es,mlp,cnn';
const DEFAULT_BUDGET_SECONDS = 20;
/** More seeds than this is a typo, not a race (each is another budget per contender). */
const MAX_SEEDS = 1000;
/** A smoke run: each set's first rows, and a budget of a second (or a contender's minimum). */
const SMOKE_ROWS = 200;
const SMOKE_BUDGET_SECONDS = 1;

export function raceCommand(): Command {
  return withCommonOptions(
    new Command('race')
      .description(
        'Race learners that do and do not use backprop on one task: the same training, test ' +
          'and shifted rows, the same budget and the same audit for each; prints a scorecard ' +
          '(accuracy in distribution and shifted, time, size, shortcut reliance, calibration).',
      )
      .requiredOption(
        '--task <task>',
        'mnist, colored-mnist, modular-addition, csv:FILE (with --label-column) or ' +
          'npy:INPUTS.npy,LABELS.npy',
      )
      .option('--label-column <name>', 'csv: tasks: the label column')
      .option(
        '--attribute <name=file.npy|column>',
        'csv: and npy: tasks: a per-example attribute the audit groups by and tests reliance ' +
          'on (a table column gets its own counterfactual); repeatable',
        collect,
      )
      .option(
        '--counterfactual <name:transform>',
        "an attribute's counterfactual for the audit (e.g. color:channel-swap for an image " +
          "attribute given as a file); colored-mnist's is built in; repeatable",
        collect,
      )
      .option(
        '--shifted <file>',
        'csv: and npy: tasks: a shifted (deployment) set in the same format: FILE.csv, or ' +
          'INPUTS.npy,LABELS.npy (colored-mnist has its own; mnist and modular-addition none)',
      )
      .option(
        '--contenders <list>',
        'comma-separated contenders (docs/race.md lists them)',
        DEFAULT_CONTENDERS,
      )
      .addOption(
        numberOption('--seeds <n>', 'training seeds per contender: 1..N', 'positive integer', 1),
      )
      .addOption(
        new Option(
          '--fractions <list>',
          'shares of the training rows to train on, each in (0, 1]: data efficiency',
        )
          .argParser(parseFractions)
          .default([1], '1'),
      )
      .addOption(
        numberOption(
          '--budget <seconds>',
          'training seconds per contender and seed',
          'number',
          DEFAULT_BUDGET_SECONDS,
        ),
      )
      .addOption(
        numberOption(
          '--data-seed <n>',
          'seed of the train/test/shifted split and the data noise (saved in --json)',
          'integer',
          0,
        ),
      )
      .addOption(
        new Option(
          '--rank-by <accuracy>',
          'order of the table: in-distribution or shifted accuracy',
        )
          .choices(['in', 'shifted'])
          .default('in'),
      )
      .option('--report <dir>', 'also write an HTML report with charts to DIR/index.html')
      .addOption(smokeOption()),
    'write the scorecard, the split and every run as JSON (docs/race.md)',
  )
    .addHelpText(
      'after',
      `
Every contender trains on the same rows (fixed by --data-seed) within --budget seconds per seed,
and is measured by the same code: accuracy in distribution and on the shifted set, training and
prediction time, size, the smallest faithful description, and the audit on the test rows
(calibration, worst group, the flip rate of each counterfactual). A contender that fails is
reported with its reason; the race goes on. With the defaults, 'teardown race --task
colored-mnist' asks whether any learner avoids the colour shortcut backprop takes (docs/race.md).

Examples:
  teardown race --task colored-mnist --contenders knn,logistic,dfa,ff --report race-report
  teardown race --task mnist --contenders knn,logistic --seeds 2 --fractions 0.3,1 --budget 20 --json race.json
  teardown race --task csv:test/fixtures/foreign-shortcut/train.csv --label-column label --attribute shortcut \\
    --shifted test/fixtures/foreign-shortcut/shifted.csv --contenders knn,logistic --budget 2
(--smoke, or TEARDOWN_SMOKE=1: each set's first ${SMOKE_ROWS} rows; a budget of ${SMOKE_BUDGET_SECONDS} s, or the largest
minimum of the contenders named.)`,
    )
    .action(async (options) => {
      routeOutput(options);
      const runtime = runtimeOptions(options);
      const { contendersNamed } = await import('../race/contenders.ts');
      const contenders = contendersNamed(options.contenders);
      const seeds = seedList(options.seeds);
      const smoke = smokeMode(options);
      const { checkBudget, race } = await import('../race/race.ts');
      if (!smoke) checkBudget(contenders, options.budget);
      const { raceTask, firstRowsOfTask } = await import('../race/race-task.ts');
      const loaded = raceTask(options.task, {
        dataSeed: options.dataSeed,
        labelColumn: options.labelColumn,
        attributes: options.attribute,
        shifted: options.shifted,
        counterfactuals: options.counterfactual,
      });
      if (options.rankBy === 'shifted' && !loaded.split.shifted) refuseShiftedRank(loaded);
      const task = smoke ? firstRowsOfTask(loaded, SMOKE_ROWS) : loaded;
      const budgetSeconds = smoke
        ? Math.max(SMOKE_BUDGET_SECONDS, ...contenders.map((c) => c.minimumBudgetSeconds ?? 0))
        : options.budget;
      printStart(task, contenders.length, seeds.length, budgetSeconds);
      const results = await race(contenders, task.split, {
        seeds,
        budgetSeconds,
        fractions: options.fractions,
        threads: runtime.threads,
        audit: task.audit,
        onProgress: cliProgress(options),
      });
      await writeOutputs(options, task, results, {
        seeds,
        budgetSeconds,
        threads: runtime.threads,
      });
    });
}

/** The scorecard on standard output, the report to --report DIR, the JSON to --json. */
async function writeOutputs(
  options: {
    fractions: number[];
    rankBy: 'in' | 'shifted';
    report?: string;
    json?: string;
    dataSeed: number;
  },
  task: RaceTask,
  results: ContenderResult[],
  settings: { seeds: number[]; budgetSeconds: number; threads?: number },
): Promise<void> {
  const { seeds, budgetSeconds, threads } = settings;
  const { scorecard } = await import('../race/scorecard.ts');
  const card = scorecard(results, {
    task: task.name,
    seeds,
    fractions: options.fractions,
    budgetSeconds,
    split: task.record,
    shortcutAttribute: task.shortcutAttribute,
    classes: task.classes,
  });
  const { formatRaceTable } = await import('../report/race-table.ts');
  print(`\n${formatRaceTable(rankedBy(card, options.rankBy), terminalColumns())}`);
  if (options.report) {
    const { writeRaceReport } = await import('../report/race-html.ts');
    print(`\nReport: ${await writeRaceReport(options.report, { scorecard: card })}`);
  }
  if (options.json)
    emitJson(
      options.json,
      jsonResult(
        'race',
        { threads, seeds: { data: options.dataSeed } },
        { ...card, description: task.description, results },
      ),
    );
}

/** Seeds 1 … count. */
function seedList(count: number): number[] {
  if (count > MAX_SEEDS)
    throw new InputError(
      `--seeds expects at most ${MAX_SEEDS} (each seed trains every contender once more), ` +
        `got ${count}.`,
    );
  return Array.from({ length: count }, (_, i) => i + 1);
}

/** '0.1,0.3,1' as numbers, each in (0, 1]. */
function parseFractions(text: string): number[] {
  const fractions = text.split(',').map((part) => parseNumber(part.trim(), '--fractions'));
  const bad = fractions.find((fraction) => !(fraction > 0 && fraction <= 1));
  if (bad !== undefined)
    throw new InputError(
      `--fractions expects shares of the training rows in (0, 1], e.g. 0.1,0.3,1; got ${bad} in '${text}'.`,
    );
  return fractions;
}

function refuseShiftedRank(task: RaceTask): never {
  throw new InputError(
    `--rank-by shifted needs a shifted set, and task '${task.name}' has none: give a csv: or ` +
      'npy: task with --shifted FILE, or colored-mnist (its test environment), or --rank-by in.',
  );
}

function printStart(task: RaceTask, contenders: number, seeds: number, budget: number): void {
  const { train, test, shifted } = task.record;
  print(`Task: ${task.description.replace(/\.$/, '')}.`);
  print(
    `Rows: ${train} training, ${test} test in distribution` +
      (shifted ? `, ${shifted} shifted` : ', no shifted set') +
      ` (${task.record.method}; data seed ${task.record.seed}).`,
  );
  print(
    `${contenders} contenders × ${seeds} seed(s), ${budget} s of training each; then the audit ` +
      'on the test rows.',
  );
}

/** The scorecard's contenders by in-distribution or shifted accuracy, best first. */
function rankedBy(card: Scorecard, rank: 'in' | 'shifted'): Scorecard {
  const score = (c: ContenderScore) => (rank === 'in' ? c.accuracy?.in : c.accuracy?.shifted) ?? -1;
  return { ...card, contenders: [...card.contenders].sort((a, b) => score(b) - score(a)) };
}

/** The width tables wrap to: standard output's, when it is a terminal. */
function terminalColumns(): number | undefined {
  const { stdout } = currentIo();
  return stdout.isTTY && stdout.columns ? stdout.columns : undefined;
}
