/**
 * Gradients and integrated gradients as library calls, returning what `teardown grad` and
 * `inspect --integrated-gradients` compute, with tensors by name.
 *
 *   const { loss, gradients } = await gradients(model, x, { target: y, wrt: ['params', 'input'] });
 *   const ig = await integratedGradients(model, x, { target: y, at: 'blocks.0', steps: 64 });
 */
import { computeGradients } from '../autodiff/gradients.ts';
import type { LossKind } from '../autodiff/loss.ts';
import {
  hookIntegratedGradients,
  integratedGradients as inputIntegratedGradients,
} from '../inspect/integrated-gradients.ts';
import type { ProgressOptions } from '../progress.ts';
import { toFeeds, type Inputs } from './inputs.ts';
import type { Model } from './model.ts';
import { Tensor, type TensorLike } from './tensor.ts';

export interface GradientOptions {
  /** int64 class indices (cross-entropy), or values shaped like the output (mse). */
  target: TensorLike;
  loss?: LossKind;
  /** 'input' (every float input), 'params' (every parameter, under PyTorch's names), hook names or patterns; default ['params']. */
  wrt?: readonly string[];
  /** The output the loss scores; default the first. */
  output?: string;
  /** Cross-entropy on sequences: every position (default) or the last. */
  positions?: 'all' | 'last';
  /** Cross-entropy: targets equal to this are left out (PyTorch's ignore_index, default −100). */
  ignoreIndex?: number;
  signal?: AbortSignal;
}

export interface GradientsResult {
  /** The mean loss over the scored positions. */
  loss: number;
  gradients: Record<string, Tensor>;
}

/** One forward+backward run: the loss and its gradient with respect to each of `wrt`. */
export async function gradients(
  model: Model,
  inputs: Inputs,
  options: GradientOptions,
): Promise<GradientsResult> {
  options.signal?.throwIfAborted();
  const kind = options.loss ?? 'cross-entropy';
  const result = await computeGradients(
    model.runtime,
    toFeeds(model.runtime, inputs),
    Tensor.from(options.target),
    {
      loss: {
        kind,
        output: options.output,
        positions: options.positions,
        ignoreIndex: kind === 'cross-entropy' ? (options.ignoreIndex ?? -100) : undefined,
      },
      wrt: options.wrt ?? ['params'],
    },
  );
  return {
    loss: result.loss,
    gradients: Object.fromEntries(
      [...result.gradients].map(([name, value]) => [name, Tensor.from(value)]),
    ),
  };
}

export interface IntegratedGradientsOptions extends Omit<ProgressOptions, 'progress'> {
  /** The class whose score is attributed, one per example (int64 or int32). */
  target: TensorLike;
  /** A hook to attribute at (layer integrated gradients); default the model's first input. */
  at?: string;
  /** a′: zeros (default), 'mean' (the mean over the examples), or a tensor (one example for all, or one per example). */
  baseline?: TensorLike | 'mean';
  steps?: number;
  /** Rows (points × examples) per gradient run; default 1024. */
  maxRows?: number;
}

export interface IntegratedGradientsResult {
  /** Shaped as the attributed value. */
  attributions: Tensor;
  /** F(a) − F(a′) per example. */
  scoreDifference: Float64Array;
  /** Largest |Σ attributions − (F(a) − F(a′))| relative to the mean |F(a) − F(a′)|. */
  completenessError: number;
}

export async function integratedGradients(
  model: Model,
  inputs: Inputs,
  options: IntegratedGradientsOptions,
): Promise<IntegratedGradientsResult> {
  options.signal?.throwIfAborted();
  const feeds = toFeeds(model.runtime, inputs);
  const settings = {
    baseline: options.baseline,
    steps: options.steps,
    maxRows: options.maxRows,
    onProgress: options.onProgress,
    signal: options.signal,
  };
  const target = Tensor.from(options.target);
  const result =
    options.at === undefined
      ? await inputIntegratedGradients(
          model.runtime,
          feeds,
          model.runtime.inputs[0].name,
          target,
          settings,
        )
      : await hookIntegratedGradients(model.runtime, feeds, options.at, target, settings);
  return { ...result, attributions: Tensor.from(result.attributions) };
}
