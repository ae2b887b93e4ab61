/**
 * Fine-tuning an existing ONNX model: the plan of what trains (foreign.ts), the step loop over
 * the graph as trained (stepper.ts), and the trained values written back into the model as it
 * was read. The exported graph is what is trained — PyTorch's eval() mode: no Dropout, BatchNorm
 * by its running statistics (frozen), a BatchNorm folded into a Conv trained as the folded Conv.
 */
import type { LossSpec } from '../autodiff/loss.ts';
import { derive } from '../graph/edit.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { Model } from '../runtime/model.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import {
  fineTuningPlan,
  withTrainedValues,
  type FineTuningPlan,
  type ParameterSelection,
} from './foreign.ts';
import type { OptimizerSpec } from './optimizers.ts';
import { Stepper } from './stepper.ts';

export interface FineTuningSetup {
  plan: FineTuningPlan;
  /** The graph as trained (tied copies as Transposes), as a Model for sessions and probes. */
  trainingModel: Model;
  stepper: Stepper;
}

/** Plans the fine-tuning of `model` and builds its step loop for batches shaped like `feeds`. */
export async function setUpFineTuning(
  model: Model,
  selection: ParameterSelection,
  feeds: Feeds,
  target: Tensor,
  loss: LossSpec,
  optimizer: OptimizerSpec,
  clipNorm: number | undefined,
  runtime: RuntimeOptions,
): Promise<FineTuningSetup> {
  const plan = fineTuningPlan(model, selection, loss.output ?? model.outputNames[0]);
  const trainingModel = Model.fromProto(plan.proto, model.path, runtime);
  const parameters = plan.parameters.map((p) => p.initializer);
  const stepper = await Stepper.create(
    trainingModel,
    feeds,
    target,
    loss,
    optimizer,
    clipNorm,
    runtime,
    { parameters, batchNorm: 'running-statistics' },
  );
  return { plan, trainingModel, stepper };
}

/** The model as read, with the trained values and `metadata` (replacing earlier teardown.* entries). */
export function fineTunedModel(
  original: ModelProto,
  plan: FineTuningPlan,
  values: ReadonlyMap<string, Tensor>,
  metadata: { key: string; value: string }[],
): ModelProto {
  const updated = withTrainedValues(original, plan, values);
  const keys = new Set(metadata.map((entry) => entry.key));
  return derive(updated, {
    metadataProps: [
      ...original.metadataProps.filter(
        (entry) => !keys.has(entry.key) && !entry.key.startsWith('teardown.checkpoint'),
      ),
      ...metadata,
    ],
  });
}
