/**
 * `teardown inspect`: take a model apart over a dataset. Streams the data through the model
 * (bounded memory): a census of every unit of the chosen hooks, their association with the labels
 * (roles), their importance (mean ablation, stacked sweeps) and — for feature inputs — the input
 * features that drive each unit. Units come back sorted by importance, most important first.
 */
import { AutodiffError } from '../autodiff/errors.ts';
import { InputError } from '../errors.ts';
import type { Hook } from '../graph/hooks.ts';
import { unitAxisOf } from '../graph/units.ts';
import type { Model } from '../runtime/model.ts';
import { probeHookShapes } from '../runtime/probe.ts';
import { runWithCache, type Dataset } from '../runtime/run.ts';
import { trackProgress, type ProgressOptions, type ProgressTracker } from '../progress.ts';
import { RowSum } from '../tensor-math.ts';
import { concatRows, sliceRows, type Tensor } from '../tensor.ts';
import { CensusAccumulator, type UnitCensus } from './census.ts';
import { unitImportance, type Effect } from './importance.ts';
import { inputDependence } from './input-dependence.ts';
import { datasetGradientTimesActivation } from './attribution.ts';
import type { MetricSpec } from './metric.ts';
import { normalizedOutput } from '../autodiff/loss.ts';
import { AssociationAccumulator, type Role } from './roles.ts';
import { RidgeProbe } from './probe.ts';
import { discoverCircuit, type Circuit } from './circuit.ts';
import { transformerViews, type TransformerViews } from './transformer.ts';
import { chooseHooks } from './default-hooks.ts';
import {
  gradientPositions,
  hookRows,
  readPositions,
  scoringOf,
  type ReadAt,
  type Scoring,
} from './scoring.ts';

export interface InspectOptions extends ProgressOptions {
  hooks?: string[];
  /** Discover a circuit (circuit.ts) on `examples` evenly spaced examples, keeping faithfulness ≥ 1 − tolerance. */
  circuit?: { tolerance: number; examples: number };
  /** Per-example attributes (colour, group, ...), integer-valued, [examples]. */
  attributes?: Map<string, Tensor>;
  /** Default: loss with labels, the change of the output without. */
  metric?: MetricSpec;
  batchSize: number;
  topK?: number;
}

export interface InspectedUnit extends Effect {
  hook: string;
  unit: number;
  census: UnitCensus;
  role?: Role;
  /** Per attribute: the value the unit is most strongly associated with (significant ones only). */
  attributes?: Record<string, Role>;
  /** Mean over examples of ∂score(label)/∂unit · unit (with labels): the linear estimate of zero-ablating it. */
  gradientTimesActivation?: number;
  /** Input features that drive the unit (feature inputs only), strongest first. */
  inputs?: number[];
}

export interface InspectResult {
  examples: number;
  metric: MetricSpec;
  /** What the labels score, from the shape of the model's scores (scoring.ts). */
  scoring?: Scoring;
  /** How the hooks were chosen: named patterns, module hooks, or (no module scopes) one per nonlinearity, last-axis Softmax and data-dependent Add. */
  hookSource: 'patterns' | 'modules' | 'nodes';
  /** Where each hook is read for probes and label roles: a position, every position, or the mean over positions. */
  hooks: {
    hook: string;
    value: string;
    shape: (number | string)[];
    units: number;
    wholeHook: Effect;
    probes: Record<string, number>;
    readAt: ReadAt;
  }[];
  /** Hooks left out, and analyses that could not run, each with the reason. */
  notes: string[];
  units: InspectedUnit[];
  circuit?: Circuit & { metric: MetricSpec; examples: number; tolerance: number };
  /** Logit lens and attention summaries, for transformers (blocks.<i> modules), on up to 2,000 evenly spaced examples. */
  transformer?: TransformerViews;
}

