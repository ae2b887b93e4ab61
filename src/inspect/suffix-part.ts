/**
 * The part downstream of a patched hook, recomputing only positions from the patch on
 * (causal-suffix.ts): built once per model, hook and output, run with the clean run's values.
 */
import type { EditPlan } from '../graph/edit.ts';
import { tensorFromProto } from '../onnx/tensor-proto.ts';
import type { Model } from '../runtime/model.ts';
import { probeValueShapes } from '../runtime/probe.ts';
import { concatRows, elementCount, tensor, type Feeds, type Tensor } from '../tensor.ts';
import { causalSuffixGraph, constantsRead, type SuffixGraph } from './causal-suffix.ts';

const NO_EDITS: EditPlan = { expose: [], rewrites: [], inputTypes: new Map() };
/** Initializers larger than this are never read as constants (a mask or a Slice's bounds is small). */
const LARGEST_CONSTANT = 1 << 20;

export interface SuffixPart {
  graph: SuffixGraph;
  /** The activations the clean run must keep for this part. */
  cleanValues: string[];
  /** The output (all positions, or what the model outputs) for `rows` stacked rows whose hook values from `start` on are `hookSuffix`. */
  run(start: number, hookSuffix: Tensor, rows: number, clean: CleanValues): Promise<Tensor>;
}

export interface CleanValues {
  feeds: Feeds;
  /** The clean run's values, one row per example. */
  cache: Map<string, Tensor>;
  /** Examples per variant: clean values are repeated rows / batch times. */
  batch: number;
}

/** The suffix part of `model` after `hookValue`, or why the model is not shown causal for it. */
export async function suffixPart(
  model: Model,
  hookValue: string,
  output: string,
  clean: Feeds,
): Promise<SuffixPart | { reason: string }> {
  const shapes = await probeValueShapes(model, clean);
  const readable = constantsRead(model.graph, hookValue);
  // From the inputs' shapes alone (a Shape-free subgraph): running the model up to each mask would cost a model run a hook.
  const values = await model.staticValuesAt(readable, clean, model.checkFeeds(clean));
  const initializers = new Map(model.proto.graph.initializer.map((t) => [t.name, t]));
  const valueOf = (value: string): Tensor | undefined => {
    const initializer = initializers.get(value);
    if (initializer)
      return elementCount(initializer.dims.map(Number)) <= LARGEST_CONSTANT
        ? tensorFromProto(initializer)
        : undefined;
    return values[value];
  };
  const graph = causalSuffixGraph(model.graph, hookValue, output, {
    shapeOf: (value) => shapes.get(value),
    valueOf,
  });
  if ('reason' in graph) return graph;
  // Clean values are repeated once per variant, whole rows at a time: each example's rows must be contiguous and first.
  const modelInputs = new Set(model.inputs.map((input) => input.name));
  const cleanValues = [...graph.cleanInputs.values(), ...graph.cutActivations].filter(
    (value) => !modelInputs.has(value),
  );
  const notStacking = cleanValues.find(
    (value) => !/^batch(\*\d+)?$/.test(String(shapes.get(value)?.[0])),
  );
  if (notStacking)
    return {
      reason: `the clean value '${notStacking}' does not hold its examples first (shape ${JSON.stringify(shapes.get(notStacking))})`,
    };
  if (
    [...graph.cutActivations].some((value) => modelInputs.has(value) && !model.hasBatchAxis(value))
  )
    return { reason: 'an input without a batch axis feeds the part' };
  const part = await model.variant(
    `positions from the patch on, after ${hookValue}, computing ${output}`,
    async () => graph.proto,
  );
  const fed = new Set(graph.proto.graph.input.map((input) => input.name));
  return {
    graph,
    cleanValues,
    async run(start, hookSuffix, rows, cleanValues) {
      const times = rows / cleanValues.batch;
      const cleanValue = (value: string) =>
        repeated(cleanValues.cache.get(value) ?? cleanValues.feeds[value], times);
      const feeds: Feeds = { [graph.hookInput]: hookSuffix };
      if (fed.has(graph.startInput)) feeds[graph.startInput] = tensor('int64', [1], [start]);
      for (const [input, value] of graph.cleanInputs) feeds[input] = cleanValue(value);
      for (const value of graph.cutActivations) feeds[value] = cleanValue(value);
      Object.assign(feeds, await model.staticValuesAt(graph.staticInputs, clean, rows));
      const { session } = await part.prepare(NO_EDITS);
      return (await session.run(feeds, [output]))[output];
    },
  };
}

function repeated(value: Tensor, times: number): Tensor {
  return times === 1 ? value : concatRows(Array.from({ length: times }, () => value));
}

/** `value`'s positions from `start` on, [rows, seq − start, ...] (the positions on axis 1). */
export function fromPosition(value: Tensor, start: number): Tensor {
  const [rows, seq] = value.dims;
  const width = elementCount(value.dims.slice(2));
  const kept = seq - start;
  const out = tensor(value.dtype, [rows, kept, ...value.dims.slice(2)]);
  for (let row = 0; row < rows; row++) {
    out.data.set(
      value.data.subarray((row * seq + start) * width, (row + 1) * seq * width) as never,
      row * kept * width,
    );
  }
  return out;
}
