/**
 * teardown as a library: everything a TypeScript user imports. The package entry (src/index.ts)
 * re-exports this.
 */
export { Model, type HookEdit, type HookInfo, type LoadOptions, type RunOptions, type RunOutput } from './model.ts';
export { ActivationCache } from './cache.ts';
export { Tensor, type DType, type NestedArray, type OrtTensor, type TensorData, type TensorLike } from './tensor.ts';
export type { InputValue, Inputs } from './inputs.ts';
export { ablate, addVector, patch, projectOut, scale, type AblationMethod, type Intervention, type Selection } from './interventions.ts';
export { gradients, integratedGradients, type GradientOptions, type GradientsResult, type IntegratedGradientsOptions, type IntegratedGradientsResult } from './gradients.ts';
export { inspect, type Dataset, type InspectCallOptions, type InspectResult } from './inspect.ts';
export { audit, type AuditCallOptions, type AuditConfig, type AuditDataInput, type AuditResult, type Classifier } from './audit.ts';
export { train, type TrainCallOptions, type TrainOutput, type TrainSpecInput } from './train.ts';
export type { ProgressEvent, ProgressOptions } from '../progress.ts';
export { HookError, InputError, InterventionError, ModelError, UserError } from '../errors.ts';
