/**
 * Training as a library call: the train command's defaults for what the spec leaves out
 * (train/read-spec.ts, the one reader of specs), progress through `onProgress` (every step),
 * cancellation through `signal` (checked between steps), and the trained model written to `out`
 * only once training has finished — an aborted run writes nothing.
 *
 *   const run = await train({ task: 'mnist', model: 'mlp:hidden=64', steps: 200 }, { onProgress: (e) => log(e.done) });
 *   const trained = run.trained;                       // a Model, ready for runWithCache
 */
import { writeModelFile } from '../onnx/model-file.ts';
import type { ProgressOptions } from '../progress.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { externalInitializers, writeModelKeepingExternalData } from '../train/save.ts';
import { completeSpec, type TrainSpecInput } from '../train/read-spec.ts';
import { train as runTraining, type CurvePoint, type TrainResult } from '../train/trainer.ts';
import { Model } from './model.ts';

export type { TrainSpecInput };

export interface TrainCallOptions extends Omit<ProgressOptions, 'progress'>, RuntimeOptions {
  /** Where to save the trained model (.onnx); nothing is written if the run fails or is aborted. */
  out?: string;
  /** Called at every evaluation (curve point). */
  onEvaluation?: (point: CurvePoint, totalSteps: number) => void;
}

export interface TrainOutput extends TrainResult {
  /** The trained model, loaded for analysis. */
  trained: Model;
}

export async function train(
  spec: TrainSpecInput,
  options: TrainCallOptions = {},
): Promise<TrainOutput> {
  const full = completeSpec(spec);
  const runtime: RuntimeOptions = { threads: options.threads, verbose: options.verbose };
  const result = await runTraining(full, {
    runtime,
    onProgress: options.onProgress,
    signal: options.signal,
    onEvaluation: options.onEvaluation,
  });
  if (options.out) {
    if (full.from)
      writeModelKeepingExternalData(
        options.out,
        result.model,
        externalInitializers(full.from.path),
      );
    else writeModelFile(options.out, result.model);
  }
  return {
    ...result,
    trained: Model.fromProto(result.model, options.out ?? `trained ${full.model}`, runtime),
  };
}
