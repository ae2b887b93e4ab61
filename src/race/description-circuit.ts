/**
 * A network's description: the circuit inspect finds (inspect/circuit.ts, through the library's
 * inspect()) over its hidden units — the outputs of its nonlinearities — with every unit left out
 * mean-ablated (replaced by its mean over the search rows). The labels inspect scores are the
 * network's own predictions and the metric is accuracy, so inspect's faithfulness (the circuit's
 * accuracy ÷ the full network's, which is 1) is the agreement description.ts defines; the search
 * keeps pruning while it stays at or above the target (tolerance 1 − target).
 *
 * The greedy search runs the network on O(units²) ablated variants of the search rows, and no
 * ablation changes what comes before the first hidden units: inspect takes apart the network from
 * there on (graph/downstream.ts), fed the first hidden units' inputs computed once — the same
 * function of the same values, without recomputing the first layer (784 × width multiplies per
 * row on MNIST) for every variant.
 */
import { ablate, type Intervention } from '../graph/interventions.ts';
import { downstreamGraph } from '../graph/downstream.ts';
import { unitAxisOf } from '../graph/units.ts';
import { Model } from '../api/model.ts';
import { inspect } from '../api/inspect.ts';
import type { Inputs } from '../api/inputs.ts';
import { nonlinearityHooks } from '../inspect/default-hooks.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { predictedClasses } from '../tensor-math.ts';
import { elementCount, tensor, type Tensor as TensorLike } from '../tensor.ts';
import {
  agreement,
  asTensor,
  DEFAULT_DESCRIPTION_TARGET,
  evenlySpacedRows,
  type DescriptionOptions,
  type DescriptionSize,
  type ExampleRows,
} from './description.ts';

/**
 * Search rows by default: the search costs about rows × units × hidden values per row (units²/2
 * variants at most, each the hidden values of every row), bounded by 2^20 so that a search takes
 * seconds; between 100 and 500 rows. One hidden layer of 32 units: 500 rows; 64 units: 256;
 * forward-forward's 64 units under 10 labels: 100 (4 s on 1,000 MNIST digits). Beyond 2^23 at
 * 100 rows there is no default: the backprop CNN's 56 channels and units, 9,400 values a row,
 * took 80 s (inspect's sweeps materialise every channel map of every variant).
 */
const SEARCH_WORK = 2 ** 20;
const MOST_SEARCH_WORK = 2 ** 23;
const [FEWEST_SEARCH_ROWS, MOST_SEARCH_ROWS] = [100, 500];

function defaultSearchRows(units: number, valuesPerRow: number): number | undefined {
  if (units * valuesPerRow * FEWEST_SEARCH_ROWS > MOST_SEARCH_WORK) return undefined;
  const rows = Math.floor(SEARCH_WORK / (units * valuesPerRow));
  return Math.min(MOST_SEARCH_ROWS, Math.max(FEWEST_SEARCH_ROWS, rows));
}

/**
 * The circuit, or why there is none: a network without hidden units (logistic regression), or one
 * whose search would exceed the work bound (unless `searchRows` is given).
 */
export async function circuitDescription(
  proto: ModelProto,
  train: ExampleRows,
  test: ExampleRows,
  options: DescriptionOptions,
): Promise<Omit<DescriptionSize, 'seconds'> | 'no hidden units' | 'too costly'> {
  const threads = options.threads ?? 1;
  const model = Model.fromProto(proto, 'the classifier', { threads });
  try {
    const hooks = hiddenUnitHooks(model);
    if (hooks.length === 0) return 'no hidden units';
    const searchRows = options.searchRows ?? (await defaultSearchRowsOf(model, hooks, train));
    if (searchRows === undefined) return 'too costly';
    const search = modelInputs(model, evenlySpacedRows(train, searchRows));
    const circuit = await searchCircuit(model, hooks, search, options);
    const reference = { [model.inputs[0].name]: search };
    const interventions = circuit.left.map(({ hook, units }) =>
      ablate(hook, 'mean', { units, reference }),
    );
    const testInputs = modelInputs(model, test);
    const full = await predictionsOf(model, testInputs);
    const pruned = await predictionsOf(model, testInputs, interventions);
    return {
      kind: 'circuit units',
      count: circuit.kept,
      outOf: circuit.units,
      faithfulness: agreement(pruned, full),
      fittedFaithfulness: circuit.faithfulness,
    };
  } finally {
    await model.release();
  }
}

