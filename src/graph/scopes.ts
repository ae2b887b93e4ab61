/**
 * The PyTorch modules a node was exported from, outermost first, as dotted module paths:
 * ['blocks', 'blocks.0', 'blocks.0.mlp', 'blocks.0.mlp.1'].
 *
 * - TorchScript exporter: the node name is the scope, one component per module attribute,
 *   `/blocks/blocks.0/mlp/mlp.1/Mul_1`; children of a Sequential or ModuleList repeat their
 *   parent's name (`blocks.0` under `blocks`), so a component that extends the previous one is
 *   that module's path relative to the grandparent.
 * - Dynamo exporter (PyTorch ≥ 2.5): node metadata `pkg.torch.onnx.name_scopes` holds the
 *   Python repr of the module stack, `['', 'blocks.0', 'blocks.0.mlp', 'blocks.0.mlp.1', 'gelu']`,
 *   root first and the node's own name last.
 */
import type { NodeProto } from '../onnx/proto.ts';
import type { GraphIndex } from './graph.ts';

export const DYNAMO_SCOPES_KEY = 'pkg.torch.onnx.name_scopes';

export function moduleScopes(node: NodeProto): string[] {
  const dynamo = node.metadataProps.find((entry) => entry.key === DYNAMO_SCOPES_KEY);
  if (dynamo) return scopesFromDynamo(dynamo.value);
  return scopesFromNodeName(node.name ?? '');
}

export function scopesFromNodeName(name: string): string[] {
  if (!name.startsWith('/')) return [];
  const components = name.split('/').slice(1, -1);
  const scopes: string[] = [];
  let path = '';
  let previous = '';
  for (const component of components) {
    if (!component) continue;
    path =
      previous && component.startsWith(`${previous}.`)
        ? path + component.slice(previous.length)
        : path
          ? `${path}.${component}`
          : component;
    scopes.push(path);
    previous = component;
  }
  return scopes;
}

export function scopesFromDynamo(repr: string): string[] {
  const names = [...repr.matchAll(/'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"/g)].map(
    (match) => match[1] ?? match[2],
  );
  return names.slice(0, -1).filter((name) => name !== '');
}

/** Which call of a PyTorch module a scope is: `layer1.0.relu_1` is call 1 (the second) of `layer1.0.relu`. */
export interface ModuleCall {
  module: string;
  /** 0 for the first call. */
  index: number;
}

/**
 * The module call behind each scope. The TorchScript exporter (and torch.fx) name the scope of a
 * module's (k+1)-th call `<name>_<k>`: ResNet's BasicBlock calls `self.relu` twice, giving
 * `layer1.0.relu` and `layer1.0.relu_1`. `x_1` counts as a repeated call only when `x` is a scope
 * too; otherwise it is a module of that name. PyTorch's own forward hook on `relu` fires for every
 * call, where teardown has one hook per call.
 */
export function moduleCalls(scopes: Iterable<string>): Map<string, ModuleCall> {
  const all = new Set(scopes);
  const calls = new Map<string, ModuleCall>();
  for (const scope of all) {
    const repeated = /^(.*)_(\d+)$/.exec(scope);
    const first =
      repeated && all.has(repeated[1]) && !repeated[1].endsWith('.') ? repeated[1] : undefined;
    calls.set(
      scope,
      first ? { module: first, index: Number(repeated![2]) } : { module: scope, index: 0 },
    );
  }
  return calls;
}

/**
 * The float activations that nodes whose names start with `scope` read from outside it: for a
 * transformer block, its residual-stream input (what a PyTorch forward pre-hook on the block
 * sees), when the block reads exactly one.
 */
export function floatActivationsEntering(graph: GraphIndex, scope: string): string[] {
  const inside = (index: number | undefined) =>
    index !== undefined && (graph.nodes[index].name ?? '').startsWith(scope);
  const read = graph.nodes
    .filter((node) => (node.name ?? '').startsWith(scope))
    .flatMap((node) => node.input)
    .filter(
      (value) =>
        graph.isActivation(value) && graph.isFloat(value) && !inside(graph.producer.get(value)),
    );
  return [...new Set(read)];
}
