/**
 * Bad data is refused, not audited (issue 14; docs/errors.md): non-finite inputs, zero rows and
 * labels that are not classes give exit 2 with one message naming the file, rows and columns, in
 * every command that reads data; training that diverges stops with exit 2 and saves nothing; two
 * trainings with the same seed and one thread write the same bytes.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { allowNonFinite } from '../src/data/validate.ts';
import { tensor } from '../src/tensor.ts';
import { fixtureDir } from './helpers.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const mlp = fixtureDir('mlp');
const model = `${mlp}/model.onnx`;

function teardown(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** No stack trace: one 'teardown: ' message. */
function assertRefused(result: { status: number | null; stderr: string }, message: RegExp): void {
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, message);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

describe('bad data is refused by every command that reads it (exit 2)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'teardown-bad-data-'));
    const input = readNpy(`${mlp}/input.npy`); // [16, 20]
    const data = Float32Array.from(input.data as Float32Array);
    data[3 * 20 + 5] = Infinity; // row 3, column 5
    for (let column = 0; column < 20; column++) data[4 * 20 + column] = NaN; // a NaN row
    writeFileSync(join(dir, 'non-finite.npy'), encodeNpy(tensor('float32', [16, 20], data)));
    writeFileSync(join(dir, 'empty.npy'), encodeNpy(tensor('float32', [0, 20], [])));
    writeFileSync(join(dir, 'empty-labels.npy'), encodeNpy(tensor('int64', [0], [])));
    const labels = Array.from(readNpy(`${mlp}/target.npy`).data as BigInt64Array, Number);
    writeFileSync(
      join(dir, 'one-class.npy'),
      encodeNpy(
        tensor(
          'int64',
          [16],
          labels.map(() => 1),
        ),
      ),
    );
    writeFileSync(
      join(dir, 'huge-class.npy'),
      encodeNpy(
        tensor(
          'int64',
          [16],
          labels.map((label, row) => (row === 0 ? 1_000_000 : label)),
        ),
      ),
    );
    writeFileSync(
      join(dir, 'negative-class.npy'),
      encodeNpy(
        tensor(
          'int64',
          [16],
          labels.map((label, row) => (row === 1 ? -1 : label)),
        ),
      ),
    );
  });

  const nonFinite =
    /'non-finite\.npy' holds 21 non-finite values \(NaN or ±Inf\), first in row 3 \(column 5 = Infinity\); row 4 \(columns 0 = NaN, 1 = NaN, 2 = NaN, 3 = NaN, …\)/;
  for (const [command, args] of [
    ['audit', ['audit', model, '--data', 'non-finite.npy', '--labels', `${mlp}/target.npy`]],
    ['inspect', ['inspect', model, '--data', 'non-finite.npy', '--labels', `${mlp}/target.npy`]],
    ['run', ['run', model, '--input', 'input=non-finite.npy', '--out', 'out']],
    [
      'grad',
      [
        'grad',
        model,
        '--input',
        'input=non-finite.npy',
        '--labels',
        `${mlp}/target.npy`,
        '--out',
        'out',
      ],
    ],
    [
      'train',
      [
        'train',
        '--task',
        `npy:non-finite.npy,${mlp}/target.npy`,
        '--model',
        'mlp:hidden=4',
        '--steps',
        '1',
        '--out',
        'out.onnx',
      ],
    ],
  ] as const) {
    it(`${command}: NaN rows and an Inf cell, naming the rows and columns; nothing written`, () => {
      assertRefused(teardown([...args], dir), nonFinite);
      assert.ok(!existsSync(join(dir, 'out')) && !existsSync(join(dir, 'out.onnx')));
    });
  }

  it('--allow-non-finite lets run go on with them', () => {
    const result = teardown(
      [
        'run',
        model,
        '--input',
        'input=non-finite.npy',
        '--out',
        'allowed',
        '--allow-non-finite',
        '--quiet',
      ],
      dir,
    );
    assert.equal(result.status, 0, result.stderr);
    allowNonFinite(true);
    const output = readNpy(join(dir, 'allowed', 'outputs', 'output.npy'));
    allowNonFinite(false);
    assert.ok(Number.isNaN(output.data[4 * output.dims[1]]), 'the NaN row stays NaN');
  });

  it('--allow-non-finite: audit goes on with every detector defined (no NaN, no finding caused by them)', () => {
    const result = teardown(
      [
        'audit',
        model,
        '--data',
        'non-finite.npy',
        '--labels',
        `${mlp}/target.npy`,
        '--allow-non-finite',
        '--json',
        'audit.json',
        '--quiet',
      ],
      dir,
    );
    assert.equal(result.status, 0, result.stderr);
    const text = readFileSync(join(dir, 'audit.json'), 'utf8');
    assert.doesNotMatch(text, /NaN|null/, 'every value defined');
    const audit = JSON.parse(text);
    // Before: noise scaled by a NaN standard deviation changed 14 of 16 predictions, a HIGH robustness finding.
    assert.deepEqual(
      audit.findings.map((finding: { detector: string }) => finding.detector),
      [],
    );
    assert.ok(audit.calibration.meanConfidence > 0 && audit.calibration.meanConfidence <= 1);
  });

  for (const [command, args] of [
    ['audit', ['audit', model, '--data', 'empty.npy', '--labels', 'empty-labels.npy']],
    ['inspect', ['inspect', model, '--data', 'empty.npy']],
    ['run', ['run', model, '--input', 'input=empty.npy', '--out', 'out']],
    [
      'grad',
      ['grad', model, '--input', 'input=empty.npy', '--labels', 'empty-labels.npy', '--out', 'out'],
    ],
    [
      'train',
      [
        'train',
        '--task',
        'npy:empty.npy,empty-labels.npy',
        '--model',
        'mlp:hidden=4',
        '--steps',
        '1',
        '--out',
        'out.onnx',
      ],
    ],
  ] as const) {
    it(`${command}: zero rows`, () =>
      assertRefused(teardown([...args], dir), /has no rows \(0 examples\)|has 0 examples/));
  }

  for (const [what, file, message] of [
    [
      'a single class',
      'one-class.npy',
      /hold a single class \(1\): training needs examples of at least two classes/,
    ],
    [
      'a label of 1,000,000',
      'huge-class.npy',
      /largest label .*1000000, would make a 1000001-class model from 16 examples/,
    ],
    [
      'a label of −1',
      'negative-class.npy',
      /Label -1 \(example 1 of labels '.*negative-class\.npy'\) is not a class/,
    ],
  ] as const) {
    it(`train: ${what}`, () => {
      assertRefused(
        teardown(
          [
            'train',
            '--task',
            `npy:${mlp}/input.npy,${file}`,
            '--model',
            'mlp:hidden=4',
            '--steps',
            '1',
            '--out',
            'out.onnx',
          ],
          dir,
        ),
        message,
      );
      assert.ok(!existsSync(join(dir, 'out.onnx')));
    });
  }

  it('train: a CSV label of −1 or 2.5', () => {
    writeFileSync(join(dir, 'negative.csv'), 'a,b,y\n1,2,0\n3,4,1\n5,6,-1\n7,8,1\n9,0,0\n');
    writeFileSync(join(dir, 'fractional.csv'), 'a,b,y\n1,2,0\n3,4,1\n5,6,2.5\n7,8,1\n9,0,0\n');
    assertRefused(
      teardown(
        [
          'train',
          '--task',
          'csv:negative.csv',
          '--label-column',
          'y',
          '--model',
          'mlp:hidden=4',
          '--steps',
          '1',
          '--out',
          'out.onnx',
        ],
        dir,
      ),
      /Label -1 \(example 2 of column 'y' of 'negative\.csv'\) is not a class/,
    );
    assertRefused(
      teardown(
        [
          'train',
          '--task',
          'csv:fractional.csv',
          '--label-column',
          'y',
          '--model',
          'mlp:hidden=4',
          '--steps',
          '1',
          '--out',
          'out.onnx',
        ],
        dir,
      ),
      /column 'y' of 'fractional\.csv' must be integer classes .*row 4 holds 2\.5/,
    );
  });

  it('run: an interventions file with a byte-order mark is read; one holding [null] is refused', () => {
    writeFileSync(
      join(dir, 'bom.json'),
      '\uFEFF[{"kind": "ablate", "hook": "act1", "units": [0]}]',
    );
    writeFileSync(join(dir, 'null.json'), '[null]');
    const bom = teardown(
      [
        'run',
        model,
        '--input',
        `input=${mlp}/input.npy`,
        '--interventions',
        'bom.json',
        '--out',
        'bom',
        '--quiet',
      ],
      dir,
    );
    assert.equal(bom.status, 0, bom.stderr);
    assertRefused(
      teardown(
        [
          'run',
          model,
          '--input',
          `input=${mlp}/input.npy`,
          '--interventions',
          'null.json',
          '--out',
          'out',
        ],
        dir,
      ),
      /'null\.json': entry 0 is null, not an object/,
    );
  });
});

