/**
 * Hooks: named values of a model that can be read or replaced.
 *
 * Every raw ONNX value is a hook under its own name. A model exported from PyTorch also gets a
 * hook per module (`blocks.0.mlp.1`), defined as the module's output: of the float values
 * produced inside the module's scope that are computed from a graph input and read outside the
 * scope (or are graph outputs), the last in graph order. A module with no such value is absent,
 * with the reason. Constant folding can merge modules: a BatchNorm folded into its Conv leaves
 * the Conv's weights as exporter-made `onnx::Conv_*` initializers, and the Conv's hook then
 * carries the BatchNorm's output, which the hook says.
 */
import { HookError, nearestNames } from '../errors.ts';
import type { DType } from '../tensor.ts';
import type { GraphIndex } from './graph.ts';
import { moduleScopes } from './scopes.ts';

export interface Hook {
  name: string;
  /** The raw ONNX value the hook reads. */
  value: string;
  kind: 'module' | 'value';
  /** Op of the node producing the value ('input' for graph inputs). */
  op: string;
  dtype?: DType;
  /** Something a user must know to read the value right (e.g. a folded BatchNorm). */
  note?: string;
}

export interface AbsentModule {
  name: string;
  reason: string;
}

export class HookTable {
  readonly hooks: Hook[] = [];
  readonly absent: AbsentModule[] = [];
  private readonly byName = new Map<string, Hook>();
  /** Notes on modules folded away by the exporter, used to explain names that have no hook. */
  readonly foldingNotes: string[] = [];

  constructor(readonly graph: GraphIndex) {
    this.addModuleHooks();
    for (const name of graph.valueNames()) {
      if (this.byName.has(name)) continue;
      this.add({ name, value: name, kind: 'value', op: this.opOf(name), dtype: graph.dtype(name) });
    }
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
    throw new HookError(`No hook named '${name}'.${this.absenceExplanation()} Nearest hook names: ${nearestNames(name, this.byName.keys()).join(', ')}. List them all with 'teardown hooks MODEL'.`);
  }

  /** Hooks whose names match any of the glob patterns (`*` any run of characters, `?` one). */
  match(patterns: readonly string[]): Hook[] {
    const matched = new Set<Hook>();
    for (const pattern of patterns) {
      const regex = globToRegExp(pattern);
      const hits = this.hooks.filter((hook) => regex.test(hook.name));
      if (hits.length === 0) {
        if (!/[*?]/.test(pattern)) this.resolve(pattern);
        throw new HookError(`Hook pattern '${pattern}' matches no hook.${this.absenceExplanation()} Nearest hook names: ${nearestNames(pattern, this.byName.keys()).join(', ')}. List them all with 'teardown hooks MODEL'.`);
      }
      hits.forEach((hook) => matched.add(hook));
    }
    return [...matched];
  }

  private absenceExplanation(): string {
    return this.foldingNotes.length ? ` ${this.foldingNotes.join(' ')}` : '';
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
    for (const [module, nodeIndices] of members) {
      const value = moduleOutput(this.graph, nodeIndices);
      if (!value) {
        this.absent.push({ name: module, reason: `no float value computed from the model's inputs leaves its scope (its ${nodeIndices.size} node(s) compute only constants, shapes or indices).` });
        continue;
      }
      const note = foldedBatchNormNote(this.graph, module, nodeIndices);
      if (note) this.foldingNotes.push(`The exporter folded a BatchNorm into '${module}' (its weights are the exporter-made initializer '${note.weight}', not '${module}.weight'): a BatchNorm module that followed '${module}' has no hook of its own, and its output is what '${module}' carries.`);
      this.add({
        name: module, value, kind: 'module', op: this.opOf(value), dtype: this.graph.dtype(value),
        note: note ? `carries the output of a BatchNorm folded into this Conv by the exporter, not the raw convolution (weights '${note.weight}')` : undefined,
      });
    }
  }
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
      const readOutside = graph.outputNames.has(value) || (graph.consumers.get(value) ?? []).some((reader) => !inside.has(reader));
      if (!readOutside) return;
      if (!best || nodeIndex > best.node || (nodeIndex === best.node && slot > best.slot)) best = { node: nodeIndex, slot, value };
    });
  }
  return best?.value;
}

/**
 * A Conv inside `module` whose weight initializer is exporter-made (`onnx::Conv_*`) rather than
 * the module's own parameter: the sign of a BatchNorm folded in by constant folding.
 */
function foldedBatchNormNote(graph: GraphIndex, module: string, inside: Set<number>): { weight: string } | undefined {
  for (const nodeIndex of inside) {
    const node = graph.nodes[nodeIndex];
    if (node.opType !== 'Conv' && node.opType !== 'ConvTranspose') continue;
    const weight = node.input[1];
    if (graph.initializerNames.has(weight) && weight.startsWith('onnx::') && !weight.startsWith(`${module}.`)) {
      return { weight };
    }
  }
  return undefined;
}

export function globToRegExp(pattern: string): RegExp {
  const body = [...pattern].map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}
