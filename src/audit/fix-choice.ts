/**
 * What `audit --try-fixes` retrains, and grouped by which attribute (fixes.ts runs the fixes):
 *   the spec given (a --train-spec file), else the spec a model trained by teardown carries, else
 *   — a model teardown did not train — a fine-tuning of the model itself on the audit's data
 *   (foreignFixSpec); settled and checked (fixPlan) before the audit runs.
 *   The attribute: that of the first shortcut-attribute finding the retraining task has, else the
 *   task's first; every retrained model is re-audited with the audit's counterfactual for it.
 */
import type { Model } from '../runtime/model.ts';
import { storedTrainSpec } from '../train/read-spec.ts';
import type { TrainSpec } from '../train/spec.ts';
import type { AuditData } from './data.ts';
import type { Finding } from './findings.ts';
import { fixPlan, foreignFixSpec, type AuditDataSource, type FixPlan } from './fixes.ts';
import type { Counterfactual } from './shortcut.ts';

/** `given`: a spec read from a --train-spec file (train/read-spec.ts), if any. */
export function chooseFixPlan(
  model: Model,
  given: TrainSpec | undefined,
  data: AuditData,
  shifted: AuditData | undefined,
  source: AuditDataSource,
): FixPlan {
  const spec = given ?? storedTrainSpec(model.proto, `'${model.path}'`);
  if (spec) return fixPlan(spec, data, shifted);
  return { ...fixPlan(foreignFixSpec(model, data, source), data, shifted), fromAudited: true };
}

export function chooseFixAttribute(
  plan: FixPlan,
  findings: readonly Finding[],
  counterfactuals: readonly Counterfactual[],
): { attribute: string; counterfactual?: Counterfactual } {
  const named = findings.find(
    (f) => f.detector === 'shortcut-attribute' && plan.attributes.includes(f.attribute!),
  )?.attribute;
  const attribute = named ?? plan.attributes[0];
  return { attribute, counterfactual: counterfactuals.find((c) => c.attribute === attribute) };
}
