/**
 * Detector-level checks of the audit against hand computations and planted truth, including the
 * case where each detector must stay silent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calibrationCheck, calibrationOf } from '../src/audit/calibration.ts';
import { DEFAULT_CONFIG } from '../src/audit/config.ts';
import type { AuditData } from '../src/audit/data.ts';
import { assess, type Check } from '../src/audit/findings.ts';
import { predict, type Predictions } from '../src/audit/predictions.ts';
import { robustnessCheck } from '../src/audit/robustness.ts';
import { segmentChecks } from '../src/audit/segments.ts';
import { shiftChecks } from '../src/audit/shift.ts';
import { shortcutCheck } from '../src/audit/shortcut.ts';
import { applyTransform, transformExamples } from '../src/audit/transforms.ts';
import { fromNpy, inMemory } from '../src/audit/examples.ts';
import { auditModel } from '../src/audit/audit.ts';
import { encodeNpy, NpyFile } from '../src/data/npy.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './model-files.ts';
import { loadTask } from '../src/data/tasks.ts';
import { GraphBuilder, int } from '../src/graph/builder.ts';
import { seededRandom } from '../src/random.ts';
import { Model } from '../src/runtime/model.ts';
import { concatRows, sliceRows, tensor } from '../src/tensor.ts';

const config = DEFAULT_CONFIG;
const findingsOf = (checks: Check[]) => assess(checks, config).findings;

/** Binary predictions with the given confidence in the predicted class. */
function predictionsFrom(predicted: number[], confidence: number[]): Predictions {
  const n = predicted.length;
  const probabilities = new Float64Array(2 * n);
  predicted.forEach((p, i) => {
    probabilities[2 * i + p] = confidence[i];
    probabilities[2 * i + 1 - p] = 1 - confidence[i];
  });
  return {
    examples: n,
    classes: 2,
    probabilities,
    predicted: Int32Array.from(predicted),
    confidence: Float64Array.from(confidence),
  };
}

/** n examples, labels 0/1, an attribute `group` 0/1, and predictions wrong with probability `errorRate(group)`. */
function syntheticSet(
  n: number,
  seed: number,
  errorRate: (group: number) => number,
): { data: AuditData; predictions: Predictions } {
  const random = seededRandom(seed);
  const labels = Int32Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0));
  const group = Float64Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0));
  const predicted = Array.from(labels, (label, i) =>
    random() < errorRate(group[i]) ? 1 - label : label,
  );
  const data: AuditData = {
    path: 'synthetic',
    inputs: inMemory(tensor('float32', [n, 1])),
    labels,
    layout: { kind: 'other', dims: [1] },
    attributes: [{ name: 'group', values: group }],
  };
  return { data, predictions: predictionsFrom(predicted, Array(n).fill(0.8)) };
}

describe('calibration', () => {
  it('ECE matches a hand computation over 15 bins', () => {
    // bin 14 (0.95): 4 examples, 3 right → |0.75 − 0.95| = 0.2; bin 8 (0.55): 2, 1 right → 0.05; bin 10 (0.7): 4, all right → 0.3
    // ECE = (4·0.2 + 2·0.05 + 4·0.3) / 10 = 0.21
    const confidence = [0.95, 0.95, 0.95, 0.95, 0.55, 0.55, 0.7, 0.7, 0.7, 0.7];
    const correct = [true, false, true, true, true, false, true, true, true, true];
    const result = calibrationOf(confidence, correct, 15);
    assert.ok(Math.abs(result.ece - 0.21) < 1e-12, `ECE ${result.ece}`);
    assert.equal(result.bins[14].count, 4);
    assert.equal(result.bins[8].count, 2);
    assert.equal(result.overconfidenceRate, 0.1); // one wrong at 0.95 ≥ 0.9
    assert.equal(
      calibrationOf([1], [true], 15).bins[14].count,
      1,
      'confidence 1 falls in the last bin',
    );
  });

  it('is silent on a calibrated model and flags an overconfident one', () => {
    const random = seededRandom(5);
    const n = 3000;
    const confidence = Array.from({ length: n }, () => 0.5 + 0.5 * random());
    const labels = Int32Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0));
    const calibrated = predictionsFrom(
      Array.from(labels, (label, i) => (random() < confidence[i] ? label : 1 - label)),
      confidence,
    );
    assert.deepEqual(findingsOf([calibrationCheck(calibrated, labels, config).check]), []);
    const overconfident = predictionsFrom(
      Array.from(labels, (label) => (random() < 0.6 ? label : 1 - label)),
      Array(n).fill(0.97),
    );
    const [finding] = findingsOf([calibrationCheck(overconfident, labels, config).check]);
    assert.equal(finding?.severity, 'high');
    assert.ok(
      Math.abs(finding.effect - 37) < 3,
      `ECE ≈ 97% − 60% = 37 points, got ${finding.effect}`,
    );
  });
});

describe('weak segments and shift', () => {
  it('are silent when errors do not depend on the group or the set', () => {
    const { data, predictions } = syntheticSet(4000, 1, () => 0.2);
    const shifted = syntheticSet(2000, 2, () => 0.2);
    assert.deepEqual(findingsOf(segmentChecks(data, predictions, config).checks), []);
    assert.deepEqual(
      findingsOf(shiftChecks(data, predictions, shifted.data, shifted.predictions).checks),
      [],
    );
  });

  it('flag a group served worse, and a shifted set served worse', () => {
    const { data, predictions } = syntheticSet(4000, 3, (group) => (group ? 0.45 : 0.1));
    const segments = findingsOf(segmentChecks(data, predictions, config).checks);
    assert.equal(segments[0]?.segment, 'group = 1');
    assert.equal(segments[0]?.severity, 'high');
    const shifted = syntheticSet(2000, 4, () => 0.4);
    const shift = findingsOf(
      shiftChecks(
        syntheticSet(4000, 5, () => 0.1).data,
        syntheticSet(4000, 5, () => 0.1).predictions,
        shifted.data,
        shifted.predictions,
      ).checks,
    );
    assert.equal(shift.find((f) => f.segment === 'all examples')?.severity, 'high');
  });
});