export async function inspectModel(
  model: Model,
  data: Dataset,
  labels: Tensor | undefined,
  options: InspectOptions,
): Promise<InspectResult> {
  if (labels && labels.dims[0] !== data.examples) {
    throw new InputError(
      `The labels have ${labels.dims[0]} rows but the data has ${data.examples} examples: give one label per example.`,
    );
  }
  let metric: MetricSpec =
    options.metric ?? (labels ? { kind: 'loss' } : { kind: 'output-change' });
  const chosen = chooseHooks(model, options.hooks);
  const sample = data.read(0, Math.min(8, data.examples));
  model.checkFeeds(sample);
  const notes: string[] = [];
  const { hooks, shapes } = await perExampleHooks(model, chosen.hooks, data.read(0, 1), notes);
  const unitCounts = new Map(
    hooks.map((hook) => {
      const dims = shapes.get(hook.name)!;
      return [hook.name, Number(dims[unitAxisOf(hook, dims.length)])];
    }),
  );
  const scores = (await runWithCache(model, sliceFeedsTo(sample, 1), [])).outputs[
    model.outputNames[0]
  ];
  const scoring = labels ? scoringOf(model.outputNames[0], scores.dims, labels) : undefined;
  // A Softmax output holds probabilities: the loss is −log p(label) (autodiff/loss.ts takes the logits before it likewise).
  if (
    metric.kind === 'loss' &&
    normalizedOutput(model.graph, model.outputNames[0], scores.dims.length)?.op === 'Softmax'
  )
    metric = { ...metric, probabilities: true };
  const labelsAt = scoring
    ? await readPositions(
        model,
        hooks.map((hook) => hook.name),
        shapes,
        scoring,
        sample,
      )
    : undefined;
  const classes = labels
    ? Math.max(...Array.from(labels.data as ArrayLike<number | bigint>, Number)) + 1
    : 0;
  const attributes = checkedAttributes(options.attributes, data.examples);
  // Attributes are per example: with labels per position they are read as each hook's mean over positions.
  const attributeAt = (hook: string): ReadAt =>
    labelsAt?.get(hook) === 'every' || !labelsAt ? 'mean' : labelsAt.get(hook)!;
  const targets: Target[] = [
    ...(labels
      ? [
          {
            name: 'labels',
            values: labels,
            levels: classes,
            at: (hook: string) => labelsAt!.get(hook)!,
          },
        ]
      : []),
    ...attributes.map((attribute) => ({ ...attribute, at: attributeAt })),
  ];
  const progress = trackProgress(
    'inspect',
    2 * Math.ceil(data.examples / options.batchSize),
    options,
  );

  const observed = await observe(
    model,
    data,
    hooks,
    shapes,
    unitCounts,
    targets,
    options,
    progress,
  );
  await scoreProbes(model, data, hooks, targets, observed.probes, options.batchSize);
  const importance = await unitImportance(
    model,
    data,
    labels,
    hooks,
    observed.means,
    unitCounts,
    metric,
    { batchSize: options.batchSize, onBatch: () => progress.tick() },
  );
  progress.finish();
  const dependence = observed.inputMean
    ? await inputDependence(model, data, model.inputs[0].name, observed.inputMean, hooks, {
        batchSize: options.batchSize,
      })
    : undefined;
  // First-order attribution next to the ablation: ∂score(label)/∂unit · unit, mean over examples.
  const attribution = labels
    ? await unlessNoGradient(notes, 'gradient × activation', () =>
        datasetGradientTimesActivation(
          model,
          data,
          labels,
          hooks.map((hook) => hook.name),
          options.batchSize,
          gradientPositions(scoring!),
        ),
      )
    : undefined;

  // Roles: Bonferroni over every (unit, level) tested for the same target.
  const totalUnits = hooks.reduce((sum, hook) => sum + unitCounts.get(hook.name)!, 0);
  const units: InspectedUnit[] = hooks.flatMap((hook, h) => {
    const roles = targets.map((target, t) =>
      observed.associations[t][h].roles(0.01, totalUnits * target.levels),
    );
    const unitCensus = observed.census[h].result();
    return importance[h].units.map((effect, unit) => {
      const found = Object.fromEntries(
        targets
          .map((target, t) => [target.name, roles[t][unit]])
          .filter(([name, role]) => role && name !== 'labels'),
      );
      return {
        hook: hook.name,
        unit,
        ...effect,
        census: unitCensus[unit],
        role: labels ? roles[0][unit] : undefined,
        inputs: dependence?.get(hook.name)?.inputs[unit],
        gradientTimesActivation: attribution?.get(hook.name)?.[unit],
        attributes: Object.keys(found).length ? found : undefined,
      };
    });
  });
  units.sort((a, b) => b.importance - a.importance);
  let circuit: InspectResult['circuit'];
  if (options.circuit) {
    // Faithfulness is a ratio, so circuits are scored by accuracy unless a logit difference was asked for.
    const circuitMetric: MetricSpec = metric.kind === 'logit-diff' ? metric : { kind: 'accuracy' };
    const {
      feeds,
      labels: sampleLabels,
      examples,
    } = spreadSample(data, labels, options.circuit.examples);
    const found = await discoverCircuit(
      model,
      feeds,
      sampleLabels,
      hooks,
      observed.means,
      unitCounts,
      { metric: circuitMetric, tolerance: options.circuit.tolerance },
    );
    circuit = { ...found, metric: circuitMetric, examples, tolerance: options.circuit.tolerance };
  }
  const lensSample = spreadSample(data, labels, 2000);
  const transformer = await transformerViews(
    model,
    lensSample.feeds,
    lensSample.labels,
    scoring ? gradientPositions(scoring) : 'all',
  );
  if (transformer) notes.push(...transformer.notes);
  return {
    examples: data.examples,
    metric,
    scoring,
    hookSource: chosen.source,
    units,
    circuit,
    transformer,
    notes,
    hooks: hooks.map((hook, h) => ({
      hook: hook.name,
      value: hook.value,
      shape: shapes.get(hook.name)!,
      units: unitCounts.get(hook.name)!,
      wholeHook: importance[h].wholeHook,
      probes: Object.fromEntries(
        targets.map((target, t) => [target.name, observed.probes[t][h].accuracy()]),
      ),
      readAt: labelsAt?.get(hook.name) ?? 'mean',
    })),
  };
}

