/**
 * Integrated gradients (Sundararajan et al. 2017), at an input or at a hook.
 *
 * For a value a (an input x, or a hook's value at x — Captum's LayerIntegratedGradients) and a
 * baseline a′ (zeros unless given), attrᵢ = (aᵢ − a′ᵢ) · ∫₀¹ ∂F(a′ + α(a − a′))/∂aᵢ dα, where F is
 * the target class's score computed from a onward (everything upstream of a hook held at x, other
 * inputs unchanged). The integral is taken by the midpoint rule over `steps` points (its error
 * falls as 1/steps² where the path is smooth; Gauss–Legendre, Captum's default, did no better on
 * the corpus, whose paths cross ReLU kinks), all points stacked along the batch axis and
 * differentiated in as few runs as fit `maxRows`. Completeness —
 * Σᵢ attrᵢ = F(a) − F(a′) — holds up to the quadrature error, which is reported.
 *
 * At a hook, the model is edited so that the hook's value is fed (graph/edit.ts 'replace'), the
 * points of the path are fed there, and the gradient is taken with respect to that input.
 */
import { GradientProgram } from '../autodiff/gradients.ts';
import { InputError } from '../errors.ts';
import { valueInfo } from '../graph/builder.ts';
import { applyEdits, derive } from '../graph/edit.ts';
import type { Hook } from '../graph/hooks.ts';
import {
  batchLayoutOf,
  examplesFirst,
  fromExamplesFirst,
  type BatchLayout,
} from '../graph/units.ts';
import type { Model } from '../runtime/model.ts';
import { probeHookShapes } from '../runtime/probe.ts';
import { runWithCache } from '../runtime/run.ts';
import { trackProgress, type ProgressOptions } from '../progress.ts';
import { concatRows, elementCount, repeatRows, type Feeds, type Tensor } from '../tensor.ts';

export interface IntegratedGradients {
  /** Same shape as the attributed value (the input, or the hook in its own layout). */
  attributions: Tensor;
  /** F(a) − F(a′) per example. */
  scoreDifference: Float64Array;
  /**
   * Largest |Σ attributions − (F(a) − F(a′))| over the examples, relative to the mean |F(a) − F(a′)|
   * (relative to each example's own difference, an example whose score barely moves would make any
   * quadrature error look huge).
   */
  completenessError: number;
}

/** `onProgress` hears every gradient run; `signal` is checked between them. */
export interface IntegratedGradientsOptions extends ProgressOptions {
  /** a′: one example (used for all) or one per example, in the attributed value's layout; 'mean' for a's mean over the examples; zeros by default. */
  baseline?: Tensor | 'mean';
  steps?: number;
  /** Rows (points × examples) per gradient run; default 1024. */
  maxRows?: number;
}

/** Integrated gradients of the target class's score with respect to the float input `input` (other inputs unchanged). */
export async function integratedGradients(
  model: Model,
  feeds: Feeds,
  input: string,
  targetClass: Tensor,
  options: IntegratedGradientsOptions = {},
): Promise<IntegratedGradients> {
  const x = feeds[input];
  if (!x)
    throw new InputError(
      `No feed for input '${input}': the model's inputs are ${model.describeInputs()}.`,
    );
  if (x.dtype !== 'float32')
    throw new InputError(
      `Integrated gradients need a float input; '${input}' is ${x.dtype}: attribute at a hook after its embedding instead.`,
    );
  const scores = (await runWithCache(model, feeds, [])).outputs[model.outputNames[0]];
  return integrate(
    {
      model,
      fed: input,
      layout: { axis: 0, perExample: 1, interleaved: false },
      value: x,
      feeds,
      scores,
    },
    targetClass,
    options,
  );
}

