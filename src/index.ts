/**
 * `backprop-teardown` as a library: everything the `teardown` command does, callable from TypeScript.
 * This file only lists what is public; each name lives in the module of its layer (docs/design.md).
 */

// Models and runs: load an ONNX model, read its hooks, run it with a cache or with interventions.
export { Model } from './api/model.ts';
export type {
  HookEdit,
  HookInfo,
  LoadOptions,
  RunOptions as ModelRunOptions,
  RunOutput,
} from './api/model.ts';
export { ActivationCache } from './api/cache.ts';
export type { Inputs, InputValue } from './api/inputs.ts';
// The model behind the library's Model (model.runtime), taken by the lower-level functions below.
export { Model as RuntimeModel } from './runtime/model.ts';
export type { InputSpec } from './runtime/model.ts';
export type { RuntimeOptions } from './runtime/session.ts';
export { run, runWithCache, runWithInterventions } from './api/runs.ts';
export type { RunResult } from './api/runs.ts';
export { prepareInterventions, PreparedInterventions } from './runtime/run.ts';
export type { RunOptions, Dataset } from './runtime/run.ts';
export { runDataset } from './runtime/run-dataset.ts';
export type { DatasetRunOptions, DatasetRunSummary } from './runtime/run-dataset.ts';

// Hooks: every module output and raw value of the graph, by name.
export { HookTable } from './graph/hooks.ts';
export type { Hook, AbsentModule, FoldedBatchNorm } from './graph/hooks.ts';
export { listHooks } from './inspect/list-hooks.ts';
export type { HookListing } from './inspect/list-hooks.ts';

// Interventions on hooks.
export { ablate, patch, scale, addVector, projectOut } from './graph/interventions.ts';
export { attributeDirection } from './api/direction.ts';
export type { AttributeDirection } from './api/direction.ts';
export type { Intervention, AblationMethod, Selection } from './graph/interventions.ts';

// Gradients and attributions.
export { computeGradients, GradientProgram, parameterNames } from './autodiff/gradients.ts';
export type { GradientRequest, GradientResult } from './autodiff/gradients.ts';
export type { LossSpec } from './autodiff/loss.ts';
export { gradients, integratedGradients } from './api/gradients.ts';
export type {
  GradientOptions,
  GradientsResult,
  IntegratedGradientsOptions,
  IntegratedGradientsResult,
} from './api/gradients.ts';
export {
  hookIntegratedGradients,
  integratedGradients as inputIntegratedGradients,
} from './inspect/integrated-gradients.ts';
export type { IntegratedGradients } from './inspect/integrated-gradients.ts';

// Inspection, audits and training.
export { inspect } from './api/inspect.ts';
export type { AttributeCarriers, InspectCallOptions, InspectOutput } from './api/inspect.ts';
export { inspectModel } from './inspect/inspect.ts';
export type { InspectOptions, InspectResult, InspectedUnit } from './inspect/inspect.ts';
export { audit } from './api/audit.ts';
export type { AuditCallOptions, AuditDataInput, Classifier } from './api/audit.ts';
export { auditModel, shortcutVerdict } from './audit/audit.ts';
export type { AuditOptions, AuditResult, ShortcutUnits, ShortcutVerdict } from './audit/audit.ts';
export type { AuditData } from './audit/data.ts';
export { train } from './api/train.ts';
export type { TrainCallOptions, TrainOutput, TrainSpecInput } from './api/train.ts';
export type { ProgressEvent, ProgressOptions } from './progress.ts';
export type { TrainOptions, TrainResult } from './train/trainer.ts';
export type { TrainSpec } from './train/spec.ts';
// Sweeps: fragility of a training recipe over configurations × seeds (better-sqlite3 loads only when one runs).
export { sweep } from './sweep/sweep.ts';
export type { SweepOptions, SweepResult, SweepStatus } from './sweep/sweep.ts';
export { readSweepSpec, parseSweepSpec } from './sweep/spec.ts';
export type { SweepSpec } from './sweep/spec.ts';
export type { SweepAnalysis } from './sweep/analysis.ts';
// Races: learners that do and do not use backprop on one task, the same rows, clock and audit.
export { race } from './race/race.ts';
export type {
  Accuracy as RaceAccuracy,
  AuditSummary as RaceAuditSummary,
  ContenderResult,
  RaceAuditOptions,
  RaceOptions,
  RaceSplit,
  SeedRun,
} from './race/race.ts';
export { contendersNamed, CONTENDER_NAMES } from './race/contenders.ts';
export type { SharedSettings as ContenderSettings } from './race/contenders.ts';
export type {
  ClassifierSize,
  Contender,
  RaceData,
  TrainedClassifier,
  TrainOptions as ContenderTrainOptions,
} from './race/contender.ts';
export { raceTask, rowsHash } from './race/race-task.ts';
export type { RaceSplitRecord, RaceTask, RaceTaskOptions } from './race/race-task.ts';
export { scorecard, DEFAULT_VERDICT_RULE } from './race/scorecard.ts';
export type {
  AccuracyScore,
  ContenderScore,
  ContenderVerdict,
  DescriptionScore,
  FractionScore,
  RaceSettings,
  RobustnessScore,
  Scorecard,
  ShortcutScore,
  ShortcutVerdict as RaceShortcutVerdict,
  SplitRecord,
  VerdictRule,
} from './race/scorecard.ts';

// Tensors and .npy files.
export { tensor, floatTensor, elementCount, sliceRows, concatRows, shapeString } from './tensor.ts';
export { Tensor } from './api/tensor.ts';
export type { NestedArray, OrtTensor } from './api/tensor.ts';
export type { Tensor as TensorLike, TensorData, DType, Feeds } from './tensor.ts';
export { readNpy } from './api/runs.ts';
export { encodeNpy, NpyFile } from './data/npy.ts';
export { allowNonFinite } from './data/validate.ts';

// Errors: a UserError (and its kinds) is a mistake in the input, with the fix in its message.
export { UserError, ModelError, InputError, HookError, InterventionError } from './errors.ts';
export { AutodiffError } from './autodiff/errors.ts';

export { VERSION } from './version.ts';
