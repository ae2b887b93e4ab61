/**
 * `teardown audit` on a model with several inputs (issue 11, item 4): a PyTorch 1.13 export with
 * input_ids, attention_mask and float features (test/fixtures/multi-input/make.py). Every input is
 * fed by name; the transformed one (--transform-input) is changed by counterfactuals and noise and
 * the others pass through with their row. The oracle is PyTorch's own logits: with labels set to
 * PyTorch's predictions the audit must be right on every example, through batches of 7 and on a
 * reversed shifted copy; its counterfactual flips must be PyTorch's; and a mask moved to the
 * neighbouring row must cost exactly the examples PyTorch says it changes (so a mask that did
 * not travel with its row would be caught).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { tensor, type Tensor } from '../src/tensor.ts';
import { tempDir } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/multi-input/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8'));
const INPUTS = ['input_ids', 'attention_mask', 'features'] as const;

function teardown(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args, '--threads', '1'], {
    cwd,
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** argmax over the last axis of [N, classes] logits. */
function argmax(logits: Tensor): number[] {
  const [n, classes] = logits.dims;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (logits.data[i * classes + c] > logits.data[i * classes + best]) best = c;
    return best;
  });
}

/** Rows in reverse order. */
function reversed(t: Tensor): Tensor {
  const rowSize = t.data.length / t.dims[0];
  const out = tensor(t.dtype, [...t.dims]);
  for (let row = 0; row < t.dims[0]; row++)
    (out.data as Float32Array).set(
      (t.data as Float32Array).subarray(row * rowSize, (row + 1) * rowSize),
      (t.dims[0] - 1 - row) * rowSize,
    );
  return out;
}

