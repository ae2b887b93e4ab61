/**
 * Fixes as experiments (audit --try-fixes): retrain the audited model's training spec with
 * group-balanced reweighting, Just-Train-Twice and IRMv1 (train/objective.ts), and measure each
 * on the task's own in-distribution (training) and out-of-distribution (test) splits, next to
 * the audited model itself. Measured, not promised: every row is a training run made here.
 */
import { InputError } from '../errors.ts';
import { loadTask } from '../data/tasks.ts';
import type { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { predictClasses } from '../train/evaluate.ts';
import { describeObjective, type Objective } from '../train/objective.ts';
import { checkSpec, type TrainSpec } from '../train/spec.ts';
import { train } from '../train/trainer.ts';

export interface FixRow {
  method: string;
  inDistribution: number;
  outOfDistribution: number;
  settings: string;
  seconds: number;
}

export interface FixesResult {
  description: string;
  attribute: string;
  spec: TrainSpec;
  rows: FixRow[];
}

/** IRMv1 as Arjovsky et al. train it on Colored MNIST: full batch, penalty annealed in after a warm start. */
export const IRM_SETTINGS = { steps: 500, penaltyWeight: 1e4, annealSteps: 100 };
export const JTT_UPWEIGHT = 6;

/** The training spec a teardown-trained model carries in its metadata. */
export function storedTrainSpec(model: Model): TrainSpec | undefined {
  const entry = model.proto.metadataProps.find((prop) => prop.key === 'teardown.train_spec');
  return entry ? (JSON.parse(entry.value) as TrainSpec) : undefined;
}

/** Refuses, before any work, a spec whose task lacks every one of the audit's attributes (the fixes group by one). */
export function checkFixable(spec: TrainSpec, attributes: string[]): void {
  checkSpec(spec);
  if (!attributes.length) throw new InputError('--try-fixes groups the training data by the shortcut attribute: give one with --attribute NAME=FILE (and --counterfactual NAME:TRANSFORM).');
  const taskAttributes = Object.keys(loadTask(spec.task, spec.taskOptions).train.attributes ?? {});
  if (!attributes.some((name) => taskAttributes.includes(name))) {
    throw new InputError(`--try-fixes retrains on task '${spec.task}' grouped by the shortcut attribute, but the task has ${taskAttributes.length ? `the attributes ${taskAttributes.join(', ')}` : 'no per-example attributes'} and the audit names ${attributes.join(', ')}: name the attribute as the task does (e.g. --attribute color=FILE).`);
  }
}

export async function tryFixes(model: Model, spec: TrainSpec, attribute: string, runtime: RuntimeOptions, onRow?: (row: FixRow) => void): Promise<FixesResult> {
  checkFixable(spec, [attribute]);
  const task = loadTask(spec.task, spec.taskOptions);
  const accuracy = async (candidate: Model) => {
    const rate = async (split: typeof task.train) => {
      const predicted = await predictClasses(candidate, split.inputs);
      return predicted.reduce((right, p, i) => right + (p === Number(split.labels.data[i]) ? 1 : 0), 0) / predicted.length;
    };
    return { inDistribution: await rate(task.train), outOfDistribution: await rate(task.test) };
  };
  const rows: FixRow[] = [];
  const add = (row: FixRow) => { rows.push(row); onRow?.(row); };
  add({ method: 'as audited (ERM)', ...(await accuracy(model)), settings: `${spec.model}, ${describeObjective(spec.objective)}`, seconds: 0 });

  const trainRows = task.train.labels.dims[0];
  const epochSteps = spec.batch === 'full' ? 1 : Math.ceil(trainRows / Math.min(spec.batch, trainRows));
  const variants: { method: string; spec: TrainSpec }[] = [
    { method: 'group-balanced reweighting', spec: { ...spec, objective: { kind: 'reweight', attributes: [attribute] } } },
    { method: 'Just-Train-Twice', spec: { ...spec, objective: { kind: 'jtt', identificationSteps: epochSteps, upweight: JTT_UPWEIGHT } } },
    { method: 'IRMv1', spec: { ...spec, batch: 'full', steps: IRM_SETTINGS.steps, epochs: undefined, objective: { kind: 'irm', penaltyWeight: IRM_SETTINGS.penaltyWeight, annealSteps: IRM_SETTINGS.annealSteps } as Objective } },
  ];
  for (const variant of variants) {
    const started = Date.now();
    const result = await train({ ...variant.spec, evalEvery: Number.MAX_SAFE_INTEGER }, { runtime });
    const seconds = (Date.now() - started) / 1000;
    add({ method: variant.method, inDistribution: result.final.trainAccuracy, outOfDistribution: result.final.testAccuracy, settings: `${describeObjective(variant.spec.objective)}; ${variant.spec.batch === 'full' ? 'full batch' : `batch ${variant.spec.batch}`}, ${result.steps} steps`, seconds });
  }
  return { description: `${task.description}. Each fix retrains ${spec.model} from the audited model's spec (seed ${spec.seed}); in distribution = the training environments, out of distribution = the test split.`, attribute, spec, rows };
}
