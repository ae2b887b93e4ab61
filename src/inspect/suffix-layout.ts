/**
 * Where a recomputed value of a suffix graph (causal-suffix.ts) keeps its positions, and the small
 * helpers every rewrite rule shares.
 */
import type { NodeProto } from '../onnx/proto.ts';
import { toNumber } from '../onnx/proto.ts';

/**
 * `whole`: it is the original value, every position (a slice of the last position, or computed
 * from completed inputs). `suffix`: positions ≥ start along `axis`; pairwise values (attention
 * scores) also run over every key along `keyAxis`.
 */
export type Layout =
  | { kind: 'whole' }
  | {
      kind: 'suffix';
      axis: number;
      keyAxis?: number;
      /** Why the earlier positions of this value may change (set once a pattern is unproven). */
      notCausal?: string;
      /** Later keys of pairwise scores known hidden: −∞ (scores) or exactly 0 (a pattern). */
      hidden?: 'minus-infinity' | 'zero';
      /**
       * Rows flattened for a Gemm: `axis` runs over every axis up to the positions, which were
       * axis `flat`, positions innermost ([batch, positions, d] → [batch·positions, d]).
       */
      flat?: number;
    };
export type Suffix = Extract<Layout, { kind: 'suffix' }>;

/** The part cannot be shown causal: the message is the reason given back to the sweep. */
export class NotCausal extends Error {}

/** Slice end meaning "to the end of the axis". */
export const END = Number.MAX_SAFE_INTEGER;

export function normalise(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export function ints(node: NodeProto, name: string): number[] | undefined {
  return node.attribute.find((a) => a.name === name)?.ints?.map(toNumber);
}

export function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = node.attribute.find((a) => a.name === name);
  return attribute ? toNumber(attribute.i) : fallback;
}

export function axisAttribute(node: NodeProto, fallback: number): number {
  return intAttribute(node, 'axis', fallback);
}