describe('teardown audit on a multi-input PyTorch export (input_ids, attention_mask, features)', () => {
  const dir = tempDir();
  const predicted = argmax(readNpy(join(FIXTURE, 'logits.npy')));
  const n = predicted.length;
  writeFileSync(join(dir, 'labels.npy'), encodeNpy(tensor('int64', [n], predicted)));
  writeFileSync(
    join(dir, 'labels-reversed.npy'),
    encodeNpy(reversed(tensor('int64', [n], predicted))),
  );
  for (const name of INPUTS)
    writeFileSync(
      join(dir, `${name}-reversed.npy`),
      encodeNpy(reversed(readNpy(join(FIXTURE, `${name}.npy`)))),
    );
  writeFileSync(
    join(dir, 'attention_mask-rolled.npy'),
    encodeNpy(rolled(readNpy(join(FIXTURE, 'attention_mask.npy')))),
  );
  const inputFlags = (
    files: Partial<Record<(typeof INPUTS)[number], string>> = {},
    flag = '--input',
  ) => INPUTS.flatMap((name) => [flag, `${name}=${files[name] ?? join(FIXTURE, `${name}.npy`)}`]);
  const audit = (extra: string[], inputs = inputFlags()) => {
    const json = join(dir, `audit-${Math.random().toString(36).slice(2)}.json`);
    const result = teardown(
      [
        'audit',
        join(FIXTURE, 'model.onnx'),
        ...inputs,
        '--labels',
        'labels.npy',
        '--batch-size',
        '7',
        '--json',
        json,
        ...extra,
      ],
      dir,
    );
    return {
      ...result,
      json: existsSync(json) ? JSON.parse(readFileSync(json, 'utf8')) : undefined,
    };
  };

  it("feeds every input by name with each row's own mask: PyTorch's predictions on every example, also reversed as the shifted set", () => {
    const result = audit([
      '--transform-input',
      'features',
      '--attribute',
      `group=${join(FIXTURE, 'group.npy')}`,
      ...inputFlags(
        {
          input_ids: 'input_ids-reversed.npy',
          attention_mask: 'attention_mask-reversed.npy',
          features: 'features-reversed.npy',
        },
        '--shifted-input',
      ),
      '--shifted-labels',
      'labels-reversed.npy',
    ]);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(
      result.json.data.inputs,
      ['features', 'input_ids', 'attention_mask'],
      'the transformed input first',
    );
    assert.equal(result.json.accuracy.data.value, 1);
    assert.equal(result.json.accuracy.shifted.value, 1);
    // Confidence is PyTorch's softmax, example by example: the mean agrees to float precision.
    const logits = readNpy(join(FIXTURE, 'logits.npy')).data as Float32Array;
    const confidence =
      predicted.reduce(
        (sum, _, i) => sum + 1 / (1 + Math.exp(-Math.abs(logits[2 * i] - logits[2 * i + 1]))),
        0,
      ) / n;
    assert.ok(
      Math.abs(result.json.calibration.meanConfidence - confidence) < 1e-5,
      `${result.json.calibration.meanConfidence} vs ${confidence}`,
    );
  });

  it('a counterfactual on the transformed input flips exactly the predictions PyTorch flips, the tokens and mask passing through', () => {
    const result = audit(['--transform-input', 'features', '--counterfactual', 'feature 3:flip']);
    assert.equal(result.status, 0, result.stderr);
    const finding = result.json.findings.find((f: any) => f.detector === 'shortcut-attribute');
    const pytorchFlips = argmax(readNpy(join(FIXTURE, 'logits-flip.npy'))).filter(
      (c, i) => c !== predicted[i],
    ).length;
    assert.equal(pytorchFlips, manifest.flips);
    assert.equal(finding.evidence.flips, pytorchFlips);
    assert.ok(pytorchFlips > 10, 'the oracle has flips to count');
    // High: the units that carry it are searched on resampled rows, each row's tokens and mask beside it; with nothing
    // ablated their counterfactual flip rate on the sample (every row, as there are fewer than units.examples) is PyTorch's.
    assert.equal(finding.severity, 'high');
    const [units] = result.json.shortcutUnits;
    assert.equal(units.hook, 'act');
    assert.equal(units.flipRate.none, pytorchFlips / n);
    assert.ok(units.flipRate.carriers < units.flipRate.none, JSON.stringify(units.flipRate));
  });

  it('a mask moved to the neighbouring row costs exactly the examples PyTorch says it changes (the check above can fail)', () => {
    const result = audit([], inputFlags({ attention_mask: 'attention_mask-rolled.npy' }));
    assert.equal(result.status, 0, result.stderr);
    const changed = argmax(readNpy(join(FIXTURE, 'logits-rolled-mask.npy'))).filter(
      (c, i) => c !== predicted[i],
    ).length;
    assert.equal(changed, manifest.changed_by_rolled_mask);
    assert.ok(changed >= 10, `the mask matters to ${changed} predictions`);
    assert.ok(
      Math.abs(result.json.accuracy.data.value - (1 - changed / n)) < 1e-12,
      `${result.json.accuracy.data.value} vs ${1 - changed / n}`,
    );
  });

  // The conformance corpus's nn.TransformerEncoder export (input_ids + attention_mask), when the corpus is there.
  const encoder = fileURLToPath(new URL('./corpus/encoder/', import.meta.url));
  it(
    "audits the corpus encoder (nn.TransformerEncoder with an attention_mask input) at opsets 14 and 17: PyTorch's predictions through batches of 3",
    { skip: !existsSync(join(encoder, 'manifest.json')) && 'test/corpus/encoder is not there' },
    () => {
      const logits = readNpy(join(encoder, 'outputs/logits.npy'));
      writeFileSync(
        join(dir, 'encoder-labels.npy'),
        encodeNpy(tensor('int64', [logits.dims[0]], argmax(logits))),
      );
      for (const opset of [14, 17]) {
        const result = teardown(
          [
            'audit',
            join(encoder, `opset${opset}.onnx`),
            '--input',
            `input_ids=${join(encoder, 'inputs/input_ids.npy')}`,
            '--input',
            `attention_mask=${join(encoder, 'inputs/attention_mask.npy')}`,
            '--labels',
            'encoder-labels.npy',
            '--batch-size',
            '3',
            '--json',
            `encoder-${opset}.json`,
          ],
          dir,
        );
        assert.equal(result.status, 0, result.stderr);
        assert.equal(
          JSON.parse(readFileSync(join(dir, `encoder-${opset}.json`), 'utf8')).accuracy.data.value,
          1,
          `opset ${opset}`,
        );
      }
    },
  );

  describe('bad input: one message, exit 2, nothing written', () => {
    const refused = (args: string[], pattern: RegExp) => {
      const result = teardown(
        [
          'audit',
          join(FIXTURE, 'model.onnx'),
          ...args,
          '--labels',
          'labels.npy',
          '--json',
          'never.json',
        ],
        dir,
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, pattern);
      assert.ok(!existsSync(join(dir, 'never.json')));
    };

    it('--data on a model with several inputs names the --input flags it needs', () =>
      refused(
        ['--data', join(FIXTURE, 'features.npy')],
        /has 3 inputs .*give each input with --input NAME=FILE\.npy \(--input input_ids=\.\.\. --input attention_mask=\.\.\. --input features=\.\.\.\)/,
      ));

    it('a missing input is named', () =>
      refused(inputFlags().slice(0, 4), /missing features\. Give every model input once/));

    it('inputs with different numbers of rows', () => {
      writeFileSync(join(dir, 'short-mask.npy'), encodeNpy(tensor('int64', [5, 12])));
      refused(
        inputFlags({ attention_mask: 'short-mask.npy' }),
        /--input 'attention_mask' \('short-mask\.npy'\) has 5 examples but 'input_ids' .* has 96/,
      );
    });

    it('a table counterfactual on the default transformed input (the first, token ids) says what the data is', () =>
      refused(
        [...inputFlags(), '--counterfactual', 'feature 3:flip'],
        /Transform 'flip' works on a table column; the data is \[N, 12\]/,
      ));

    it('a shifted set given with --shifted when the examples came with --input', () =>
      refused(
        [...inputFlags(), '--shifted', join(FIXTURE, 'features.npy')],
        /give the shifted set the same way, --shifted-input NAME=FILE\.npy/,
      ));
  });
});

/** Each row given the previous row's values (np.roll by one row). */
function rolled(t: Tensor): Tensor {
  const rowSize = t.data.length / t.dims[0];
  const out = tensor(t.dtype, [...t.dims]);
  for (let row = 0; row < t.dims[0]; row++)
    (out.data as Float32Array).set(
      (t.data as Float32Array).subarray(row * rowSize, (row + 1) * rowSize),
      ((row + 1) % t.dims[0]) * rowSize,
    );
  return out;
}