describe('training that diverges stops, and the same seed gives the same bytes', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'teardown-train-'));
  });
  const trainArgs = [
    'train',
    '--task',
    `npy:${mlp}/input.npy,${mlp}/target.npy`,
    '--model',
    'mlp:hidden=8',
    '--batch-size',
    '4',
    '--threads',
    '1',
    '--quiet',
  ];

  it('a loss gone NaN stops with exit 2 at its step; nothing is saved and the checkpoint of a finite step is kept', () => {
    const result = teardown(
      [
        ...trainArgs,
        '--optimizer',
        'sgd',
        '--lr',
        '1e30',
        '--steps',
        '20',
        '--checkpoint',
        'ckpt.onnx',
        '--checkpoint-every',
        '1',
        '--out',
        'diverged.onnx',
      ],
      dir,
    );
    assertRefused(
      result,
      /Training diverged at step \d+: (the loss is (NaN|Infinity)|the weights hold NaN or ±Inf) .*the last checkpoint, from an earlier step, is kept/,
    );
    assert.ok(!existsSync(join(dir, 'diverged.onnx')));
    const step = Number(/at step (\d+)/.exec(result.stderr)![1]);
    if (step > 1) {
      const checkpoint = readFileSync(join(dir, 'ckpt.onnx'));
      assert.match(
        checkpoint.toString('latin1'),
        new RegExp(`"step":${step - 1},`),
        'the checkpoint is of the step before',
      );
    }
  });

  it('two trainings with the same seed and --threads 1 write byte-identical models; timings go to the JSON', () => {
    const sha = (file: string) =>
      createHash('sha256')
        .update(readFileSync(join(dir, file)))
        .digest('hex');
    for (const name of ['a', 'b']) {
      const result = teardown(
        [
          ...trainArgs,
          '--steps',
          '6',
          '--eval-every',
          '3',
          '--seed',
          '7',
          '--out',
          `${name}.onnx`,
          '--json',
          `${name}.json`,
        ],
        dir,
      );
      assert.equal(result.status, 0, result.stderr);
    }
    assert.equal(sha('a.onnx'), sha('b.onnx'));
    const json = JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8'));
    assert.equal(typeof json.seconds, 'number');
    assert.equal(typeof json.curve[0].seconds, 'number');
  });
});
