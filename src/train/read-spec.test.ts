/**
 * The one reader of training specs: a full spec written by an earlier run reads back unchanged,
 * a partial one gets the train command's documented defaults, `labels` folds into an npy: task,
 * and every malformed spec is refused with an InputError before any training.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { InputError } from '../errors.ts';
import { readModelFile } from '../onnx/model-file.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { tempDir } from '../../test/model-files.ts';
import {
  completeSpec,
  parseTrainSpec,
  readTrainSpecFile,
  storedTrainSpec,
  taskWithLabels,
  TRAIN_SPEC_KEY,
} from './read-spec.ts';

const MODADD = fileURLToPath(new URL('../../examples/modadd-113.onnx', import.meta.url));

describe('the training spec reader', () => {
  it("reads the spec stored in a shipped model's metadata back exactly as it was written", () => {
    const { proto } = readModelFile(MODADD);
    const text = proto.metadataProps.find((entry) => entry.key === TRAIN_SPEC_KEY)!.value;
    const spec = storedTrainSpec(proto)!;
    assert.deepEqual(spec, JSON.parse(text));
    assert.equal(JSON.stringify(spec), text, 'same keys in the same order');
  });

  it('fills what a spec leaves out with the train defaults (AdamW 0.9/0.999, lr 0.001, batch 64)', () => {
    const spec = completeSpec({ task: 'mnist', model: 'mlp:hidden=8', steps: 3 });
    assert.deepEqual(spec, {
      task: 'mnist',
      model: 'mlp:hidden=8',
      steps: 3,
      taskOptions: {},
      optimizer: { kind: 'adamw', momentum: 0, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
      lr: 0.001,
      schedule: { warmupSteps: 0, cosine: false },
      batch: 64,
      seed: 0,
      evalEvery: 100,
    });
  });

  it('fills a partial optimizer and schedule key by key', () => {
    const spec = completeSpec({
      task: 'mnist',
      model: 'mlp:hidden=8',
      epochs: 1,
      optimizer: { kind: 'sgd', momentum: 0.9 },
      schedule: { cosine: true },
    });
    assert.deepEqual(spec.optimizer, {
      kind: 'sgd',
      momentum: 0.9,
      weightDecay: 0.01,
      betas: [0.9, 0.999],
      eps: 1e-8,
    });
    assert.deepEqual(spec.schedule, { warmupSteps: 0, cosine: true });
  });

  it('folds --labels into an npy: task, and refuses labels given twice, missing, or for other tasks', () => {
    assert.equal(taskWithLabels('npy:x.npy', 'y.npy'), 'npy:x.npy,y.npy');
    assert.equal(taskWithLabels('npy:x.npy,y.npy', undefined), 'npy:x.npy,y.npy');
    assert.equal(taskWithLabels('mnist', undefined), 'mnist');
    assert.equal(
      completeSpec({ task: 'npy:x.npy', labels: 'y.npy', model: 'mlp:hidden=4', steps: 1 }).task,
      'npy:x.npy,y.npy',
    );
    assert.throws(
      () => taskWithLabels('npy:x.npy', undefined),
      (e: Error) => e instanceof InputError && /--labels LABELS\.npy/.test(e.message),
    );
    assert.throws(
      () => taskWithLabels('npy:x.npy,y.npy', 'z.npy'),
      (e: Error) => e instanceof InputError && /give the labels once/.test(e.message),
    );
    assert.throws(
      () => taskWithLabels('mnist', 'y.npy'),
      (e: Error) => e instanceof InputError && /brings its own/.test(e.message),
    );
    assert.throws(
      () => taskWithLabels('csv:t.csv', 'y.npy'),
      (e: Error) => e instanceof InputError && /--label-column/.test(e.message),
    );
  });

  it('takes the JSON result of teardown train (the spec under "spec") as well as a bare spec', () => {
    const bare = { task: 'mnist', model: 'mlp:hidden=8', steps: 5, lr: 0.1 };
    assert.deepEqual(
      parseTrainSpec({ spec: bare, steps: 5, final: {} }, 'result'),
      parseTrainSpec(bare, 'spec'),
    );
    const dir = tempDir();
    writeFileSync(join(dir, 'spec.json'), JSON.stringify({ spec: bare }));
    assert.equal(readTrainSpecFile(join(dir, 'spec.json')).lr, 0.1);
    writeFileSync(join(dir, 'broken.json'), '{"task": ');
    assert.throws(
      () => readTrainSpecFile(join(dir, 'broken.json')),
      (e: Error) => e instanceof InputError && /not valid JSON/.test(e.message),
    );
  });

  const refusals: [string, unknown, RegExp][] = [
    ['an array', [1, 2], /not a training spec: expected a JSON object/],
    ['a spec without a model', { task: 'mnist', steps: 1 }, /"model" must be a non-empty string/],
    [
      'an optimizer given as a string',
      { task: 'mnist', model: 'mlp:hidden=8', steps: 1, optimizer: 'sgd' },
      /"optimizer" must be an object/,
    ],
    [
      'an unknown optimizer kind',
      { task: 'mnist', model: 'mlp:hidden=8', steps: 1, optimizer: { kind: 'adam' } },
      /must be sgd or adamw, got 'adam'/,
    ],
    [
      'a spec without a length',
      { task: 'mnist', model: 'mlp:hidden=8' },
      /--steps N or --epochs N/,
    ],
    [
      'a learning rate that is text',
      { task: 'mnist', model: 'mlp:hidden=8', steps: 1, lr: 'fast' },
      /learning rate must be a positive number/,
    ],
  ];
  for (const [what, json, message] of refusals) {
    it(`refuses ${what} with an InputError`, () => {
      assert.throws(
        () => parseTrainSpec(json, 'spec.json'),
        (e: Error) => e instanceof InputError && message.test(e.message),
      );
    });
  }

  it('refuses metadata whose spec is not JSON, naming the key', () => {
    const proto = {
      metadataProps: [{ key: TRAIN_SPEC_KEY, value: '{oops' }],
    } as unknown as ModelProto;
    assert.throws(
      () => storedTrainSpec(proto, "'m.onnx'"),
      (e: Error) => e instanceof InputError && /teardown\.train_spec/.test(e.message),
    );
    assert.equal(storedTrainSpec({ metadataProps: [] } as unknown as ModelProto), undefined);
  });

  it("reads a run's --json result as a --train-spec file: the same spec its model carries", () => {
    const fromJson = readTrainSpecFile(MODADD.replace(/\.onnx$/, '.json'));
    assert.deepEqual(fromJson, storedTrainSpec(readModelFile(MODADD).proto));
    assert.equal(
      fromJson.optimizer.weightDecay,
      1,
      'the run used --weight-decay 1.0, not the default',
    );
  });
});
