/**
 * Fixes on a user's own data (issue 11, item 6): attributes from a CSV column or an .npy file
 * reach the training objectives (reweight, jtt, irm with a named environment attribute) and
 * `audit --try-fixes`, for csv: and npy: tasks. The data is real (the mnist package's digits as a
 * table, planted-digits.ts) with one planted shortcut column whose truth is known: it agrees with
 * the label 98% of the time in training and 10% after the shift. ERM leans on it and collapses on
 * the shifted data; reweighting by it must measurably recover.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { loadAuditData } from '../src/audit/data.ts';
import { correctCount, predict } from '../src/audit/predictions.ts';
import { encodeNpy } from '../src/data/npy.ts';
import { loadTask, type Split } from '../src/data/tasks.ts';
import { Model } from '../src/runtime/model.ts';
import { tensor } from '../src/tensor.ts';
import { environmentIndices, type Objective } from '../src/train/objective.ts';
import { DEFAULT_OPTIMIZER, type TrainSpec } from '../src/train/spec.ts';
import { train } from '../src/train/trainer.ts';
import { tempDir } from './model-files.ts';
import { PLANTED, plantedDigits, writePlantedCsv, writePlantedNpy } from './planted-digits.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const runtime = { threads: 2 };

function teardown(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [BIN, ...args, '--threads', '2'], {
    cwd,
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const TRAIN_FLAGS = [
  '--model',
  'mlp:hidden=32',
  '--lr',
  '0.003',
  '--epochs',
  '8',
  '--batch',
  '64',
  '--eval-every',
  '1000000',
];

/** Binomial standard error of an accuracy near ½ on the shifted set, in accuracy units. */
const SHIFTED_SE = Math.sqrt(0.25 / PLANTED.shiftedRows);

