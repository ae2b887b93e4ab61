/**
 * `backprop-teardown` as a library: everything the `teardown` command does, callable from TypeScript.
 * This file only lists what is public; each name lives in the module of its layer (docs/design.md).
 */

// Models and runs: load an ONNX model, read its hooks, run it with a cache or with interventions.
export { Model } from './runtime/model.ts';
export type { InputSpec } from './runtime/model.ts';
export type { RuntimeOptions } from './runtime/session.ts';
export { run, runWithCache, runWithInterventions, prepareInterventions, PreparedInterventions } from './runtime/run.ts';
export type { RunOptions, RunResult, Dataset } from './runtime/run.ts';
export { runDataset } from './runtime/run-dataset.ts';
export type { DatasetRunOptions, DatasetRunSummary } from './runtime/run-dataset.ts';

// Hooks: every module output and raw value of the graph, by name.
export { HookTable } from './graph/hooks.ts';
export type { Hook, AbsentModule, FoldedBatchNorm } from './graph/hooks.ts';
export { listHooks } from './inspect/list-hooks.ts';
export type { HookListing } from './inspect/list-hooks.ts';

// Interventions on hooks.
export { ablate, patch, scale, addVector, projectOut } from './graph/interventions.ts';
export type { Intervention, AblationMethod, Selection } from './graph/interventions.ts';

// Gradients and attributions.
export { computeGradients, GradientProgram, parameterNames } from './autodiff/gradients.ts';
export type { GradientRequest, GradientResult } from './autodiff/gradients.ts';
export type { LossSpec } from './autodiff/loss.ts';
export { integratedGradients, hookIntegratedGradients } from './inspect/integrated-gradients.ts';
export type { IntegratedGradients, IntegratedGradientsOptions } from './inspect/integrated-gradients.ts';

// Inspection, audits and training.
export { inspectModel as inspect } from './inspect/inspect.ts';
export type { InspectOptions, InspectResult, InspectedUnit } from './inspect/inspect.ts';
export { auditModel as audit } from './audit/audit.ts';
export type { AuditOptions, AuditResult } from './audit/audit.ts';
export type { AuditData } from './audit/data.ts';
export { train } from './train/trainer.ts';
export type { TrainOptions, TrainResult } from './train/trainer.ts';
export type { TrainSpec } from './train/spec.ts';

// Tensors and .npy files.
export { tensor, floatTensor, elementCount, sliceRows, concatRows, shapeString } from './tensor.ts';
export type { Tensor, TensorData, DType, Feeds } from './tensor.ts';
export { readNpy, encodeNpy, NpyFile } from './data/npy.ts';

// Errors: a UserError (and its kinds) is a mistake in the input, with the fix in its message.
export { UserError, ModelError, InputError, HookError, InterventionError } from './errors.ts';
export { AutodiffError } from './autodiff/errors.ts';

export { VERSION } from './version.ts';
