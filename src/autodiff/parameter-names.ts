/**
 * Parameter gradients under PyTorch's names. The TorchScript exporter stores an nn.Linear's weight
 * W [out, in] as a new initializer `onnx::MatMul_N` holding Wᵀ, read by the MatMul inside the
 * module's scope; a weight tied to another (GPT-2's lm_head to wte) becomes such a transposed copy
 * of the other parameter. So the gradient of `onnx::MatMul_N` is, transposed, the gradient of
 * `<module>.weight` — or, for a tied copy, one more term of the source parameter's gradient (PyTorch
 * reports a shared parameter once, with every use summed). GroupNorm's affine weight and bias [C]
 * become `onnx::Mul_N` / `onnx::Add_N` of shape [C, 1, ...], read by one Mul / Add in the module's
 * scope. A Conv with an eval-mode BatchNorm folded in by constant folding holds neither module's
 * parameters but their fusion (torch.nn.utils.fusion.fuse_conv_bn_eval: W' = W·γ/σ,
 * b' = (b − μ)·γ/σ + β); its exporter-made weight and bias are named for both modules,
 * `<conv>.weight (+<batchnorm> folded)` and `<conv>.bias (+<batchnorm> folded)`, and their
 * gradients are those of the fused Conv's weight and bias in PyTorch.
 */
import type { GraphIndex } from '../graph/graph.ts';
import type { FoldedBatchNorm } from '../graph/hooks.ts';
import { moduleScopes } from '../graph/scopes.ts';
import { tensorFromProto } from '../onnx/tensor-proto.ts';
import { DataType, type TensorProto } from '../onnx/proto.ts';
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
  /**
   * 'transposed': parts hold Wᵀ (stacked along axis 0 once transposed back); 'reshaped': the one part
   * holds W with axes of size 1 added; 'renamed': the one part is the parameter as it is (a folded Conv's).
   */
  layout: 'transposed' | 'reshaped' | 'renamed';
}

/** `foldings`: the Convs carrying a folded BatchNorm (graph/hooks.ts, HookTable.foldings). */
export function transposedCopies(
  graph: GraphIndex,
  foldings: readonly FoldedBatchNorm[] = [],
): TransposedCopy[] {
  const initializers = new Map(
    graph.proto.graph.initializer.map((tensor) => [tensor.name, tensor]),
  );
  const named = [...initializers.values()].filter(
    (tensor) =>
      !tensor.name.startsWith('onnx::') &&
      tensor.dims.length === 2 &&
      (tensor.dataType === DataType.FLOAT || tensor.dataType === DataType.DOUBLE),
  );
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
    if (source) {
      copies.push({
        initializers: [tensor.name],
        parameter: source.name,
        tied: true,
        layout: 'transposed',
      });
      continue;
    }
    const module = moduleScopes(reader).at(-1);
    if (module)
      untiedByModule.set(module, [
        ...(untiedByModule.get(module) ?? []),
        { initializer: tensor.name, node: readers[0] },
      ]);
  }
  for (const [module, parts] of untiedByModule) {
    const ordered = parts.sort((a, b) => a.node - b.node).map((part) => part.initializer);
    // nn.MultiheadAttention (its in_proj_bias stays a named initializer): in_proj_weight as one MatMul
    // (self-attention), or as its q, k and v slices (separate query, key and value inputs).
    const multiHead =
      initializers.has(`${module}.in_proj_bias`) && !initializers.has(`${module}.in_proj_weight`);
    if (multiHead && (ordered.length === 1 || ordered.length === 3))
      copies.push({
        initializers: ordered,
        parameter: `${module}.in_proj_weight`,
        tied: false,
        layout: 'transposed',
      });
    else if (!multiHead && ordered.length === 1 && !initializers.has(`${module}.weight`))
      copies.push({
        initializers: ordered,
        parameter: `${module}.weight`,
        tied: false,
        layout: 'transposed',
      });
  }
  return [
    ...copies,
    ...reshapedAffine(graph, initializers),
    ...foldedConvParameters(graph, foldings),
  ];
}

/** The name of a Conv's weight or bias with a BatchNorm folded in: `layer1.0.conv1.weight (+layer1.0.bn1 folded)`. */
export function foldedParameterName(folding: FoldedBatchNorm, role: 'weight' | 'bias'): string {
  return `${folding.conv}.${role} (+${folding.batchNorm ?? 'BatchNorm'} folded)`;
}