/** Integrated gradients of the target class's score with respect to a hook's value (layer integrated gradients). */
export async function hookIntegratedGradients(
  model: Model,
  feeds: Feeds,
  hookName: string,
  targetClass: Tensor,
  options: IntegratedGradientsOptions = {},
): Promise<IntegratedGradients> {
  const hook = model.hooks.resolve(hookName);
  if (hook.op === 'input')
    return integratedGradients(model, feeds, hook.value, targetClass, options);
  if (hook.dtype !== 'float32')
    throw new InputError(
      `Hook '${hook.name}' holds ${hook.dtype ?? 'an unknown type'}: integrated gradients need float32 values.`,
    );
  const dims = (await probeHookShapes(model, feeds, [hook])).get(hook.name)!;
  const layout = batchLayoutOf(dims);
  if (!layout)
    throw new InputError(
      `Hook '${hook.name}' (shape [${dims.join(', ')}]) has no batch axis: it is the same for every example, so there is nothing to attribute per example. Pick a hook with one value per example.`,
    );
  if (layout.axis === 0 && layout.perExample > 1)
    throw new InputError(
      `Hook '${hook.name}' (shape [${dims.join(', ')}]) merges ${layout.perExample} entries per example into its first axis; integrated gradients at such a hook are not supported: pick the module hook around it.`,
    );
  const { cache, outputs } = await runWithCache(model, feeds, [hook.name]);
  const fed = fedName(hook);
  const fedModel = await model.variant(`fed ${hook.value}`, async () =>
    feedHook(model, hook, fed, dims),
  );
  return integrate(
    {
      model: fedModel,
      fed,
      layout,
      value: cache.get(hook.name)!,
      feeds,
      scores: outputs[model.outputNames[0]],
    },
    targetClass,
    options,
  );
}

const fedName = (hook: Hook) => `teardown::fed::${hook.value}`;

/** The model with `hook`'s value replaced by a new input of the hook's probed dims. */
function feedHook(model: Model, hook: Hook, fed: string, dims: readonly (number | string)[]) {
  const { proto } = applyEdits(model.graph, {
    expose: [],
    rewrites: [{ kind: 'replace', value: hook.value, input: fed }],
    inputTypes: new Map([[fed, 'float32']]),
  });
  const input = proto.graph.input.map((info) =>
    info.name === fed ? valueInfo(fed, 'float32', dims) : info,
  );
  return Promise.resolve(derive(proto, { graph: derive(proto.graph, { input }) }));
}

interface Attributed {
  /** The model whose input `fed` carries the attributed value. */
  model: Model;
  fed: string;
  layout: BatchLayout;
  /** a, in its own layout. */
  value: Tensor;
  /** The original feeds (every input; `fed` among them when attributing an input). */
  feeds: Feeds;
  /** The model's first output at the feeds: F(a) is read from it. */
  scores: Tensor;
}

async function integrate(
  target: Attributed,
  targetClass: Tensor,
  options: IntegratedGradientsOptions,
): Promise<IntegratedGradients> {
  const steps = options.steps ?? 64;
  const batch = targetClass.dims[0];
  const rows = examplesFirst(target.value, target.layout); // [batch·k, ...]
  const baselineRows =
    options.baseline === 'mean'
      ? meanOverExamples(rows, batch)
      : baselineOf(rows, batch, options.baseline && examplesFirst(options.baseline, target.layout));
  const perExample = elementCount(rows.dims) / batch;
  const path: Path = {
    target,
    rows,
    baselineRows,
    batch,
    targetClass,
    pointsPerRun: Math.max(1, Math.floor((options.maxRows ?? 1024) / batch)),
  };

  const mean = new Float64Array(rows.data.length); // ∫₀¹ ∂F/∂a dα ≈ (1/steps)·Σₖ ∂F/∂a(αₖ), αₖ = (k + ½)/steps
  const programs = new Map<number, GradientProgram>();
  const progress = trackProgress(
    'integrated gradients',
    Math.ceil(steps / path.pointsPerRun),
    options,
  );
  try {
    for (let first = 0; first < steps; first += path.pointsPerRun) {
      const points = Math.min(path.pointsPerRun, steps - first);
      const feeds = pointFeeds(path, points, (k) => (first + k + 0.5) / steps);
      const targets = repeatRows(targetClass, points);
      if (!programs.has(points))
        programs.set(
          points,
          await GradientProgram.build(target.model, feeds, targets, {
            loss: { kind: 'score' },
            wrt: [target.fed],
          }),
        );
      const { gradients } = await programs.get(points)!.run(feeds, targets);
      const gradient = examplesFirst(gradients.get(target.fed)!, target.layout).data;
      for (let i = 0; i < gradient.length; i++)
        mean[i % mean.length] += Number(gradient[i]) / steps;
      progress.tick();
    }
  } finally {
    for (const program of programs.values()) await program.release();
  }
  const attributionRows = Float32Array.from(
    mean,
    (g, i) => g * ((rows.data[i] as number) - baselineRows[i]),
  );

  const atBaseline = await scoresAt(path, 0);
  const scoreDifference = Float64Array.from(
    targetScores(target.scores, targetClass),
    (value, b) => value - atBaseline[b],
  );
  const typical = scoreDifference.reduce((sum, value) => sum + Math.abs(value), 0) / batch;
  let completenessError = 0;
  for (let b = 0; b < batch; b++) {
    let sum = 0;
    for (let i = b * perExample; i < (b + 1) * perExample; i++) sum += attributionRows[i];
    completenessError = Math.max(
      completenessError,
      Math.abs(sum - scoreDifference[b]) / Math.max(1e-12, typical),
    );
  }
  const attributions = fromExamplesFirst({ ...rows, data: attributionRows }, target.layout);
  return { attributions, scoreDifference, completenessError };
}

