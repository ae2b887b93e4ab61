/**
 * The audit on tables, where the truth is planted: a column that copies the label 97% of the time
 * in training and 50% when shifted must be flagged high with and without the shifted set, and a
 * table generated the same way without it must get no high finding.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { auditModel, type AuditResult } from '../src/audit/audit.ts';
import { DEFAULT_CONFIG } from '../src/audit/config.ts';
import { loadAuditData, type AuditData } from '../src/audit/data.ts';
import { renderReport } from '../src/report/html.ts';
import { seededRandom } from '../src/random.ts';
import { Model } from '../src/runtime/model.ts';
import { DEFAULT_OPTIMIZER } from '../src/train/spec.ts';
import { train } from '../src/train/trainer.ts';
import { tempDir } from './model-files.ts';

const runtime = { threads: 1 };
const config = {
  ...DEFAULT_CONFIG,
  calibration: { ...DEFAULT_CONFIG.calibration, resamples: 100 },
};

/**
 * label = [x1 + x2 + x3 + 1.5·ε > 0] (the x's alone reach about 77%), x4 pure noise; with a
 * shortcut column that equals the label with probability `agreement`.
 */
function writeTable(
  path: string,
  rows: number,
  seed: number,
  agreement?: number,
  shortcutName = 'shortcut',
): void {
  const random = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const lines = [
    ['x1', 'x2', 'x3', 'x4', ...(agreement === undefined ? [] : [shortcutName]), 'label'].join(','),
  ];
  for (let r = 0; r < rows; r++) {
    const x = [normal(), normal(), normal(), normal()];
    const label = x[0] + x[1] + x[2] + 1.5 * normal() > 0 ? 1 : 0;
    const shortcut = agreement === undefined ? [] : [random() < agreement ? label : 1 - label];
    lines.push([...x.map((v) => v.toFixed(4)), ...shortcut, label].join(','));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

async function trainAndAudit(
  dir: string,
  shifted: boolean,
): Promise<AuditResult & { data: AuditData }> {
  const trainPath = join(dir, 'train.csv');
  const model = await trainedModel(trainPath);
  try {
    const data = loadAuditData({ data: trainPath, labelColumn: 'label' });
    const shiftedData = shifted
      ? loadAuditData({ data: join(dir, 'shifted.csv'), labelColumn: 'label' }, '--shifted')
      : undefined;
    return Object.assign(
      await auditModel(model, data, {
        config,
        counterfactuals: [],
        shifted: shiftedData,
        batchSize: 512,
      }),
      { data },
    );
  } finally {
    await model.release();
  }
  async function trainedModel(path: string) {
    const result = await train(
      {
        task: `csv:${path}`,
        taskOptions: { labelColumn: 'label' },
        model: 'mlp:hidden=32',
        optimizer: DEFAULT_OPTIMIZER,
        lr: 3e-3,
        schedule: { warmupSteps: 0, cosine: false },
        epochs: 20,
        batch: 64,
        seed: 0,
        evalEvery: 1_000_000,
      },
      { runtime },
    );
    return Model.fromProto(result.model, 'table model', runtime);
  }
}

const highOn = (result: AuditResult, feature: string) =>
  result.findings.find(
    (f) => f.detector === 'shortcut-feature' && f.feature === feature && f.severity === 'high',
  );

describe('audit on generated tables', () => {
  const dir = tempDir();
  writeTable(join(dir, 'train.csv'), 2000, 1, 0.97);
  writeTable(join(dir, 'shifted.csv'), 1000, 2, 0.5);

  it('flags the 97%-label column high without a shifted set (it alone predicts the label as well as the model)', async () => {
    const result = await trainAndAudit(dir, false);
    const finding = highOn(result, 'shortcut');
    if (process.env.TEARDOWN_TEST_VERBOSE)
      console.log(result.findings.map((f) => `${f.severity} ${f.title}`).join('\n'));
    assert.ok(
      finding,
      `no high shortcut-feature finding: ${JSON.stringify(result.findings.map((f) => [f.detector, f.feature, f.severity, f.effect]))}`,
    );
    assert.equal(result.featureReliance[0].feature, 'shortcut', 'the most relied-on feature');
    assert.ok(
      !result.findings.some((f) => f.detector === 'shortcut-feature' && f.feature !== 'shortcut'),
      'no other feature is called a shortcut',
    );
  });

  it('flags it high with the shifted set (its relation to the label changed), and the shift itself', async () => {
    const result = await trainAndAudit(dir, true);
    const finding = highOn(result, 'shortcut');
    assert.ok(
      finding,
      `no high shortcut-feature finding: ${JSON.stringify(result.findings.map((f) => [f.detector, f.feature, f.severity]))}`,
    );
    assert.ok(
      (finding!.evidence.relationChange as number) > 30,
      'alone accuracy falls from ~97% to ~50%',
    );
    assert.ok(
      result.findings.some(
        (f) => f.detector === 'shift' && f.segment === 'all examples' && f.severity === 'high',
      ),
    );
  });

  it('flags nothing high on a clean table generated the same way without the column', async () => {
    const clean = tempDir();
    writeTable(join(clean, 'train.csv'), 2000, 1);
    writeTable(join(clean, 'shifted.csv'), 1000, 2);
    const result = await trainAndAudit(clean, true);
    if (process.env.TEARDOWN_TEST_VERBOSE)
      console.log(result.findings.map((f) => `${f.severity} ${f.title}`).join('\n'));
    const high = result.findings.filter((f) => f.severity === 'high');
    assert.deepEqual(
      high.map((f) => f.title),
      [],
    );
    assert.ok(
      !result.findings.some((f) => f.detector === 'shortcut-feature' || f.detector === 'shift'),
      'no shortcut feature and no shift on i.i.d. data',
    );
  });

  it('escapes every name from the data in the report, charts included', async () => {
    const hostile = tempDir();
    const name = '<img src=x onerror="alert(1)">';
    writeTable(join(hostile, 'train.csv'), 600, 3, 0.97, `"${name.replace(/"/g, '""')}"`);
    const result = await trainAndAudit(hostile, false);
    assert.ok(
      result.findings.some((f) => f.feature === name),
      'the hostile column is flagged by its real name',
    );
    const html = await renderReport({
      model: { path: 'model.onnx', sha256: '0'.repeat(64) },
      result,
      data: result.data,
    });
    assert.ok(!html.includes(name) && !html.includes('<img src=x'), 'no raw markup from the data');
    assert.ok(
      html.includes('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;') ||
        html.includes('&lt;img src=x onerror=&#39;'),
      'escaped text is present',
    );
  });
});
