/**
 * `teardown inspect`: take a model apart over a dataset. Streams the data through the model
 * (bounded memory): a census of every unit of the chosen hooks, their association with the labels
 * (roles), their importance (mean ablation, stacked sweeps) and — for feature inputs — the input
 * features that drive each unit. Units come back sorted by importance, most important first.
 */
import { InputError } from '../errors.ts';
import type { Hook } from '../graph/hooks.ts';
import { defaultUnitAxis } from '../graph/units.ts';
import type { Model } from '../runtime/model.ts';
import { probeHookShapes } from '../runtime/probe.ts';
import { runWithCache, type Dataset } from '../runtime/run.ts';
import { Progress } from '../report/progress.ts';
import { RowSum } from '../tensor-math.ts';
import { concatRows, elementCount, sliceRows, type Tensor } from '../tensor.ts';
import { CensusAccumulator, type UnitCensus } from './census.ts';
import { unitImportance, type Effect } from './importance.ts';
import { inputDependence } from './input-dependence.ts';
import { datasetGradientTimesActivation } from './attribution.ts';
import type { MetricSpec } from './metric.ts';
import { AssociationAccumulator, type Role } from './roles.ts';
import { RidgeProbe } from './probe.ts';
import { discoverCircuit, type Circuit } from './circuit.ts';
import { transformerViews, type TransformerViews } from './transformer.ts';

export interface InspectOptions {
  hooks?: string[];
  /** Discover a circuit (circuit.ts) on `examples` evenly spaced examples, keeping faithfulness ≥ 1 − tolerance. */
  circuit?: { tolerance: number; examples: number };
  /** Per-example attributes (colour, group, ...), integer-valued, [examples]. */
  attributes?: Map<string, Tensor>;
  metric: MetricSpec;
  batchSize: number;
  topK?: number;
  progress?: boolean;
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
  hooks: { hook: string; value: string; shape: (number | string)[]; units: number; wholeHook: Effect; probes: Record<string, number> }[];
  units: InspectedUnit[];
  circuit?: Circuit & { metric: MetricSpec; examples: number; tolerance: number };
  /** Logit lens and attention summaries, for transformers (blocks.<i> modules), on up to 2,000 evenly spaced examples. */
  transformer?: TransformerViews;
}

export async function inspectModel(model: Model, data: Dataset, labels: Tensor | undefined, options: InspectOptions): Promise<InspectResult> {
  if (labels && labels.dims[0] !== data.examples) {
    throw new InputError(`The labels have ${labels.dims[0]} rows but the data has ${data.examples} examples: give one label per example.`);
  }
  const hooks = chooseHooks(model, options.hooks);
  const sample = data.read(0, 1);
  model.checkFeeds(sample);
  const shapes = await probeHookShapes(model, sample, hooks);
  const unitCounts = new Map(hooks.map((hook) => {
    const dims = shapes.get(hook.name)!;
    return [hook.name, Number(dims[defaultUnitAxis(dims.length)])];
  }));
  const classes = labels ? Math.max(...Array.from(labels.data as ArrayLike<number | bigint>, Number)) + 1 : 0;
  const attributes = checkedAttributes(options.attributes, data.examples);
  const targets: Target[] = [...(labels ? [{ name: 'labels', values: labels, levels: classes }] : []), ...attributes];
  const progress = new Progress('inspect', 2 * Math.ceil(data.examples / options.batchSize), options.progress);

  const observed = await observe(model, data, hooks, unitCounts, targets, options, progress);
  await scoreProbes(model, data, hooks, targets, observed.probes, options.batchSize);
  const importance = await unitImportance(model, data, labels, hooks, observed.means, unitCounts, options.metric, { batchSize: options.batchSize, onBatch: () => progress.tick() });
  progress.finish();
  const dependence = observed.inputMean ? await inputDependence(model, data, model.inputs[0].name, observed.inputMean, hooks, { batchSize: options.batchSize }) : undefined;
  // First-order attribution next to the ablation: ∂score(label)/∂unit · unit, mean over examples.
  const attribution = labels ? await datasetGradientTimesActivation(model, data, labels, hooks.map((hook) => hook.name), options.batchSize, positionsScored(model, labels)) : undefined;

  // Roles: Bonferroni over every (unit, level) tested for the same target.
  const totalUnits = hooks.reduce((sum, hook) => sum + unitCounts.get(hook.name)!, 0);
  const units: InspectedUnit[] = hooks.flatMap((hook, h) => {
    const roles = targets.map((target, t) => observed.associations[t][h].roles(0.01, totalUnits * target.levels));
    const unitCensus = observed.census[h].result();
    return importance[h].units.map((effect, unit) => {
      const found = Object.fromEntries(targets.map((target, t) => [target.name, roles[t][unit]]).filter(([name, role]) => role && name !== 'labels'));
      return {
        hook: hook.name, unit, ...effect, census: unitCensus[unit], role: labels ? roles[0][unit] : undefined, inputs: dependence?.get(hook.name)?.inputs[unit],
        gradientTimesActivation: attribution?.get(hook.name)?.[unit],
        attributes: Object.keys(found).length ? found : undefined,
      };
    });
  });
  units.sort((a, b) => b.importance - a.importance);
  let circuit: InspectResult['circuit'];
  if (options.circuit) {
    // Faithfulness is a ratio, so circuits are scored by accuracy unless a logit difference was asked for.
    const metric: MetricSpec = options.metric.kind === 'logit-diff' ? options.metric : { kind: 'accuracy' };
    const { feeds, labels: sampleLabels, examples } = spreadSample(data, labels, options.circuit.examples);
    const found = await discoverCircuit(model, feeds, sampleLabels, hooks, observed.means, unitCounts, { metric, tolerance: options.circuit.tolerance });
    circuit = { ...found, metric, examples, tolerance: options.circuit.tolerance };
  }
  const lensSample = spreadSample(data, labels, 2000);
  const transformer = await transformerViews(model, lensSample.feeds, lensSample.labels, positionsScored(model, labels));
  return {
    examples: data.examples, metric: options.metric, units, circuit, transformer,
    hooks: hooks.map((hook, h) => ({
      hook: hook.name, value: hook.value, shape: shapes.get(hook.name)!, units: unitCounts.get(hook.name)!, wholeHook: importance[h].wholeHook,
      probes: Object.fromEntries(targets.map((target, t) => [target.name, observed.probes[t][h].accuracy()])),
    })),
  };
}

