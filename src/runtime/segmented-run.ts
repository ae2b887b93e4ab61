/**
 * One run that returns many large values, made as several runs of consecutive segments of the
 * graph (graph/segments.ts), so that a batch's cache is held once, not twice, when it returns.
 * Segment sessions run without onnxruntime's memory arena: an arena keeps what a run freed for the
 * session's next run, so each segment kept its outputs' and intermediates' worth (the scale bench's
 * cache case peaked at 2.7-2.9 GB with it, 2.06 GB without, at the same CPU time).
 */
import type { EditPlan } from '../graph/edit.ts';
import { segmentGraph } from '../graph/segments.ts';
import { dimsAtBatch } from '../graph/units.ts';
import { BYTES_PER_ELEMENT, elementCount, type Feeds, type Tensor } from '../tensor.ts';
import type { Model } from './model.ts';
import { probeHookShapes } from './probe.ts';

/** Bytes of wanted values a segment computes before the next begins. */
export const SEGMENT_BYTES = 128 * 2 ** 20;
const FEW_VALUES = 8;
const NO_EDITS: EditPlan = { expose: [], rewrites: [], inputTypes: new Map() };

/**
 * The `wanted` values (activations and graph outputs) for `feeds` of `batch` examples, computed
 * in segments of about `segmentBytes` of them; undefined when they come to less than four
 * segments (one run is made), or the graph cannot be cut.
 */
export async function runInSegments(
  model: Model,
  feeds: Feeds,
  wanted: readonly string[],
  batch: number,
  segmentBytes = SEGMENT_BYTES,
): Promise<Record<string, Tensor> | undefined> {
  const fed = new Set(Object.keys(feeds));
  const computed = wanted.filter((value) => !fed.has(value));
  // Sizes come from the probe (runs of one and two examples, cached per model): never for the
  // probe's own runs, nor for runs returning few values.
  if (batch <= 2 || computed.length < FEW_VALUES) return undefined;
  const shapes = await probeHookShapes(
    model,
    feeds,
    computed.map((value) => model.hooks.resolve(value)),
  );
  const bytesOf = (value: string) =>
    elementCount(dimsAtBatch(shapes.get(value)!, batch).map((dim) => Math.max(dim, 0))) *
    BYTES_PER_ELEMENT[model.graph.dtype(value) ?? 'float32'];
  if (computed.reduce((sum, value) => sum + bytesOf(value), 0) < 4 * segmentBytes) return undefined;
  const segments = segmentGraph(model.graph, computed, bytesOf, segmentBytes);
  if (!segments || segments.length < 2) return undefined;
  const key = `segments (${segmentBytes} bytes) of ${segments.map((segment) => segment.outputs.length).join('/')} outputs, ${computed.length} values wanted (${hashOf(computed)})`;
  const statics = await model.staticValuesAt(
    [...new Set(segments.flatMap((segment) => segment.statics))],
    feeds,
    batch,
  );
  const wantedSet = new Set(computed);
  const results: Record<string, Tensor> = {};
  const carried = new Map<string, Tensor>();
  for (const [s, segment] of segments.entries()) {
    const part = await model.variant(`${key}: segment ${s + 1}`, async () => segment.proto, {
      memoryArena: false,
    });
    const segmentFeeds: Feeds = {};
    for (const value of segment.modelInputs) segmentFeeds[value] = feeds[value];
    for (const value of segment.carried) segmentFeeds[value] = carried.get(value) ?? results[value];
    for (const value of segment.statics) segmentFeeds[value] = statics[value];
    const out = await (await part.prepare(NO_EDITS)).session.run(segmentFeeds, segment.outputs);
    for (const [value, tensor] of Object.entries(out)) {
      if (wantedSet.has(value)) results[value] = tensor;
      else carried.set(value, tensor);
    }
    // Values no later segment reads are dropped as soon as possible.
    const stillRead = new Set(segments.slice(s + 1).flatMap((later) => later.carried));
    for (const value of [...carried.keys()]) if (!stillRead.has(value)) carried.delete(value);
  }
  return results;
}

function hashOf(values: readonly string[]): string {
  let hash = 0;
  for (const char of [...values].sort().join('\u0000'))
    hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0;
  return (hash >>> 0).toString(16);
}
