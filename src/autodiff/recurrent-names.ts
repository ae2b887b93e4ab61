/**
 * Gradients of exporter-packed recurrent weights under PyTorch's names. The TorchScript exporter
 * turns each layer k of an nn.LSTM / nn.GRU / nn.RNN into one ONNX node (in layer order, in the
 * module's scope) whose W, R and B are new initializers (`onnx::LSTM_N`):
 *   W [dirs, gates·H, in]  = weight_ih_l{k} and weight_ih_l{k}_reverse, gate blocks reordered
 *   R [dirs, gates·H, H]   = weight_hh_l{k}[_reverse], likewise
 *   B [dirs, 2·gates·H]    = [bias_ih_l{k} | bias_hh_l{k}] per direction, likewise
 * ONNX stacks gate blocks as LSTM i, o, f, c and GRU z, r, h; PyTorch as LSTM i, f, g, o and GRU
 * r, z, n. Undoing the packing is a permutation, so each PyTorch parameter's gradient is the same
 * permutation of the initializer's gradient.
 */
import type { GraphIndex } from '../graph/graph.ts';
import { moduleScopes } from '../graph/scopes.ts';
import type { Tensor } from '../tensor.ts';

/** For each PyTorch gate block, in PyTorch's order, the ONNX block it is stored in. */
const ONNX_BLOCK_OF: Record<string, number[]> = {
  LSTM: [0, 2, 3, 1], // i ← i, f ← f, g ← c, o ← o   (ONNX i, o, f, c)
  GRU: [1, 0, 2], // r ← r, z ← z, n ← h                (ONNX z, r, h)
  RNN: [0],
};

export interface RecurrentPacking {
  /** Initializer → which packed tensor it is: W ('ih'), R ('hh') or B ('bias'). */
  initializers: { name: string; role: 'ih' | 'hh' | 'bias' }[];
  /** `<module>`, and the layer this node is within the module. */
  module: string;
  layer: number;
  gateBlocks: number[];
}

/** The exporter-made W, R and B of every recurrent node inside a PyTorch module's scope. */
export function recurrentPackings(graph: GraphIndex): RecurrentPacking[] {
  const initializers = new Set(
    graph.proto.graph.initializer
      .filter((tensor) => tensor.name.startsWith('onnx::'))
      .map((tensor) => tensor.name),
  );
  const layersSeen = new Map<string, number>();
  const packings: RecurrentPacking[] = [];
  for (const node of graph.nodes) {
    const gateBlocks = ONNX_BLOCK_OF[node.opType];
    const module = gateBlocks && moduleScopes(node).at(-1);
    if (!module) continue;
    const layer = layersSeen.get(module) ?? 0;
    layersSeen.set(module, layer + 1);
    const roles = (['ih', 'hh', 'bias'] as const).map((role, k) => ({
      name: node.input[k + 1] ?? '',
      role,
    }));
    const packed = roles.filter(
      ({ name }) => initializers.has(name) && (graph.consumers.get(name) ?? []).length === 1,
    );
    if (packed.length > 0) packings.push({ initializers: packed, module, layer, gateBlocks });
  }
  return packings;
}

/** Gradients keyed by initializer, with each packed W, R, B replaced by PyTorch's per-direction parameters. */
export function underRecurrentNames(
  gradients: Map<string, Tensor>,
  packings: readonly RecurrentPacking[],
): Map<string, Tensor> {
  const result = new Map(gradients);
  for (const packing of packings) {
    for (const { name, role } of packing.initializers) {
      const packed = result.get(name);
      if (!packed) continue;
      result.delete(name);
      for (const [parameter, value] of unpack(packed, role, packing)) result.set(parameter, value);
    }
  }
  return result;
}

/** One packed tensor [dirs, ...] → PyTorch's parameters of each direction, gate blocks in PyTorch's order. */
function unpack(
  packed: Tensor,
  role: 'ih' | 'hh' | 'bias',
  packing: RecurrentPacking,
): [string, Tensor][] {
  const [directions, length] = [packed.dims[0], packed.dims[1]];
  const columns = packed.dims.slice(2).reduce((a, b) => a * b, 1); // 1 for B
  const perDirection = length * columns;
  const parameters: [string, Tensor][] = [];
  for (let d = 0; d < directions; d++) {
    const suffix = `l${packing.layer}${d === 1 ? '_reverse' : ''}`;
    const parts =
      role === 'bias'
        ? ([
            ['bias_ih', 0],
            ['bias_hh', length / 2],
          ] as const)
        : ([[`weight_${role}`, 0]] as const);
    const rows = role === 'bias' ? length / 2 : length; // gates·H
    for (const [kind, start] of parts) {
      const block = (rows / packing.gateBlocks.length) * columns;
      const data = new (packed.data.constructor as Float32ArrayConstructor)(rows * columns);
      packing.gateBlocks.forEach((onnxBlock, k) => {
        const from = d * perDirection + start * columns + onnxBlock * block;
        data.set((packed.data as Float32Array).subarray(from, from + block), k * block);
      });
      const dims = role === 'bias' ? [rows] : [rows, ...packed.dims.slice(2)];
      parameters.push([`${packing.module}.${kind}_${suffix}`, { ...packed, dims, data }]);
    }
  }
  return parameters;
}
