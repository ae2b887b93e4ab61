/**
 * Recomputing only the positions a patch can reach. In a causal model — every position reads only
 * itself and earlier positions — patching a hook at position p changes nothing before p: the part
 * downstream of the hook needs only positions ≥ p, and where positions mix (attention's keys and
 * values), the earlier positions come from the clean run. This pass rewrites the downstream part
 * into that suffix graph, fed
 *   - the hook's value at positions ≥ start, [rows, T − start, ...] (the patch applied there),
 *   - `start` (int64 [1]),
 *   - for every value whose earlier positions are needed (keys, values, the output), its clean
 *     value whole: the graph takes its first `start` positions and appends the recomputed ones,
 *   - the clean activations it reads from outside the part, and the part's shape arithmetic and
 *     masks at the full length (sliced to the suffix where they run along the positions).
 *
 * Soundness. The suffix graph computes each value's positions ≥ start exactly as the whole part
 * would, provided every completed value's earlier positions are the clean run's. That holds when
 * each completed value is causal in the hook: its position i depends only on the hook's positions
 * ≤ i. The pass proves it structurally while it rewrites, and refuses (returns a reason) where it
 * cannot:
 *   - position-wise ops (elementwise with operands broadcast, Transpose, Reshape keeping the axes
 *     up to the positions, Split/Concat/Softmax/LayerNorm/reductions along other axes, MatMul along
 *     rows or broadcast axes) keep causality;
 *   - q·kᵀ of two recomputed values gives pairwise scores (query i, key j), j over all positions;
 *   - a constant mask that hides every key j > i from query i (Where with a fill ≤ −1e30, or an
 *     added mask ≤ −1e30 there; causal-mask.ts checks its values), then Softmax over the keys,
 *     gives a pattern whose row i reads positions ≤ i only, exactly 0 beyond;
 *   - pattern·v over the keys is causal only for such a pattern.
 * A mask read from the data (a padding `attention_mask`) or none at all (an encoder) leaves the
 * pattern unproven, and completing anything it feeds is refused: the sweep falls back to
 * recomputing every position. Nodes the pass does not follow are computed on completed inputs
 * (exact, no saving), so a refusal comes only from causality, never from an unknown op.
 *
 * The parts: suffix-builder.ts (the graph under construction: where each recomputed value keeps its
 * positions, completing a value with its clean prefix), suffix-rules.ts (one rule per op family),
 * suffix-attention.ts (q·kᵀ and pattern·v), suffix-elementwise.ts (the causal mask), suffix-rows.ts
 * (Reshape and Gemm rows), suffix-assembly.ts (the model fed to onnxruntime).
 */
import type { Dim } from '../graph/builder.ts';
import type { GraphIndex } from '../graph/graph.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { Tensor } from '../tensor.ts';
import { assembleSuffixGraph } from './suffix-assembly.ts';
import { SuffixBuilder } from './suffix-builder.ts';
import { NotCausal } from './suffix-layout.ts';
import { followNode } from './suffix-rules.ts';

export interface SuffixGraph {
  proto: ModelProto;
  /** Fed the hook's value at positions ≥ start. */
  hookInput: string;
  /** Fed the first recomputed position, int64 [1]. */
  startInput: string;
  /** Graph input → the value whose clean value (all positions) it is fed. */
  cleanInputs: Map<string, string>;
  /** Activations from outside the part, fed their clean values under their own names. */
  cutActivations: string[];
  /**
   * Values that are not activations (shape arithmetic, masks), fed at full length under their
   * own names.
   */
  staticInputs: string[];
}

export interface SuffixSources {
  /** Probed dims of every value (the batch axis symbolic). */
  shapeOf(value: string): readonly Dim[] | undefined;
  /** The values of a constant or of a value that is not an activation (a mask), where known. */
  valueOf(value: string): Tensor | undefined;
}

/**
 * The values the pass may need to read (masks, fills, Slice and Reduce parameters): every input of
 * a node downstream of `hookValue` that is neither an activation nor an initializer.
 */
export function constantsRead(index: GraphIndex, hookValue: string): string[] {
  const reached = new Set([hookValue]);
  const read = new Set<string>();
  for (const node of index.nodes) {
    if (!node.input.some((input) => reached.has(input))) continue;
    for (const output of node.output) if (output && index.isActivation(output)) reached.add(output);
    for (const input of node.input)
      if (input && !index.isActivation(input) && !index.initializerNames.has(input))
        read.add(input);
  }
  return [...read];
}

/**
 * The suffix graph of the part of `index` downstream of `hookValue` computing `output`, or the
 * reason it cannot be shown causal. `hookValue` is [batch, positions, ...].
 */
export function causalSuffixGraph(
  index: GraphIndex,
  hookValue: string,
  output: string,
  sources: SuffixSources,
): SuffixGraph | { reason: string } {
  const positions = sources.shapeOf(hookValue)?.[1];
  if (typeof positions !== 'number' || positions < 2)
    return { reason: `hook '${hookValue}' has no fixed sequence axis of 2 or more positions` };
  try {
    return rewrite(new SuffixBuilder(index, hookValue, positions, sources), output);
  } catch (error) {
    if (error instanceof NotCausal) return { reason: error.message };
    throw error;
  }
}

/**
 * Walks the nodes downstream of the hook in order: each is followed on the suffix where a rule
 * proves it causal, or computed whole on completed inputs (which refuses an input whose earlier
 * positions may have changed); the output is completed last.
 */
function rewrite(builder: SuffixBuilder, output: string): SuffixGraph {
  const { index, emitter } = builder;
  for (const node of index.nodes) {
    if (!node.input.some((input) => builder.layouts.has(input))) continue;
    // Shape arithmetic: fed at full length.
    if (node.output.every((out) => !out || !index.isActivation(out))) continue;
    if (!followNode(builder, node)) builder.computeWhole(node);
  }
  if (!builder.layouts.has(output))
    throw new NotCausal(`output '${output}' does not depend on '${builder.hookValue}'`);
  const final = builder.complete(output, `output '${output}'`);
  emitter.op('Identity', [final], {}, 'teardown/suffix', undefined);
  emitter.nodes[emitter.nodes.length - 1].output = [output];
  return assembleSuffixGraph(builder, output);
}
