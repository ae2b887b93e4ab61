/**
 * Hooks: named values of a model that can be read or replaced.
 *
 * Every raw ONNX value is a hook under its own name. A model exported from PyTorch also gets a
 * hook per module call (`blocks.0.mlp.1`), defined as the module's output: of the float values
 * produced inside the module's scope that are computed from a graph input and read outside the
 * scope (or are graph outputs), the last in graph order. A module with no such value is absent,
 * with the reason. A module called twice (ResNet's `relu`) has one scope per call, `relu` and
 * `relu_1` (the TorchScript exporter's and torch.fx's convention), so each call is its own hook.
 *
 * Constant folding can merge modules: a BatchNorm folded into its Conv leaves the Conv's weights
 * as exporter-made `onnx::Conv_*` initializers, and the Conv's hook then carries the BatchNorm's
 * output, which the hook says — once, on the Conv's own hook, never on the modules around it.
 */
import { HookError, nearestNames } from '../errors.ts';
import type { DType } from '../tensor.ts';
import type { GraphIndex } from './graph.ts';
import { channelMapValues } from './channel-maps.ts';
import { moduleCalls, moduleScopes, type ModuleCall } from './scopes.ts';

export interface Hook {
  name: string;
  /** The raw ONNX value the hook reads. */
  value: string;
  kind: 'module' | 'value';
  /** Op of the node producing the value ('input' for graph inputs). */
  op: string;
  dtype?: DType;
  /** Module hooks: the PyTorch module and which of its calls (0 for the first) the hook is. */
  call?: ModuleCall;
  /** Something a user must know to read the value right (e.g. a folded BatchNorm). */
  note?: string;
  /** A channel-first map ([batch, channels, ...], graph/channel-maps.ts): its units are channels. */
  channelMap?: boolean;
}

export interface AbsentModule {
  name: string;
  reason: string;
}

/** A BatchNorm the exporter folded into a Conv. */
export interface FoldedBatchNorm {
  /** The Conv module whose hook now carries the BatchNorm's output. */
  conv: string;
  /** The exporter-made initializer holding the folded weights. */
  weight: string;
  /** The BatchNorm module, inferred from its sibling's name (conv1 → bn1, downsample.0 → downsample.1). */
  batchNorm?: string;
}

export class HookTable {
  readonly hooks: Hook[] = [];
  readonly absent: AbsentModule[] = [];
  /** One per Conv that carries a folded BatchNorm. */
  readonly foldings: FoldedBatchNorm[] = [];
  private readonly byName = new Map<string, Hook>();

  constructor(readonly graph: GraphIndex) {
    this.addModuleHooks();
    for (const name of graph.valueNames()) {
      if (this.byName.has(name)) continue;
      this.add({ name, value: name, kind: 'value', op: this.opOf(name), dtype: graph.dtype(name) });
    }
    const maps = channelMapValues(graph);
    for (const hook of this.hooks) if (maps.has(hook.value)) hook.channelMap = true;
  }

  /** One sentence per folded BatchNorm, for listings and for names that have no hook. */
  get foldingNotes(): string[] {
    return this.foldings.map(foldingNote);
  }

  get(name: string): Hook | undefined {
    return this.byName.get(name);
  }

  /** The hook called `name`, or a HookError that explains absence and lists the nearest names. */
  resolve(name: string): Hook {
    const hook = this.byName.get(name);
    if (hook) return hook;
    const absent = this.absent.find((module) => module.name === name);
    if (absent) throw new HookError(`Module '${name}' has no hook: ${absent.reason}`);
    const folded = this.foldings.find((folding) => folding.batchNorm === name);
    if (folded)
      throw new HookError(
        `Module '${name}' has no hook: ${foldingNote(folded)} Read '${folded.conv}' instead.`,
      );
    throw new HookError(
      `No hook named '${name}'.${this.absenceExplanation()} Nearest hook names: ${nearestNames(name, this.byName.keys()).join(', ')}. List them all with 'teardown hooks MODEL'.`,
    );
  }

  /** Hooks whose names match any of the glob patterns (`*` any run of characters, `?` one). */
  match(patterns: readonly string[]): Hook[] {
    const matched = new Set<Hook>();
    for (const pattern of patterns) {
      const regex = globToRegExp(pattern);
      const hits = this.hooks.filter((hook) => regex.test(hook.name));
      if (hits.length === 0) {
        if (!/[*?]/.test(pattern)) this.resolve(pattern);
        throw new HookError(
          `Hook pattern '${pattern}' matches no hook.${this.absenceExplanation()} Nearest hook names: ${nearestNames(pattern, this.byName.keys()).join(', ')}. List them all with 'teardown hooks MODEL'.`,
        );
      }
      hits.forEach((hook) => matched.add(hook));
    }
    return [...matched];
  }

  /** Folding explains a missing BatchNorm name; a long list of them would bury the nearest names. */
  private absenceExplanation(): string {
    if (this.foldings.length === 0) return '';
    if (this.foldings.length <= 2) return ` ${this.foldingNotes.join(' ')}`;
    return ` The exporter folded ${this.foldings.length} BatchNorms into their Convs (${this.foldings
      .map((f) => f.conv)
      .slice(0, 3)
      .join(', ')}, ...), which carry their outputs; 'teardown hooks MODEL' lists them.`;
  }

  private add(hook: Hook): void {
    this.hooks.push(hook);
    this.byName.set(hook.name, hook);
  }