/**
 * The weight and bias each Conv with a folded BatchNorm reads (initializers, or the Identity copies
 * PyTorch makes of merged initializers, which are parameters of their own), under both modules' names.
 */
function foldedConvParameters(
  graph: GraphIndex,
  foldings: readonly FoldedBatchNorm[],
): TransposedCopy[] {
  const copies: TransposedCopy[] = [];
  for (const folding of foldings) {
    const conv = graph.nodes.find(
      (node) =>
        (node.opType === 'Conv' || node.opType === 'ConvTranspose') &&
        moduleScopes(node).at(-1) === folding.conv &&
        readsInitializer(graph, node.input[1], folding.weight),
    );
    if (!conv) continue;
    copies.push({
      initializers: [conv.input[1]],
      parameter: foldedParameterName(folding, 'weight'),
      tied: false,
      layout: 'renamed',
    });
    if (conv.input[2])
      copies.push({
        initializers: [conv.input[2]],
        parameter: foldedParameterName(folding, 'bias'),
        tied: false,
        layout: 'renamed',
      });
  }
  return copies;
}

/** `value` is `initializer`, directly or through Identity copies. */
function readsInitializer(graph: GraphIndex, value: string, initializer: string): boolean {
  for (let current = value, depth = 0; depth < 8; depth++) {
    if (current === initializer) return true;
    const producer = graph.producer.get(current);
    if (producer === undefined || graph.nodes[producer].opType !== 'Identity') return false;
    current = graph.nodes[producer].input[0];
  }
  return false;
}

/** GroupNorm's affine: an exporter-made [C, 1, ...] constant read by the one Mul (weight) or Add (bias) in a module without its own. */
function reshapedAffine(
  graph: GraphIndex,
  initializers: Map<string, TensorProto>,
): TransposedCopy[] {
  const copies: TransposedCopy[] = [];
  for (const tensor of initializers.values()) {
    const dims = tensor.dims.map(Number);
    if (
      !tensor.name.startsWith('onnx::') ||
      dims.length < 2 ||
      dims.filter((size) => size > 1).length !== 1 ||
      (tensor.dataType !== DataType.FLOAT && tensor.dataType !== DataType.DOUBLE)
    )
      continue;
    const readers = graph.consumers.get(tensor.name) ?? [];
    const reader = readers.length === 1 ? graph.nodes[readers[0]] : undefined;
    const role =
      reader?.opType === 'Mul' ? 'weight' : reader?.opType === 'Add' ? 'bias' : undefined;
    const module = reader && moduleScopes(reader).at(-1);
    if (!role || !module || initializers.has(`${module}.${role}`)) continue;
    copies.push({
      initializers: [tensor.name],
      parameter: `${module}.${role}`,
      tied: false,
      layout: 'reshaped',
    });
  }
  return copies;
}

/**
 * Gradients keyed by initializer renamed and merged into PyTorch's parameters (transposed back,
 * slices stacked), each where its first part was in `gradients`' order.
 */
export function underPyTorchNames(
  gradients: Map<string, Tensor>,
  copies: readonly TransposedCopy[],
): Map<string, Tensor> {
  const result = new Map(gradients);
  const renamed = new Map<string, string>();
  for (const copy of copies) {
    const parts = copy.initializers.map((name) => result.get(name));
    if (parts.some((part) => !part)) continue;
    copy.initializers.forEach((name) => {
      result.delete(name);
      renamed.set(name, copy.parameter);
    });
    const asParameter =
      copy.layout === 'renamed'
        ? parts[0]!
        : copy.layout === 'reshaped'
          ? { ...parts[0]!, dims: [parts[0]!.data.length] }
          : concatRows(parts.map((part) => moveAxis(part!, 1, 0)));
    const existing = result.get(copy.parameter);
    result.set(
      copy.parameter,
      existing
        ? {
            ...existing,
            data: (existing.data as Float32Array).map(
              (value, k) => value + Number(asParameter.data[k]),
            ),
          }
        : asParameter,
    );
  }
  const ordered = new Map<string, Tensor>();
  for (const name of gradients.keys()) {
    const final = renamed.get(name) ?? name;
    if (!ordered.has(final)) ordered.set(final, result.get(final)!);
  }
  return ordered;
}

function sameValues(a: Tensor, b: Tensor): boolean {
  return (
    a.dtype === b.dtype &&
    a.dims.length === b.dims.length &&
    a.dims.every((size, axis) => size === b.dims[axis]) &&
    a.data.every((value, k) => value === b.data[k])
  );
}
