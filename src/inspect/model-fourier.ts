/**
 * `teardown inspect --fourier P` on a model: fourier.ts's analysis scored on the model's own
 * training pairs when its stored training spec (train/read-spec.ts) says it learned
 * modular-addition mod P, else on all P² pairs; over the MLP's units (module hooks named
 * `….mlp.1`) or, in a model without module scopes, its nonlinearities.
 */
import { modularAdditionTrainPairs } from '../data/tasks.ts';
import type { ProgressOptions } from '../progress.ts';
import type { Model } from '../runtime/model.ts';
import { storedTrainSpec } from '../train/read-spec.ts';
import { nonlinearityHooks } from './default-hooks.ts';
import { fourierAnalysis, type FourierResult } from './fourier.ts';

export interface ModelFourier {
  fourier: FourierResult;
  /** The pairs it was scored on when they came from the model's training spec; all P² otherwise. */
  trainPairs?: Int32Array;
  /** The share of the embedding's energy at the key frequencies. */
  keyEnergyShare: number;
}

export async function modelFourier(
  model: Model,
  modulus: number,
  options: ProgressOptions & { hooks?: string[] } = {},
): Promise<ModelFourier> {
  const spec = storedTrainSpec(model.proto, `'${model.path}'`);
  const fromSpec =
    spec?.task === 'modular-addition' && (spec.taskOptions.modulus ?? 113) === modulus;
  const trainPairs = fromSpec
    ? modularAdditionTrainPairs(
        modulus,
        spec.taskOptions.trainFraction ?? 0.3,
        spec.taskOptions.dataSeed ?? 0,
      )
    : undefined;
  const mlpHooks = model.hooks.hooks
    .filter((hook) => hook.kind === 'module' && /mlp\.1$/.test(hook.name))
    .map((hook) => hook.name);
  // A model without module scopes (bare parameters): its nonlinearities are the MLP's units.
  const hooks =
    options.hooks ??
    (mlpHooks.length ? mlpHooks : nonlinearityHooks(model).map((hook) => hook.name));
  const fourier = await fourierAnalysis(model, modulus, {
    trainPairs,
    hooks,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  const keyEnergyShare = fourier.keyFrequencies.reduce(
    (sum, k) => sum + (fourier.embeddingEnergy[k - 1] ?? 0),
    0,
  );
  return { fourier, trainPairs, keyEnergyShare };
}
