/**
 * What --try-fixes retrains: a given spec before the model's own, the model's own before a
 * fine-tuning of the model itself (test/fixtures/foreign-shortcut, a PyTorch export without a
 * spec, on its CSV); and the attribute the fixes group by.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { derive } from '../graph/edit.ts';
import { plantedShortcutModel } from '../inspect/planted-shortcut.ts';
import { Model } from '../runtime/model.ts';
import { completeSpec, TRAIN_SPEC_KEY } from '../train/read-spec.ts';
import { loadAuditData } from './data.ts';
import { chooseFixAttribute, chooseFixPlan } from './fix-choice.ts';
import type { Finding } from './findings.ts';
import type { FixPlan } from './fixes.ts';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/foreign-shortcut/', import.meta.url));

describe('chooseFixPlan', () => {
  const table = loadAuditData({
    data: `${FIXTURE}train.csv`,
    labelColumn: 'label',
    attributes: ['shortcut'],
  });
  const shifted = loadAuditData(
    { data: `${FIXTURE}shifted.csv`, labelColumn: 'label', attributes: ['shortcut'] },
    '--shifted',
  );
  const own = completeSpec({
    task: `csv:${FIXTURE}train.csv`,
    model: 'mlp:hidden=4',
    steps: 7,
    taskOptions: { labelColumn: 'label' },
  });
  const proto = plantedShortcutModel();
  const withSpec = Model.fromProto(
    derive(proto, { metadataProps: [{ key: TRAIN_SPEC_KEY, value: JSON.stringify(own) }] }),
    'trained.onnx',
    { threads: 1 },
  );
  const foreign = Model.load(`${FIXTURE}model.onnx`, { threads: 1 });
  after(async () => {
    await withSpec.release();
    await foreign.release();
  });

  it("retrains a given spec before the model's own, and the model's own when none is given", () => {
    const given = { ...own, steps: 3 };
    assert.equal(chooseFixPlan(withSpec, given, table, shifted, {}).spec.steps, 3);
    const stored = chooseFixPlan(withSpec, undefined, table, shifted, {});
    assert.equal(stored.spec.steps, 7);
    assert.equal(stored.fromAudited, undefined);
  });

  it('fine-tunes a model without a spec from its own weights on the audit data', () => {
    const plan = chooseFixPlan(foreign, undefined, table, shifted, { labelColumn: 'label' });
    assert.equal(plan.fromAudited, true);
    assert.equal(plan.spec.task, `csv:${FIXTURE}train.csv`);
    assert.equal(plan.spec.from?.path, foreign.path);
  });
});

describe('chooseFixAttribute', () => {
  const plan = { attributes: ['color', 'environment'] } as FixPlan;
  const finding = (detector: Finding['detector'], attribute: string) =>
    ({ detector, attribute }) as Finding;
  const counterfactuals = [{ attribute: 'environment', transform: 'shuffle' as const, column: 2 }];

  it('groups by the first shortcut-attribute finding the task has, with its counterfactual', () => {
    const findings = [
      finding('weak-segment', 'color'),
      finding('shortcut-attribute', 'site'),
      finding('shortcut-attribute', 'environment'),
    ];
    assert.deepEqual(chooseFixAttribute(plan, findings, counterfactuals), {
      attribute: 'environment',
      counterfactual: counterfactuals[0],
    });
  });

  it("falls back to the task's first attribute, without a counterfactual when the audit has none for it", () => {
    assert.deepEqual(chooseFixAttribute(plan, [], counterfactuals), {
      attribute: 'color',
      counterfactual: undefined,
    });
  });
});
