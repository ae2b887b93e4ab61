/**
 * Parameter gradients under PyTorch's names. The TorchScript exporter stores an nn.Linear's weight
 * W [out, in] as a new initializer `onnx::MatMul_N` holding Wᵀ, read by the MatMul inside the
 * module's scope; a weight tied to another (GPT-2's lm_head to wte) becomes such a transposed copy
 * of the other parameter. So the gradient of `onnx::MatMul_N` is, transposed, the gradient of
 * `<module>.weight` — or, for a tied copy, one more term of the source parameter's gradient (PyTorch
 * reports a shared parameter once, with every use summed). GroupNorm's affine weight and bias [C]
 * become `onnx::Mul_N` / `onnx::Add_N` of shape [C, 1, ...], read by one Mul / Add in the module's
 * scope. Exporter-made weights that cannot be traced back (a Conv with a BatchNorm folded in) keep
 * their initializer names.
 */
import type { GraphIndex } from '../graph/graph.ts';
import { moduleScopes } from '../graph/scopes.ts';
import { tensorFromProto } from '../onnx/tensor-proto.ts';
import type { TensorProto } from '../onnx/proto.ts';
import { concatRows, moveAxis, type Tensor } from '../tensor.ts';

/**
 * Exporter-made initializers that are transposes of a PyTorch parameter — or, for
 * nn.MultiheadAttention's in_proj_weight [3d, d], of its q, k and v slices, read by three MatMuls
 * in the module's scope in that order.
 */
export interface TransposedCopy {
  /** The initializers holding the transposed parts, in the order their slices stack along axis 0. */
  initializers: string[];
  parameter: string;
  /** The parameter also exists as an initializer under its own name (a tied weight): the gradients add up. */
  tied: boolean;
  /** 'transposed': parts hold Wᵀ (stacked along axis 0 once transposed back); 'reshaped': the one part holds W with axes of size 1 added. */
  layout: 'transposed' | 'reshaped';
}

export function transposedCopies(graph: GraphIndex): TransposedCopy[] {
  const initializers = new Map(graph.proto.graph.initializer.map((tensor) => [tensor.name, tensor]));
  const named = [...initializers.values()].filter((tensor) => !tensor.name.startsWith('onnx::') && tensor.dims.length === 2 && (tensor.dataType === 1 || tensor.dataType === 11));
  const copies: TransposedCopy[] = [];
  const untiedByModule = new Map<string, { initializer: string; node: number }[]>();
  for (const tensor of initializers.values()) {
    if (!tensor.name.startsWith('onnx::') || tensor.dims.length !== 2) continue;
    const readers = graph.consumers.get(tensor.name) ?? [];
    if (readers.length !== 1) continue;
    const reader = graph.nodes[readers[0]];
    if (reader.opType !== 'MatMul' || reader.input[1] !== tensor.name) continue;
    const transposed = moveAxis(tensorFromProto(tensor), 1, 0); // Wᵀ stored → W
    const source = named.find((candidate) => sameValues(tensorFromProto(candidate), transposed));
    if (source) { copies.push({ initializers: [tensor.name], parameter: source.name, tied: true, layout: 'transposed' }); continue; }
    const module = moduleScopes(reader).at(-1);
    if (module) untiedByModule.set(module, [...(untiedByModule.get(module) ?? []), { initializer: tensor.name, node: readers[0] }]);
  }
  for (const [module, parts] of untiedByModule) {
    const ordered = parts.sort((a, b) => a.node - b.node).map((part) => part.initializer);
    // nn.MultiheadAttention (its in_proj_bias stays a named initializer): in_proj_weight as one MatMul
    // (self-attention), or as its q, k and v slices (separate query, key and value inputs).
    const multiHead = initializers.has(`${module}.in_proj_bias`) && !initializers.has(`${module}.in_proj_weight`);
    if (multiHead && (ordered.length === 1 || ordered.length === 3)) copies.push({ initializers: ordered, parameter: `${module}.in_proj_weight`, tied: false, layout: 'transposed' });
    else if (!multiHead && ordered.length === 1 && !initializers.has(`${module}.weight`)) copies.push({ initializers: ordered, parameter: `${module}.weight`, tied: false, layout: 'transposed' });
  }
  return [...copies, ...reshapedAffine(graph, initializers)];
}

/** GroupNorm's affine: an exporter-made [C, 1, ...] constant read by the one Mul (weight) or Add (bias) in a module without its own. */
function reshapedAffine(graph: GraphIndex, initializers: Map<string, TensorProto>): TransposedCopy[] {
  const copies: TransposedCopy[] = [];
  for (const tensor of initializers.values()) {
    const dims = tensor.dims.map(Number);
    if (!tensor.name.startsWith('onnx::') || dims.length < 2 || dims.filter((size) => size > 1).length !== 1 || (tensor.dataType !== 1 && tensor.dataType !== 11)) continue;
    const readers = graph.consumers.get(tensor.name) ?? [];
    const reader = readers.length === 1 ? graph.nodes[readers[0]] : undefined;
    const role = reader?.opType === 'Mul' ? 'weight' : reader?.opType === 'Add' ? 'bias' : undefined;
    const module = reader && moduleScopes(reader).at(-1);
    if (!role || !module || initializers.has(`${module}.${role}`)) continue;
    copies.push({ initializers: [tensor.name], parameter: `${module}.${role}`, tied: false, layout: 'reshaped' });
  }
  return copies;
}

/** Gradients keyed by initializer renamed and merged into PyTorch's parameters (transposed back, slices stacked). */
export function underPyTorchNames(gradients: Map<string, Tensor>, copies: readonly TransposedCopy[]): Map<string, Tensor> {
  const result = new Map(gradients);
  for (const copy of copies) {
    const parts = copy.initializers.map((name) => result.get(name));
    if (parts.some((part) => !part)) continue;
    copy.initializers.forEach((name) => result.delete(name));
    const asParameter = copy.layout === 'reshaped' ? { ...parts[0]!, dims: [parts[0]!.data.length] } : concatRows(parts.map((part) => moveAxis(part!, 1, 0)));
    const existing = result.get(copy.parameter);
    result.set(copy.parameter, existing ? { ...existing, data: (existing.data as Float32Array).map((value, k) => value + Number(asParameter.data[k])) } : asParameter);
  }
  return result;
}

function sameValues(a: Tensor, b: Tensor): boolean {
  return a.dtype === b.dtype && a.dims.length === b.dims.length && a.dims.every((size, axis) => size === b.dims[axis]) && a.data.every((value, k) => value === b.data[k]);
}