/** The circuit inspect finds on the search rows: units kept, and the units left out per hook. */
async function searchCircuit(
  model: Model,
  hooks: string[],
  search: TensorLike,
  options: DescriptionOptions,
) {
  const own = await predictionsOf(model, search);
  const rows = search.dims[0];
  const suffix = await fromFirstHiddenUnits(model, hooks[0], search, options.threads ?? 1);
  try {
    const target = options.target ?? DEFAULT_DESCRIPTION_TARGET;
    const { circuit, hooks: inspected } = await inspect(
      suffix?.model ?? model,
      suffix?.feeds ?? search,
      {
        labels: tensor('int64', [rows], BigInt64Array.from(own, BigInt)),
        hooks,
        metric: { kind: 'accuracy' },
        circuit: { tolerance: 1 - target, examples: rows },
        signal: options.signal,
      },
    );
    const kept = circuit!.units;
    const left = inspected.map(({ hook, units }) => {
      const inCircuit = new Set(kept.filter((u) => u.hook === hook).map((u) => u.unit));
      return { hook, units: [...Array(units).keys()].filter((unit) => !inCircuit.has(unit)) };
    });
    return {
      kept: kept.length,
      faithfulness: circuit!.faithfulness,
      units: inspected.reduce((sum, { units }) => sum + units, 0),
      left: left.filter(({ units }) => units.length > 0),
    };
  } finally {
    await suffix?.model.release();
  }
}

/**
 * The network from the input of its first hidden units on, and that input on the search rows;
 * undefined when that part reads anything else computed from the inputs (the whole network is
 * searched then).
 */
async function fromFirstHiddenUnits(
  model: Model,
  hook: string,
  search: TensorLike,
  threads: number,
) {
  const runtime = model.runtime;
  const hidden = runtime.hooks.resolve(hook).value;
  const first = runtime.graph.nodes[runtime.graph.producer.get(hidden)!].input[0];
  const part = downstreamGraph(runtime.graph, first, runtime.outputNames[0]);
  if (!part || part.inputs.length !== 1) return undefined;
  const { cache } = await model.run(search, { hooks: [first] });
  const feeds: Inputs = { [first]: cache.get(first) };
  return {
    model: Model.fromProto(part.proto, 'the classifier from its hidden units', { threads }),
    feeds,
  };
}

/** The default search rows of this network, from its hidden units' shapes on one row. */
async function defaultSearchRowsOf(model: Model, hooks: string[], train: ExampleRows) {
  const { cache } = await model.run(modelInputs(model, evenlySpacedRows(train, 1)), { hooks });
  const shapes = hooks.map((hook) => ({
    hook: model.runtime.hooks.resolve(hook),
    dims: cache.get(hook).dims,
  }));
  const units = shapes.reduce(
    (sum, { hook, dims }) => sum + dims[unitAxisOf(hook, dims.length)],
    0,
  );
  const valuesPerRow = shapes.reduce((sum, { dims }) => sum + elementCount(dims), 0);
  return defaultSearchRows(units, valuesPerRow);
}

/**
 * The rows as the network's input takes them: flat [rows, features] for a network of features
 * (an MLP flattens images), else in the examples' own shape (a CNN's images).
 */
function modelInputs(model: Model, rows: ExampleRows): TensorLike {
  const flat = model.inputs[0].dims?.length === 2;
  return asTensor(flat ? { ...rows, exampleDims: [rows.features] } : rows);
}

/**
 * Each nonlinearity's output, by its module hook's name where one reads the same value (`act1`),
 * else by the value's own name; in graph order.
 */
function hiddenUnitHooks(model: Model): string[] {
  const runtime = model.runtime;
  const byValue = new Map(
    runtime.hooks.hooks
      .filter((hook) => hook.kind === 'module')
      .map((hook) => [hook.value, hook.name]),
  );
  return nonlinearityHooks(runtime).map((hook) => byValue.get(hook.value) ?? hook.name);
}

async function predictionsOf(model: Model, inputs: TensorLike, interventions: Intervention[] = []) {
  const { output } = await model.run(inputs, { interventions });
  return predictedClasses(output);
}
