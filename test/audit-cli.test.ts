/**
 * `teardown audit` end to end on colored-MNIST (the IRM construction): an ERM model trained by
 * teardown must show the published pattern (train ≥ 80%, test ≤ 30%), colour must be flagged high
 * by its counterfactual flip rate with the carrying units named, a fix must lift test accuracy
 * well above chance, and the HTML report must render in headless Chromium without touching the
 * network. Then bad input: one clear message, exit 2, nothing written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { before, describe, it } from 'node:test';
import { encodeNpy } from '../src/data/npy.ts';
import { loadTask } from '../src/data/tasks.ts';
import { writeModelFile } from '../src/onnx/model-file.ts';
import { tensor } from '../src/tensor.ts';
import { DEFAULT_OPTIMIZER, type TrainSpec } from '../src/train/spec.ts';
import { train } from '../src/train/trainer.ts';
import { tempDir } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const SCREENSHOTS = fileURLToPath(new URL('../test-output/', import.meta.url));

function teardown(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, TEARDOWN_THREADS: undefined },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const ERM_SPEC: TrainSpec = {
  task: 'colored-mnist',
  taskOptions: {},
  model: 'mlp:hidden=128-128',
  optimizer: { ...DEFAULT_OPTIMIZER, weightDecay: 0.001 },
  lr: 1e-3,
  schedule: { warmupSteps: 0, cosine: false },
  epochs: 5,
  batch: 128,
  seed: 0,
  evalEvery: 1_000_000,
};

describe('teardown audit on a colored-MNIST ERM model', () => {
  const dir = tempDir();
  let audit: { status: number | null; stdout: string; stderr: string };
  let json: any;

  before(async () => {
    const result = await train(ERM_SPEC, { runtime: { threads: 2 } });
    writeModelFile(join(dir, 'erm.onnx'), result.model);
    const task = loadTask('colored-mnist');
    for (const [split, data] of [
      ['train', task.train],
      ['test', task.test],
    ] as const) {
      writeFileSync(join(dir, `${split}.npy`), encodeNpy(data.inputs));
      writeFileSync(join(dir, `${split}-labels.npy`), encodeNpy(data.labels));
      writeFileSync(
        join(dir, `${split}-color.npy`),
        encodeNpy(tensor('int64', [data.labels.dims[0]], Array.from(data.attributes!.color))),
      );
    }
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ units: { examples: 300 }, calibration: { resamples: 100 } }),
    );
    audit = teardown(
      [
        'audit',
        'erm.onnx',
        '--data',
        'train.npy',
        '--labels',
        'train-labels.npy',
        '--attribute',
        'color=train-color.npy',
        '--counterfactual',
        'color:channel-swap',
        '--shifted',
        'test.npy',
        '--shifted-labels',
        'test-labels.npy',
        '--shifted-attribute',
        'color=test-color.npy',
        '--config',
        'config.json',
        '--try-fixes',
        '--report',
        'report',
        '--json',
        'audit.json',
        '--fail-on',
        'high',
        '--threads',
        '2',
      ],
      dir,
    );
    json = existsSync(join(dir, 'audit.json'))
      ? JSON.parse(readFileSync(join(dir, 'audit.json'), 'utf8'))
      : undefined;
  });

  it('reproduces the published ERM pattern: train ≥ 80%, test ≤ 30%', () => {
    assert.equal(audit.status, 3, `--fail-on high exits 3 when colour is flagged\n${audit.stderr}`);
    assert.ok(json.accuracy.data.value >= 0.8, `train ${json.accuracy.data.value}`);
    assert.ok(json.accuracy.shifted.value <= 0.3, `test ${json.accuracy.shifted.value}`);
  });

  it('flags colour high by its counterfactual flip rate, most severe first, and names the units that carry it', () => {
    const [first] = json.findings;
    assert.equal(first.detector, 'shortcut-attribute');
    assert.equal(first.attribute, 'color');
    assert.equal(first.severity, 'high');
    assert.ok(first.metric.value > 0.5, `flip rate ${first.metric.value}`);
    for (const key of ['detector', 'severity', 'metric', 'threshold', 'evidence'])
      assert.ok(key in first, key);
    const order = ['high', 'medium', 'low'];
    json.findings.forEach((f: { severity: string }, i: number) =>
      assert.ok(
        i === 0 || order.indexOf(f.severity) >= order.indexOf(json.findings[i - 1].severity),
        'sorted by severity',
      ),
    );
    const [units] = json.shortcutUnits;
    assert.ok(units.units.length > 0 && units.units.length <= Math.floor(0.1 * units.width));
    assert.ok(
      units.flipRate.carriers < units.flipRate.none,
      'ablating the carriers removes counterfactual flips',
    );
    // Mean-ablating the carriers moves accuracy towards the colour-blind 75% on both distributions, more than as many random units.
    const { data, shifted } = units.accuracy;
    assert.ok(
      data.carriers <= data.none && shifted.carriers > shifted.none + 0.02,
      JSON.stringify(units.accuracy),
    );
    assert.ok(
      shifted.carriers - shifted.none > shifted.random - shifted.none + 0.01,
      'carriers beat random units on the colour-flipped set',
    );
    // The colour lives mostly in one direction of the hook: projecting it out removes most flips and lifts the colour-flipped accuracy.
    const direction = units.direction;
    assert.ok(
      direction.flipRate.projected < 0.5 * direction.flipRate.none,
      JSON.stringify(direction),
    );
    assert.ok(direction.accuracy.shifted.projected > 0.5, JSON.stringify(direction.accuracy));
    assert.match(audit.stdout, /The units that carry 'color'/);
  });

  it('inspect --counterfactual names the colour carriers of a hook: at most 10% of its units, removing more flips than random units', () => {
    const result = teardown(
      [
        'inspect',
        'erm.onnx',
        '--data',
        'train.npy',
        '--labels',
        'train-labels.npy',
        '--hooks',
        'act1',
        '--counterfactual',
        'color:channel-swap',
        '--gradient-examples',
        '300',
        '--json',
        'inspect.json',
        '--threads',
        '2',
      ],
      dir,
    );
    assert.equal(result.status, 0, result.stderr);
    const [carriers] = JSON.parse(readFileSync(join(dir, 'inspect.json'), 'utf8')).carriers;
    assert.equal(carriers.hook, 'act1');
    assert.equal(carriers.units.length, Math.floor(0.1 * carriers.width));
    assert.ok(
      carriers.flipRate.carriers < carriers.flipRate.random &&
        carriers.flipRate.random <= carriers.flipRate.none + 0.02,
      JSON.stringify(carriers.flipRate),
    );
    assert.ok(
      carriers.direction.flipRate < 0.5 * carriers.flipRate.none,
      'one direction carries most of the colour',
    );
  });

  it('--try-fixes: reweighting or IRMv1 lifts test accuracy well above chance', () => {
    const rows: { method: string; outOfDistribution: number }[] = json.fixes.rows;
    assert.deepEqual(
      rows.map((r) => r.method),
      ['as audited (ERM)', 'group-balanced reweighting', 'Just-Train-Twice', 'IRMv1'],
    );
    const best = Math.max(
      ...rows.filter((r) => /reweighting|IRM/.test(r.method)).map((r) => r.outOfDistribution),
    );
    assert.ok(best > 0.6, `best fix reaches ${best} out of distribution`);
  });

  it('writes a self-contained report whose charts render in headless Chromium with no network access', async () => {
    const path = join(dir, 'report', 'index.html');
    const html = readFileSync(path, 'utf8');
    assert.doesNotMatch(
      html,
      /<script|https?:\/\/(?!www\.w3\.org)/,
      'no script and no remote reference',
    );
    // Chromium from the npm registry: @sparticuz/chromium carries the binary in its package and unpacks it to the temp folder.
    const { default: packagedChromium } = await import('@sparticuz/chromium');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: await packagedChromium.executablePath(),
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const requested: string[] = [];
      await page.route('**/*', (route) => {
        requested.push(route.request().url());
        return route.request().url().startsWith('file:') ? route.continue() : route.abort();
      });
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      await page.goto(pathToFileURL(path).href);
      assert.deepEqual(
        requested.filter((url) => !url.startsWith('data:')),
        [pathToFileURL(path).href],
        'only the report itself is loaded',
      );
      const charts = await page.$$eval('svg.marks', (svgs) =>
        svgs.map((svg) => ({
          width: svg.getBoundingClientRect().width,
          marks: svg.querySelectorAll('path, rect, line').length,
        })),
      );
      assert.ok(charts.length >= 5, `${charts.length} charts`);
      for (const chart of charts)
        assert.ok(chart.width > 100 && chart.marks > 3, JSON.stringify(chart));
      const images = await page.$$eval('.samples img', (imgs) =>
        imgs.map((img) => (img as HTMLImageElement).naturalWidth),
      );
      assert.ok(images.length > 0 && images.every((width) => width === 14), 'sample images decode');
      assert.match(
        (await page.textContent('#summary')) ?? '',
        /What is wrong[\s\S]*How sure[\s\S]*What to do/,
      );
      assert.deepEqual(errors, []);
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'audit-report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  describe('bad input: one clear message, exit 2, nothing written', () => {
    const cases: [string, string[], RegExp][] = [
      [
        'labels of another length',
        ['--labels', 'test-labels.npy'],
        /has 8000 examples but its labels 'test-labels.npy' have 2000/,
      ],
      [
        'an unknown transform',
        ['--labels', 'train-labels.npy', '--counterfactual', 'color:blur'],
        /Unknown transform 'blur'/,
      ],
      [
        'a transform that does not fit the data',
        ['--labels', 'train-labels.npy', '--counterfactual', 'color:flip'],
        /works on a table column; the data is images \[N, 2, 14, 14\]/,
      ],
      [
        'an attribute of another length',
        ['--labels', 'train-labels.npy', '--attribute', 'color=test-color.npy'],
        /Attribute 'color' .* has shape \[2000\] but 'train.npy' has 8000 examples/,
      ],
      [
        'labels outside the classes',
        ['--labels', 'bad-labels.npy'],
        /Label 7 \(example 0 of --data 'train.npy'\) is outside the model's 2 classes/,
      ],
    ];
    for (const [name, flags, message] of cases) {
      it(name, () => {
        writeFileSync(
          join(dir, 'bad-labels.npy'),
          encodeNpy(
            tensor(
              'int64',
              [8000],
              Array.from({ length: 8000 }, (_, i) => (i === 0 ? 7 : 0)),
            ),
          ),
        );
        const out = `bad-${name.replace(/\W+/g, '-')}`;
        const result = teardown(
          [
            'audit',
            'erm.onnx',
            '--data',
            'train.npy',
            ...flags,
            '--json',
            `${out}.json`,
            '--report',
            out,
          ],
          dir,
        );
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, message);
        assert.equal(result.stderr.trim().split('\n').length, 1, 'one line, no stack');
        assert.ok(
          !existsSync(join(dir, `${out}.json`)) && !existsSync(join(dir, out)),
          'nothing written',
        );
      });
    }
  });
});