/** Labels or an attribute: integer categories, one per example. */
interface Target { name: string; values: Tensor; levels: number }

function checkedAttributes(attributes: Map<string, Tensor> | undefined, examples: number): Target[] {
  return [...(attributes ?? new Map<string, Tensor>())].map(([name, values]) => {
    if (values.dims[0] !== examples) throw new InputError(`Attribute '${name}' has ${values.dims[0]} rows but the data has ${examples} examples: give one value per example.`);
    const numbers = Array.from(values.data as ArrayLike<number | bigint>, Number);
    if (numbers.some((v) => !Number.isInteger(v) || v < 0)) throw new InputError(`Attribute '${name}' must hold non-negative integers (categories such as colour 0/1), one per example.`);
    return { name, values, levels: Math.max(...numbers) + 1 };
  });
}

/**
 * Pass 1 over the data: census, per-position means (the mean-ablation values), associations of
 * units with every target, linear probes fitted on the training part, and — for feature inputs of
 * up to 128 features (tables, binary inputs; not pixels) — the input mean for input dependence.
 */
async function observe(model: Model, data: Dataset, hooks: Hook[], unitCounts: Map<string, number>, targets: Target[], options: InspectOptions, progress: Progress) {
  const census = hooks.map(() => new CensusAccumulator(options.topK ?? 5));
  const sums = hooks.map(() => new RowSum());
  const associations = targets.map((target) => hooks.map((hook) => new AssociationAccumulator(unitCounts.get(hook.name)!, target.levels)));
  const probes = targets.map((target) => hooks.map((hook) => new RidgeProbe(unitCounts.get(hook.name)!, target.levels)));
  const input = model.inputs[0];
  const featureInput = model.inputs.length === 1 && input.dims?.length === 2 && typeof input.dims[1] === 'number' && input.dims[1] <= 128 && model.graph.isFloat(input.name);
  const inputSum = new RowSum();
  for (let start = 0; start < data.examples; start += options.batchSize) {
    const end = Math.min(data.examples, start + options.batchSize);
    const feeds = data.read(start, end);
    const { cache } = await runWithCache(model, feeds, hooks.map((hook) => hook.name));
    hooks.forEach((hook, h) => {
      const values = cache.get(hook.name)!;
      census[h].add(values, start);
      sums[h].add(values);
      const unitMeans = targets.length ? perExampleUnitMeans(values) : [];
      targets.forEach((target, t) => {
        const rows = sliceRows(target.values, start, end).data as ArrayLike<number | bigint>;
        associations[t][h].add(unitMeans, rows);
        probes[t][h].fit(unitMeans, rows, start);
      });
    });
    if (featureInput) inputSum.add(feeds[input.name]);
    progress.tick();
  }
  const means = new Map(hooks.map((hook, h) => [hook.name, sums[h].mean(hook.dtype === 'float64' ? 'float64' : 'float32')]));
  return { census, means, associations, probes, inputMean: featureInput ? inputSum.mean('float32') : undefined };
}