/** An image classifier that sums the channels before anything else: blind to colour by construction. */
function colourBlindModel(): Model {
  const g = new GraphBuilder('colour-blind', 17);
  const random = seededRandom(9);
  const x = g.input('input', 'float32', ['batch', 2, 14, 14]);
  const grey = g.node(
    'ReduceSum',
    [x, g.initializer('axes', tensor('int64', [1], [1]))],
    { keepdims: int(0) },
    '/grey/ReduceSum',
  );
  const flat = g.node('Flatten', [grey], {}, '/flat/Flatten');
  const weight = g.initializer(
    'fc.weight',
    tensor(
      'float32',
      [2, 196],
      Array.from({ length: 392 }, () => random() - 0.5),
    ),
  );
  g.output(g.node('Gemm', [flat, weight], { transB: int(1) }, '/fc/Gemm', 'logits'), 'float32');
  return Model.fromProto(g.build(), 'colour-blind', { threads: 1 });
}

describe('counterfactual shortcut and robustness', () => {
  const task = loadTask('colored-mnist');
  const n = 1000;
  const images = sliceRows(task.train.inputs, 0, n);
  const data: AuditData = {
    path: 'colored-mnist',
    inputs: inMemory(images),
    labels: Int32Array.from(sliceRows(task.train.labels, 0, n).data as BigInt64Array, Number),
    layout: { kind: 'image', channels: 2, height: 14, width: 14 },
    attributes: [
      { name: 'color', values: Float64Array.from(task.train.attributes!.color.subarray(0, n)) },
    ],
  };

  it('transforms read the same whatever the batching: random draws are seeded per example', () => {
    for (const name of ['noise', 'occlude'] as const) {
      const whole = applyTransform(name, images, { seed: 3 });
      const batched = transformExamples(name, data.inputs, { seed: 3 });
      const pieces = concatRows([batched.read(0, 7), batched.read(7, 400), batched.read(400, n)]);
      assert.deepEqual(pieces.data, whole.data, name);
    }
  });

  it('channel-swap and grayscale do what they say', () => {
    const swapped = applyTransform('channel-swap', images);
    const grey = applyTransform('grayscale', images);
    const pixels = images.data as Float32Array;
    for (const k of [0, 100, 196 + 50, 392 * 7 + 13]) {
      const within = k % 392,
        base = k - within,
        other = base + ((within + 196) % 392);
      assert.equal((swapped.data as Float32Array)[k], pixels[other]);
      assert.ok(Math.abs((grey.data as Float32Array)[k] - (pixels[k] + pixels[other]) / 2) < 1e-7);
    }
  });

  it('a colour-blind model is silent under channel-swap; the colour alone still predicts ~85% of labels', async () => {
    const model = colourBlindModel();
    try {
      const base = await predict(model, data.inputs);
      const check = await shortcutCheck(
        model,
        data,
        base,
        { attribute: 'color', transform: 'channel-swap' },
        config,
        512,
      );
      assert.equal(check.effect, 0);
      assert.deepEqual(findingsOf([check]), []);
      const alone = (check.evidence as { attributeAlone: { accuracy: number } }).attributeAlone
        .accuracy;
      assert.ok(alone > 0.8 && alone < 0.9, `colour alone ${alone}`);
    } finally {
      await model.release();
    }
  });

  it('robustness is silent when noise cannot move a prediction, and flags a fragile model', async () => {
    const model = colourBlindModel();
    try {
      const base = await predict(model, data.inputs);
      const fragile = await robustnessCheck(
        model,
        data,
        base,
        { ...config, robustness: { ...config.robustness, imageNoise: 0.5 } },
        512,
      );
      assert.ok(
        fragile && findingsOf([fragile]).length === 1,
        `σ = 0.5 noise flips ${fragile?.effect.toFixed(1)} pts`,
      );
      const tiny = await robustnessCheck(
        model,
        data,
        base,
        { ...config, robustness: { ...config.robustness, imageNoise: 1e-6 } },
        512,
      );
      assert.deepEqual(findingsOf([tiny!]), []);
    } finally {
      await model.release();
    }
  });

  it('an .npy dataset streams through the audit: the same result at any batch size', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'x.npy'), encodeNpy(images));
    const streamed: AuditData = { ...data, inputs: fromNpy(new NpyFile(join(dir, 'x.npy'))) };
    const model = colourBlindModel();
    try {
      const options = {
        config,
        counterfactuals: [
          { attribute: 'color', transform: 'channel-swap' as const },
          { attribute: 'color', transform: 'occlude' as const },
        ],
      };
      const small = await auditModel(model, streamed, { ...options, batchSize: 37 });
      const large = await auditModel(model, data, { ...options, batchSize: 1000 });
      assert.deepEqual(small.findings, large.findings);
      assert.deepEqual(small.calibration, large.calibration);
      assert.ok(small.tests > 5);
    } finally {
      await model.release();
    }
  });
});