/** The straight path a′ + α(a − a′) of every example, and how to feed points of it. */
interface Path {
  target: Attributed;
  /** a and a′, examples first. */
  rows: Tensor;
  baselineRows: Float64Array;
  batch: number;
  targetClass: Tensor;
  pointsPerRun: number;
}

/** Feeds for `points` points of every example's path stacked along the batch axis, point k at α = alpha(k). */
function pointFeeds(path: Path, points: number, alpha: (k: number) => number): Feeds {
  const { rows, baselineRows, target } = path;
  const stacked = concatRows(
    Array.from({ length: points }, (_, k) => ({
      ...rows,
      data: (rows.data as Float32Array).map(
        (value, i) => baselineRows[i] + alpha(k) * (value - baselineRows[i]),
      ),
    })),
  );
  return {
    ...repeatedFeeds(target, points),
    [target.fed]: fromExamplesFirst(stacked, target.layout),
  };
}

/** F at the point α of every example's path. */
async function scoresAt(path: Path, alpha: number): Promise<Float64Array> {
  const { outputs } = await runWithCache(
    path.target.model,
    pointFeeds(path, 1, () => alpha),
    [],
  );
  return targetScores(outputs[path.target.model.outputNames[0]], path.targetClass);
}

/** a′ as examples-first rows: zeros, one example repeated for all, or one per example. */
function baselineOf(rows: Tensor, batch: number, baseline: Tensor | undefined): Float64Array {
  if (!baseline) return new Float64Array(rows.data.length);
  const size = elementCount(baseline.dims);
  if (size !== rows.data.length && size * batch !== rows.data.length) {
    throw new InputError(
      `The baseline has shape [${baseline.dims.join(', ')}]: give one example of the attributed value (shape [1, ${rows.dims.slice(1).join(', ')}]) or one per example.`,
    );
  }
  return Float64Array.from({ length: rows.data.length }, (_, i) => Number(baseline.data[i % size]));
}

/** Each example's block replaced by the mean block over the examples. */
function meanOverExamples(rows: Tensor, batch: number): Float64Array {
  const size = rows.data.length / batch;
  const mean = new Float64Array(size);
  for (let i = 0; i < rows.data.length; i++) mean[i % size] += Number(rows.data[i]) / batch;
  return Float64Array.from({ length: rows.data.length }, (_, i) => mean[i % size]);
}

/** The original inputs, `points` copies stacked along their batch axis (inputs without one as they are). */
function repeatedFeeds(target: Attributed, points: number): Feeds {
  return Object.fromEntries(
    Object.entries(target.feeds).map(([name, value]) => [
      name,
      target.model.hasBatchAxis(name) ? repeatRows(value, points) : value,
    ]),
  );
}

/**
 * F per example: the target class's score summed over the example's scored entries — scores
 * [batch, ..., classes] with class targets [batch, ...] (one per position of a sequence).
 */
function targetScores(scores: Tensor, target: Tensor): Float64Array {
  const classes = scores.dims[scores.dims.length - 1];
  const batch = target.dims[0];
  const perExample = target.data.length / batch;
  const totals = new Float64Array(batch);
  for (let row = 0; row < target.data.length; row++)
    totals[Math.floor(row / perExample)] += Number(
      scores.data[row * classes + Number(target.data[row])],
    );
  return totals;
}