/** Held-out accuracy of the probes fitted in pass 1 (a forward pass over the data). */
async function scoreProbes(model: Model, data: Dataset, hooks: Hook[], targets: Target[], probes: RidgeProbe[][], batchSize: number): Promise<void> {
  if (targets.length === 0) return;
  for (let start = 0; start < data.examples; start += batchSize) {
    const end = Math.min(data.examples, start + batchSize);
    const { cache } = await runWithCache(model, data.read(start, end), hooks.map((hook) => hook.name));
    hooks.forEach((hook, h) => {
      const unitMeans = perExampleUnitMeans(cache.get(hook.name)!);
      targets.forEach((target, t) => probes[t][h].score(unitMeans, sliceRows(target.values, start, end).data as ArrayLike<number | bigint>, start));
    });
  }
}

/**
 * The hooks named by the patterns, or every float module hook that is not a graph output, one per
 * value; values that do not depend on the input (parameters and their copies) have no units per
 * example and are left out.
 */
function chooseHooks(model: Model, patterns: string[] | undefined): Hook[] {
  const candidates = patterns?.length ? model.hooks.match(patterns) : model.hooks.hooks.filter((hook) => hook.kind === 'module' && !model.graph.outputNames.has(hook.value));
  const seen = new Set<string>();
  const chosen = candidates.filter((hook) => {
    if (hook.dtype !== 'float32' && hook.dtype !== 'float64') return false;
    if (!model.graph.fromInputs.has(hook.value) && !model.graph.inputs.some((input) => input.name === hook.value)) return false;
    if (seen.has(hook.value)) return false;
    seen.add(hook.value);
    return true;
  });
  if (chosen.length === 0) {
    throw new InputError(patterns?.length
      ? `None of the hooks matching ${patterns.map((p) => `'${p}'`).join(', ')} holds float values that depend on the input (parameters are not inspected).`
      : 'The model has no module hooks to inspect (its node names carry no PyTorch module scopes): name raw values with --hooks PATTERN (list them with teardown hooks MODEL).');
  }
  return chosen;
}

/** Per example, each unit's mean over its positions: [examples][units]. */
function perExampleUnitMeans(values: Tensor): Float64Array[] {
  const axis = defaultUnitAxis(values.dims.length);
  const units = values.dims[axis];
  const inner = elementCount(values.dims.slice(axis + 1));
  const perExample = elementCount(values.dims.slice(1));
  const positions = perExample / units;
  return Array.from({ length: values.dims[0] }, (_, example) => {
    const row = new Float64Array(units);
    for (let offset = 0; offset < perExample; offset++) row[Math.floor(offset / inner) % units] += Number(values.data[example * perExample + offset]) / positions;
    return row;
  });
}

/** Up to n evenly spaced examples (a dataset sorted by class is still sampled across classes). */
function spreadSample(data: Dataset, labels: Tensor | undefined, n: number): { feeds: Record<string, Tensor>; labels?: Tensor; examples: number } {
  const examples = Math.min(n, data.examples);
  const rows = Array.from({ length: examples }, (_, k) => Math.floor((k * data.examples) / examples));
  const feeds = Object.fromEntries(Object.keys(data.read(0, 1)).map((name) => [name, concatRows(rows.map((row) => data.read(row, row + 1)[name]))]));
  return { feeds, labels: labels && concatRows(rows.map((row) => sliceRows(labels, row, row + 1))), examples };
}

/** Sequence models with one label per example are scored on their last position (as modular-addition). */
function positionsScored(model: Model, labels: Tensor | undefined): 'all' | 'last' {
  const dims = model.inputs[0].dims;
  return labels && dims?.length === 2 && labels.dims.length === 1 && model.inputs[0].dtype === 'int64' ? 'last' : 'all';
}
