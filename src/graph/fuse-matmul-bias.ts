/**
 * MatMul(X, W) + b with a constant matrix W (an initializer, or the Transpose of one, as PyTorch
 * exports nn.Linear) and a constant vector b, rewritten as one Gemm over X's rows: X reshaped to
 * [rows, d_in], Gemm(X, W, b), reshaped back to X's leading axes and d_out. onnxruntime fuses the
 * pair itself only when X is 2-D; otherwise the bias add is one more pass over the product (the gpt
 * fixture's forward over 384 sequences: 9.0 → 8.1 ms). The MatMul's own output disappears, so
 * values in `keep` (read or patched from outside) are never fused away. Results differ from the
 * unfused graph by rounding only: use it for whole families of runs (a sweep's every run), not
 * next to unfused ones whose outputs are compared exactly.
 */
import { int, makeNode, NameAllocator } from './builder.ts';
import { derive } from './edit.ts';
import { toNumber, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.ts';
import { tensorToProto } from '../onnx/tensor-proto.ts';
import { tensor } from '../tensor.ts';

export function fuseMatMulBias(proto: ModelProto, keep: ReadonlySet<string>): ModelProto {
  const graph = proto.graph;
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const producer = new Map(
    graph.node.flatMap((node) => node.output.map((output) => [output, node] as const)),
  );
  const reads = new Map<string, number>();
  for (const node of graph.node)
    for (const input of node.input) reads.set(input, (reads.get(input) ?? 0) + 1);
  const graphOutputs = new Set(graph.output.map((output) => output.name));
  const names = new NameAllocator(
    new Set([
      ...graph.node.flatMap((node) => [node.name, ...node.input, ...node.output]),
      ...initializers.keys(),
    ]),
  );
  const constants: TensorProto[] = [];
  const constant = (values: number[]) => {
    const name = names.fresh('teardown/fused/const');
    constants.push(tensorToProto(name, tensor('int64', [values.length], values)));
    return name;
  };

  /** W as [d_in, d_out] in Gemm's terms: the initializer and whether Gemm must transpose it. */
  const weightOf = (
    value: string,
  ): { weight: string; transB: boolean; dims: number[] } | undefined => {
    const direct = initializers.get(value);
    if (direct?.dims.length === 2)
      return { weight: value, transB: false, dims: direct.dims.map(toNumber) };
    const transpose = producer.get(value);
    const source =
      transpose?.opType === 'Transpose' ? initializers.get(transpose.input[0]) : undefined;
    const perm = transpose?.attribute.find((a) => a.name === 'perm')?.ints.map(toNumber);
    if (!source || source.dims.length !== 2 || (perm && (perm[0] !== 1 || perm[1] !== 0)))
      return undefined;
    return {
      weight: source.name,
      transB: true,
      dims: [toNumber(source.dims[1]), toNumber(source.dims[0])],
    };
  };

  const replacements = new Map<NodeProto, NodeProto[]>();
  for (const add of graph.node) {
    if (add.opType !== 'Add') continue;
    const product = add.input.find((input) => producer.get(input)?.opType === 'MatMul');
    const bias = add.input.find((input) => input !== product);
    const matMul = product === undefined ? undefined : producer.get(product)!;
    const biasDims = bias === undefined ? undefined : initializers.get(bias)?.dims.map(toNumber);
    if (
      !matMul ||
      !product ||
      !bias ||
      reads.get(product) !== 1 ||
      keep.has(product) ||
      graphOutputs.has(product)
    )
      continue;
    const weight = weightOf(matMul.input[1]);
    if (!weight || !biasDims || biasDims.length !== 1 || biasDims[0] !== weight.dims[1]) continue;
    const x = matMul.input[0];
    const hint = `${add.name}/fused`;
    const rows = names.fresh(`${hint}/rows`);
    const gemm = names.fresh(`${hint}/gemm`);
    const leading = names.fresh(`${hint}/leading`);
    const shape = names.fresh(`${hint}/shape`);
    const xShape = names.fresh(`${hint}/x_shape`);
    replacements.set(matMul, []);
    replacements.set(add, [
      makeNode(
        names.fresh(`${hint}/Reshape`),
        'Reshape',
        [x, constant([-1, weight.dims[0]])],
        [rows],
      ),
      makeNode(names.fresh(`${hint}/Gemm`), 'Gemm', [rows, weight.weight, bias], [gemm], {
        transB: weight.transB ? int(1) : undefined,
      }),
      makeNode(names.fresh(`${hint}/Shape`), 'Shape', [x], [xShape]),
      makeNode(
        names.fresh(`${hint}/Slice`),
        'Slice',
        [xShape, constant([0]), constant([-1])],
        [leading],
      ),
      makeNode(
        names.fresh(`${hint}/Concat`),
        'Concat',
        [leading, constant([weight.dims[1]])],
        [shape],
        { axis: int(0) },
      ),
      makeNode(names.fresh(`${hint}/Reshape_back`), 'Reshape', [gemm, shape], [add.output[0]]),
    ]);
  }
  if (replacements.size === 0) return proto;
  const nodes = graph.node.flatMap((node) => replacements.get(node) ?? [node]);
  return derive(proto, {
    graph: derive(graph, { node: nodes, initializer: [...graph.initializer, ...constants] }),
  });
}