describe("fixes on a user's own data: a planted shortcut column in a digits table", () => {
  const dir = tempDir();
  const sets = plantedDigits();
  const csv = {
    train: writePlantedCsv(dir, 'train', sets.train),
    shifted: writePlantedCsv(dir, 'shifted', sets.shifted),
  };
  const npy = {
    train: writePlantedNpy(dir, 'train', sets.train),
    shifted: writePlantedNpy(dir, 'shifted', sets.shifted),
  };

  it('the planted column is what it claims: 98% agreement with the label in training, 10% after the shift', () => {
    const agreement = (set: typeof sets.train) =>
      set.labels.filter((label, k) => label === set.shortcut[k]).length / set.labels.length;
    assert.ok(Math.abs(agreement(sets.train) - 0.98) < 0.01, `train ${agreement(sets.train)}`);
    assert.ok(Math.abs(agreement(sets.shifted) - 0.1) < 0.02, `shifted ${agreement(sets.shifted)}`);
  });

  it('csv: and npy: tasks carry attributes that travel with their rows through the split', () => {
    const fromCsv = loadTask(`csv:${csv.train}`, {
      labelColumn: 'label',
      attributes: ['shortcut'],
    });
    const fromNpy = loadTask(`npy:${npy.train.inputs},${npy.train.labels}`, {
      attributes: [`shortcut=${npy.train.shortcut}`, `site=${npy.train.site}`],
    });
    assert.deepEqual(fromNpy.input, { kind: 'features', features: 50 });
    assert.equal(fromNpy.train.labels.dims[0] + fromNpy.test.labels.dims[0], PLANTED.trainRows);
    // The shortcut is both the table's column 49 and an attribute: in every row of both splits they must agree.
    for (const [task, width] of [
      [fromCsv, 50],
      [fromNpy, 50],
    ] as const) {
      for (const split of [task.train, task.test] as Split[]) {
        const codes = split.attributes!.shortcut;
        codes.forEach((code, row) =>
          assert.equal(
            code,
            Number(split.inputs.data[row * width + 49]),
            `${task.name} row ${row}`,
          ),
        );
      }
    }
    assert.equal(fromCsv.testDistribution, 'same');
    assert.match(fromNpy.description, /attributes shortcut \(2 values: 0, 1\), site \(2 values/);
  });

  it('IRM environments are the distinct values of the named attribute, numbered in order', () => {
    assert.deepEqual(environmentIndices(Int32Array.from([7, 3, 7, 9])), {
      environment: Int32Array.from([1, 0, 1, 2]),
      count: 3,
    });
  });

  it('train --objective reweight:COLUMN on a CSV task groups by that column and recovers most of the shifted accuracy ERM loses', async () => {
    const shifted = loadAuditData({ data: csv.shifted, labelColumn: 'label' });
    const shiftedAccuracy = async (objective?: Objective) => {
      const spec: TrainSpec = {
        task: `csv:${csv.train}`,
        taskOptions: { labelColumn: 'label' },
        model: 'mlp:hidden=32',
        optimizer: DEFAULT_OPTIMIZER,
        lr: 3e-3,
        schedule: { warmupSteps: 0, cosine: false },
        epochs: 8,
        batch: 64,
        seed: 0,
        evalEvery: 1_000_000,
        objective,
      };
      const model = Model.fromProto(
        (await train(spec, { runtime })).model,
        'planted-table model',
        runtime,
      );
      try {
        return (
          correctCount((await predict(model, shifted.inputs)).predicted, shifted.labels) /
          shifted.labels.length
        );
      } finally {
        await model.release();
      }
    };
    const erm = await shiftedAccuracy();
    const reweighted = await shiftedAccuracy({ kind: 'reweight', attributes: ['shortcut'] });
    assert.ok(erm < 0.5, `ERM follows the shortcut and falls below chance after the shift: ${erm}`);
    assert.ok(
      reweighted - erm > 20 * SHIFTED_SE && reweighted > 0.6,
      `reweighting ${reweighted} vs ERM ${erm}`,
    );
  });

  describe('teardown audit --try-fixes on a teardown-trained CSV model', () => {
    let json: any;
    let audit: ReturnType<typeof teardown>;
    before(() => {
      const trained = teardown(
        [
          'train',
          '--task',
          'csv:train.csv',
          '--label-column',
          'label',
          ...TRAIN_FLAGS,
          '--out',
          'erm.onnx',
        ],
        dir,
      );
      assert.equal(trained.status, 0, trained.stderr);
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({ units: { examples: 300 }, calibration: { resamples: 100 } }),
      );
      audit = teardown(
        [
          'audit',
          'erm.onnx',
          '--data',
          'train.csv',
          '--label-column',
          'label',
          '--attribute',
          'shortcut',
          '--shifted',
          'shifted.csv',
          '--config',
          'config.json',
          '--try-fixes',
          '--json',
          'audit.json',
        ],
        dir,
      );
      json = existsSync(join(dir, 'audit.json'))
        ? JSON.parse(readFileSync(join(dir, 'audit.json'), 'utf8'))
        : undefined;
    });

    it('flags the planted column and retrains grouped by it, measuring on the held-out split and on --shifted', () => {
      assert.equal(audit.status, 0, audit.stderr);
      assert.ok(
        json.findings.some(
          (f: any) =>
            f.detector === 'shortcut-attribute' &&
            f.attribute === 'shortcut' &&
            f.severity === 'high',
        ),
        JSON.stringify(
          json.findings.map((f: any) => [f.detector, f.attribute ?? f.feature, f.severity]),
        ),
      );
      assert.equal(json.fixes.attribute, 'shortcut');
      assert.match(json.fixes.description, /held-out split.*--shifted 'shifted\.csv'/);
      assert.deepEqual(
        json.fixes.rows.map((r: any) => r.method),
        ['as audited (ERM)', 'group-balanced reweighting', 'Just-Train-Twice', 'IRMv1'],
      );
      assert.match(
        json.fixes.rows[3].settings,
        /environments of 'shortcut'/,
        "IRM without an environment attribute uses the shortcut's groups, and says so",
      );
    });

    it('reweighting by the planted column lifts shifted accuracy far beyond its uncertainty; the audited row matches the audit', () => {
      const [erm, reweighted] = json.fixes.rows;
      assert.ok(
        Math.abs(erm.outOfDistribution - json.accuracy.shifted.value) < 1e-9,
        'the as-audited row is the audited model on --shifted',
      );
      assert.ok(
        reweighted.outOfDistribution - erm.outOfDistribution > 20 * SHIFTED_SE,
        `reweighting ${reweighted.outOfDistribution} vs ERM ${erm.outOfDistribution}`,
      );
      assert.ok(
        erm.inDistribution > 0.95 && reweighted.inDistribution > 0.8,
        'both stay accurate on the held-out split',
      );
    });
  });

  it("npy: a task from .npy files trains with an .npy attribute as IRM's environments, and audit --try-fixes groups by an .npy attribute of the same data", () => {
    const task = `npy:train.npy,train-labels.npy`;
    const irm = teardown(
      [
        'train',
        '--task',
        task,
        '--attribute',
        'site=train-site.npy',
        ...TRAIN_FLAGS,
        '--objective',
        'irm:100:300:site',
        '--out',
        'irm.onnx',
        '--json',
        'irm.json',
      ],
      dir,
    );
    assert.equal(irm.status, 0, irm.stderr);
    const result = JSON.parse(readFileSync(join(dir, 'irm.json'), 'utf8'));
    assert.deepEqual(result.spec.objective, {
      kind: 'irm',
      penaltyWeight: 100,
      annealSteps: 300,
      environment: 'site',
    });
    assert.ok(result.final.testAccuracy > 0.9, `held-out accuracy ${result.final.testAccuracy}`);

    const erm = teardown(['train', '--task', task, ...TRAIN_FLAGS, '--out', 'erm-npy.onnx'], dir);
    assert.equal(erm.status, 0, erm.stderr);
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ units: { examples: 300 }, calibration: { resamples: 100 } }),
    );
    const audit = teardown(
      [
        'audit',
        'erm-npy.onnx',
        '--data',
        'train.npy',
        '--labels',
        'train-labels.npy',
        '--attribute',
        'shortcut=train-shortcut.npy',
        '--shifted',
        'shifted.npy',
        '--shifted-labels',
        'shifted-labels.npy',
        '--config',
        'config.json',
        '--try-fixes',
        '--json',
        'audit-npy.json',
      ],
      dir,
    );
    assert.equal(audit.status, 0, audit.stderr);
    const fixes = JSON.parse(readFileSync(join(dir, 'audit-npy.json'), 'utf8')).fixes;
    assert.deepEqual(
      fixes.spec.taskOptions.attributes,
      ['shortcut=train-shortcut.npy'],
      "the audit's attribute file joins the retraining task",
    );
    assert.ok(
      fixes.rows[1].outOfDistribution - fixes.rows[0].outOfDistribution > 20 * SHIFTED_SE,
      JSON.stringify(fixes.rows),
    );
  });

  describe('bad input: one message, exit 2, nothing written', () => {
    it('an objective attribute that is no column names the nearest columns', () => {
      const result = teardown(
        [
          'train',
          '--task',
          'csv:train.csv',
          '--label-column',
          'label',
          ...TRAIN_FLAGS,
          '--objective',
          'reweight:shortcutt',
          '--out',
          'bad.onnx',
        ],
        dir,
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(
        result.stderr,
        /Attribute 'shortcutt' is not a column of 'train\.csv'.*Columns: shortcut/,
      );
      assert.ok(!existsSync(join(dir, 'bad.onnx')));
    });

    it('an npy attribute with the wrong number of rows says how many it needs', () => {
      writeFileSync(join(dir, 'short.npy'), encodeNpy(tensor('int64', [5], [0, 1, 0, 1, 0])));
      const result = teardown(
        [
          'train',
          '--task',
          'npy:train.npy,train-labels.npy',
          '--attribute',
          'site=short.npy',
          ...TRAIN_FLAGS,
          '--objective',
          'reweight:site',
          '--out',
          'bad.onnx',
        ],
        dir,
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /has shape \[5\] but 'train\.npy' has 6000 rows/);
    });

    it('IRM on batches that miss an environment stops with the fix instead of training on 0/0', () => {
      writeFileSync(
        join(dir, 'rare.npy'),
        encodeNpy(
          tensor(
            'int64',
            [PLANTED.trainRows],
            Array.from({ length: PLANTED.trainRows }, (_, row) => (row < 10 ? 1 : 0)),
          ),
        ),
      );
      const result = teardown(
        [
          'train',
          '--task',
          'npy:train.npy,train-labels.npy',
          '--attribute',
          'rare=rare.npy',
          ...TRAIN_FLAGS,
          '--objective',
          'irm:100:300:rare',
          '--out',
          'bad.onnx',
        ],
        dir,
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /holds no example of environment 1 of 'rare'.*--batch-size full/);
      assert.ok(!existsSync(join(dir, 'bad.onnx')));
    });

    it("--try-fixes on a user's task without --shifted asks for it before auditing", () => {
      const result = teardown(
        [
          'audit',
          'erm.onnx',
          '--data',
          'train.csv',
          '--label-column',
          'label',
          '--attribute',
          'shortcut',
          '--try-fixes',
          '--json',
          'nofix.json',
        ],
        dir,
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /no shifted split of its own.*--shifted FILE/);
      assert.ok(!existsSync(join(dir, 'nofix.json')));
    });

    it('--try-fixes with an .npy attribute of other data than the training data says how to give it', () => {
      const result = teardown(
        [
          'audit',
          'erm-npy.onnx',
          '--data',
          'shifted.npy',
          '--labels',
          'shifted-labels.npy',
          '--attribute',
          'shortcut=shifted-shortcut.npy',
          '--shifted',
          'shifted.npy',
          '--shifted-labels',
          'shifted-labels.npy',
          '--try-fixes',
        ],
        dir,
      );
      assert.equal(result.status, 2, result.stderr);
      assert.match(
        result.stderr,
        /'shortcut' holds values for the audit data 'shifted\.npy', not for the training data 'train\.npy,train-labels\.npy' \(retrain with teardown train --attribute shortcut=FILE\.npy/,
      );
    });
  });
});