/**
 * The hooks that hold one value per example, batch axis first; a value with no batch axis (a
 * position table, [seq, d]) is the same for every example and has no per-example units, and one
 * whose batch axis is elsewhere (ONNX LSTM's Y, [seq, dirs, batch, hidden]) is read through its
 * module's output instead. Each left out is noted.
 */
async function perExampleHooks(
  model: Model,
  candidates: Hook[],
  one: Record<string, Tensor>,
  notes: string[],
) {
  const shapes = await probeHookShapes(model, one, candidates);
  const hooks = candidates.filter((hook) => {
    const dims = shapes.get(hook.name)!;
    if (dims[0] === 'batch' && dims.length >= 2) return true;
    const batchAxis = dims.findIndex((dim) => typeof dim === 'string' && dim.startsWith('batch'));
    notes.push(
      batchAxis < 0
        ? `Hook '${hook.name}' (shape ${dims.join('×')}) has no batch axis: it is the same for every example, so it has no units to inspect.`
        : `Hook '${hook.name}' (shape ${dims.join('×')}) has its batch axis at ${batchAxis}, not 0: inspect reads hooks with one row per example; read the module that wraps it.`,
    );
    return false;
  });
  if (hooks.length === 0)
    throw new InputError(
      `None of the hooks to inspect holds one value per example: ${notes.join(' ')}`,
    );
  return { hooks, shapes };
}

/** The analysis's result, or undefined with a note when the model has an op teardown cannot differentiate yet. */
async function unlessNoGradient<T>(
  notes: string[],
  what: string,
  analysis: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await analysis();
  } catch (error) {
    if (!(error instanceof AutodiffError)) throw error;
    notes.push(`No ${what}: ${error.message}`);
    return undefined;
  }
}

/** The first `rows` examples of every feed (inputs with no batch axis, if any, as they are). */
function sliceFeedsTo(feeds: Record<string, Tensor>, rows: number): Record<string, Tensor> {
  return Object.fromEntries(
    Object.entries(feeds).map(([name, value]) => [
      name,
      value.dims.length ? sliceRows(value, 0, rows) : value,
    ]),
  );
}

/** Labels or an attribute: integer categories, one per example (labels: or per position), and where each hook is read for it. */
interface Target {
  name: string;
  values: Tensor;
  levels: number;
  at: (hook: string) => ReadAt;
}

function checkedAttributes(
  attributes: Map<string, Tensor> | undefined,
  examples: number,
): Omit<Target, 'at'>[] {
  return [...(attributes ?? new Map<string, Tensor>())].map(([name, values]) => {
    if (values.dims[0] !== examples)
      throw new InputError(
        `Attribute '${name}' has ${values.dims[0]} rows but the data has ${examples} examples: give one value per example.`,
      );
    const numbers = Array.from(values.data as ArrayLike<number | bigint>, Number);
    if (numbers.some((v) => !Number.isInteger(v) || v < 0))
      throw new InputError(
        `Attribute '${name}' must hold non-negative integers (categories such as colour 0/1), one per example.`,
      );
    return { name, values, levels: Math.max(...numbers) + 1 };
  });
}