  private opOf(value: string): string {
    const index = this.graph.producer.get(value);
    return index === undefined ? 'input' : this.graph.nodes[index].opType;
  }

  private addModuleHooks(): void {
    const members = modulesWithMembers(this.graph);
    const calls = moduleCalls(members.keys());
    for (const [module, nodeIndices] of members) {
      const value = moduleOutput(this.graph, nodeIndices);
      if (!value) {
        this.absent.push({
          name: module,
          reason: `no float value computed from the model's inputs leaves its scope (its ${nodeIndices.size} node(s) compute only constants, shapes or indices).`,
        });
        continue;
      }
      const folding = foldedBatchNorm(this.graph, module, value, new Set(members.keys()));
      if (folding) this.foldings.push(folding);
      this.add({
        name: module,
        value,
        kind: 'module',
        op: this.opOf(value),
        dtype: this.graph.dtype(value),
        call: calls.get(module),
        note: folding
          ? `carries the output of the BatchNorm folded into this Conv by the exporter${folding.batchNorm ? ` ('${folding.batchNorm}', by its name)` : ''}, not the raw convolution (weights '${folding.weight}')`
          : undefined,
      });
    }
  }
}

function foldingNote(folding: FoldedBatchNorm): string {
  const which = folding.batchNorm
    ? `the BatchNorm '${folding.batchNorm}' (inferred from the names)`
    : 'the BatchNorm that followed it';
  return `The exporter folded a BatchNorm into '${folding.conv}' (its weights are the exporter-made initializer '${folding.weight}', not '${folding.conv}.weight'): ${which} has no hook of its own, and its output is what '${folding.conv}' carries.`;
}

/** Module path → the indices of every node inside it (its own and its submodules'). */
function modulesWithMembers(graph: GraphIndex): Map<string, Set<number>> {
  const members = new Map<string, Set<number>>();
  graph.nodes.forEach((node, index) => {
    for (const scope of moduleScopes(node)) {
      const set = members.get(scope) ?? new Set<number>();
      set.add(index);
      members.set(scope, set);
    }
  });
  return members;
}

function moduleOutput(graph: GraphIndex, inside: Set<number>): string | undefined {
  let best: { node: number; slot: number; value: string } | undefined;
  for (const nodeIndex of inside) {
    graph.nodes[nodeIndex].output.forEach((value, slot) => {
      if (!value || !graph.fromInputs.has(value) || !graph.isFloat(value)) return;
      const readOutside =
        graph.outputNames.has(value) ||
        (graph.consumers.get(value) ?? []).some((reader) => !inside.has(reader));
      if (!readOutside) return;
      if (!best || nodeIndex > best.node || (nodeIndex === best.node && slot > best.slot))
        best = { node: nodeIndex, slot, value };
    });
  }
  return best?.value;
}

/**
 * The module's output is a Conv whose weight is exporter-made (`onnx::Conv_*`, possibly through
 * the Identity copies of merged initializers) rather than the module's own parameter: the sign of
 * a BatchNorm folded in by constant folding. Containers whose output is something else (a Relu
 * after the Conv) carry no note, even though the Conv is inside them.
 */
function foldedBatchNorm(
  graph: GraphIndex,
  module: string,
  value: string,
  modules: ReadonlySet<string>,
): FoldedBatchNorm | undefined {
  const node = graph.nodes[graph.producer.get(value)!];
  if (node.opType !== 'Conv' && node.opType !== 'ConvTranspose') return undefined;
  // A container whose output is the Conv's (ResNet's `downsample`, once its BatchNorm is gone) does carry the BatchNorm's output, as in PyTorch.
  if (moduleScopes(node).at(-1) !== module) return undefined;
  const weight = initializerBehindIdentities(graph, node.input[1]);
  if (!weight || !weight.startsWith('onnx::')) return undefined;
  return { conv: module, weight, batchNorm: inferredBatchNorm(module, modules) };
}

function initializerBehindIdentities(graph: GraphIndex, name: string): string | undefined {
  let current = name;
  for (let depth = 0; depth < 8; depth++) {
    if (graph.initializerNames.has(current)) return current;
    const producer = graph.producer.get(current);
    if (producer === undefined || graph.nodes[producer].opType !== 'Identity') return undefined;
    current = graph.nodes[producer].input[0];
  }
  return undefined;
}

/**
 * The folded BatchNorm's module, by the conventions of torchvision and most hand-written models:
 * `conv1` → `bn1` (ResNet), `…downsample.0` → `…downsample.1` and `features.0.0` → `features.0.1`
 * (a Sequential of Conv, BatchNorm, activation). Only a name that has no scope of its own in the
 * graph qualifies: a folded module leaves no node behind.
 */
function inferredBatchNorm(conv: string, modules: ReadonlySet<string>): string | undefined {
  const dot = conv.lastIndexOf('.');
  const parent = dot < 0 ? '' : conv.slice(0, dot + 1);
  const last = conv.slice(dot + 1);
  const candidate = /^\d+$/.test(last)
    ? `${parent}${Number(last) + 1}`
    : /conv/i.test(last)
      ? `${parent}${last.replace(/conv/i, (match) => (match === match.toUpperCase() ? 'BN' : 'bn'))}`
      : undefined;
  return candidate && !modules.has(candidate) ? candidate : undefined;
}

export function globToRegExp(pattern: string): RegExp {
  const body = [...pattern]
    .map((char) =>
      char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${body}$`);
}