/**
 * Pass 1 over the data: census, per-position means (the mean-ablation values), associations of
 * units with every target, linear probes fitted on the training part, and — for feature inputs of
 * up to 128 features (tables, binary inputs; not pixels) — the input mean for input dependence.
 */
async function observe(
  model: Model,
  data: Dataset,
  hooks: Hook[],
  shapes: Map<string, (number | string)[]>,
  unitCounts: Map<string, number>,
  targets: Target[],
  options: InspectOptions,
  progress: ProgressTracker,
) {
  const unitAxis = (hook: Hook) => unitAxisOf(hook, shapes.get(hook.name)!.length);
  const census = hooks.map((hook) => new CensusAccumulator(options.topK ?? 5, unitAxis(hook)));
  const sums = hooks.map(() => new RowSum());
  const associations = targets.map((target) =>
    hooks.map((hook) => new AssociationAccumulator(unitCounts.get(hook.name)!, target.levels)),
  );
  const probes = targets.map((target) =>
    hooks.map((hook) => new RidgeProbe(unitCounts.get(hook.name)!, target.levels)),
  );
  const input = model.inputs[0];
  const featureInput =
    model.inputs.length === 1 &&
    input.dims?.length === 2 &&
    typeof input.dims[1] === 'number' &&
    input.dims[1] <= 128 &&
    model.graph.isFloat(input.name);
  const inputSum = new RowSum();
  for (let start = 0; start < data.examples; start += options.batchSize) {
    const end = Math.min(data.examples, start + options.batchSize);
    const feeds = data.read(start, end);
    const { cache } = await runWithCache(
      model,
      feeds,
      hooks.map((hook) => hook.name),
    );
    hooks.forEach((hook, h) => {
      const values = cache.get(hook.name)!;
      census[h].add(values, start);
      sums[h].add(values);
      targets.forEach((target, t) => {
        const rows = hookRows(values, target.at(hook.name), unitAxis(hook));
        const classes = sliceRows(target.values, start, end).data as ArrayLike<number | bigint>;
        associations[t][h].add(rows, classes);
        probes[t][h].fit(rows, classes, firstRow(target, start));
      });
    });
    if (featureInput) inputSum.add(feeds[input.name]);
    progress.tick();
  }
  const means = new Map(
    hooks.map((hook, h) => [
      hook.name,
      sums[h].mean(hook.dtype === 'float64' ? 'float64' : 'float32'),
    ]),
  );
  return {
    census,
    means,
    associations,
    probes,
    inputMean: featureInput ? inputSum.mean('float32') : undefined,
  };
}

/** Held-out accuracy of the probes fitted in pass 1 (a forward pass over the data). */
async function scoreProbes(
  model: Model,
  data: Dataset,
  hooks: Hook[],
  targets: Target[],
  probes: RidgeProbe[][],
  batchSize: number,
): Promise<void> {
  if (targets.length === 0) return;
  for (let start = 0; start < data.examples; start += batchSize) {
    const end = Math.min(data.examples, start + batchSize);
    const { cache } = await runWithCache(
      model,
      data.read(start, end),
      hooks.map((hook) => hook.name),
    );
    hooks.forEach((hook, h) => {
      targets.forEach((target, t) =>
        probes[t][h].score(
          hookRows(
            cache.get(hook.name)!,
            target.at(hook.name),
            unitAxisOf(hook, cache.get(hook.name)!.dims.length),
          ),
          sliceRows(target.values, start, end).data as ArrayLike<number | bigint>,
          firstRow(target, start),
        ),
      );
    });
  }
}

/** Index of the first probe row of example `start`: labels per position give one row per position, held out by row. */
function firstRow(target: Target, start: number): number {
  return start * (target.values.dims.length === 2 ? target.values.dims[1] : 1);
}

/** Up to n evenly spaced examples (a dataset sorted by class is still sampled across classes). */
function spreadSample(
  data: Dataset,
  labels: Tensor | undefined,
  n: number,
): { feeds: Record<string, Tensor>; labels?: Tensor; examples: number } {
  const examples = Math.min(n, data.examples);
  const rows = Array.from({ length: examples }, (_, k) =>
    Math.floor((k * data.examples) / examples),
  );
  const feeds = Object.fromEntries(
    Object.keys(data.read(0, 1)).map((name) => [
      name,
      concatRows(rows.map((row) => data.read(row, row + 1)[name])),
    ]),
  );
  return {
    feeds,
    labels: labels && concatRows(rows.map((row) => sliceRows(labels, row, row + 1))),
    examples,
  };
}
