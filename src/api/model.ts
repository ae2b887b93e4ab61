/**
 * A model as a library user meets it: load, list hooks, run with a cache, run with
 * interventions or with functions that edit a hook's value.
 *
 *   const model = await Model.load('gpt2.onnx');
 *   const { output, cache } = await model.runWithCache({ input_ids });
 *   cache.get('h.0').select(0, 0);                              // [seq, d_model]
 *   await model.run({ input_ids }, { interventions: [ablate('h.0.mlp', 'zero', { units: [3] })] });
 *   await model.run({ input_ids }, { edit: { 'h.0': (value) => value.mean(0) } });
 */
import { InputError } from '../errors.ts';
import { patch, type Intervention } from '../graph/interventions.ts';
import type { ModuleCall } from '../graph/scopes.ts';
import { listHooks } from '../inspect/list-hooks.ts';
import { decodeModelBytes } from '../onnx/model-file.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { Model as RuntimeModel, type InputSpec } from '../runtime/model.ts';
import { run as runModel, type RunResult } from '../runtime/run.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import type { DType, Feeds } from '../tensor.ts';
import { ActivationCache } from './cache.ts';
import { toFeeds, type Inputs } from './inputs.ts';
import { Tensor, type TensorLike } from './tensor.ts';

export type LoadOptions = RuntimeOptions;

/** One hook as `teardown hooks` lists it. */
export interface HookInfo {
  name: string;
  /** 'module': a PyTorch module call's output; 'value': a raw ONNX value. */
  kind: 'module' | 'value';
  /** The raw ONNX value the hook reads. */
  value: string;
  /** The op producing the value ('input' for graph inputs). */
  op: string;
  dtype?: DType;
  /** Sizes with the examples' axis named 'batch' (and other symbolic axes by name, e.g. 'seq'). */
  shape: (number | string)[];
  /** The axis holding the examples; null for a value that is the same for every example. */
  batchAxis: number | null;
  /** Module hooks: the PyTorch module and which of its calls (0 for the first) the hook is. */
  call?: ModuleCall;
  /** Something to know to read the value right (e.g. a BatchNorm folded into this Conv). */
  note?: string;
}

/** A function that edits a hook's value: it gets the value and returns the one the rest of the model sees. */
export type HookEdit = (value: Tensor) => TensorLike | Promise<TensorLike>;

export interface RunOptions {
  /** Interventions (ablate, patch, scale, addVector, projectOut), applied in the order given. */
  interventions?: readonly Intervention[];
  /** Functions by hook name: the model runs up to the hook, the function edits its value, the rest runs on the edit. */
  edit?: Readonly<Record<string, HookEdit>>;
  /** Hook names or glob patterns (`blocks.*`) to cache. */
  hooks?: readonly string[];
}

export interface RunOutput {
  /** The model's outputs by graph output name. */
  outputs: Record<string, Tensor>;
  /** The first output (the logits of most models). */
  output: Tensor;
  /** The hooks asked for, after any intervention or edit. */
  cache: ActivationCache;
}

export class Model {
  private constructor(
    /** The runtime model behind the facade, for the lower-level functions (runtime/run.ts, inspect/, audit/). */
    readonly runtime: RuntimeModel,
  ) {}

  /** An ONNX file (external data beside it is read too). */
  static load(path: string, options: LoadOptions = {}): Model {
    return new Model(RuntimeModel.load(path, options));
  }

  /** An ONNX model held in memory as bytes or as a decoded ModelProto; `name` is used in messages. */
  static fromBytes(bytes: Uint8Array, name = 'model.onnx', options: LoadOptions = {}): Model {
    return Model.fromProto(decodeModelBytes(bytes, name), name, options);
  }

  static fromProto(proto: ModelProto, name = 'model.onnx', options: LoadOptions = {}): Model {
    return new Model(RuntimeModel.fromProto(proto, name, options));
  }

  get inputs(): InputSpec[] {
    return this.runtime.inputs;
  }
  get outputNames(): string[] {
    return this.runtime.outputNames;
  }
  get path(): string {
    return this.runtime.path;
  }

  /**
   * Every hook with its shape, measured by running one and two examples (the axis that grows is
   * 'batch'). Without `sample` inputs, inputs are made from the declared shapes.
   */
  async hooks(sample?: Inputs): Promise<HookInfo[]> {
    const listing = await listHooks(
      this.runtime,
      sample === undefined ? undefined : toFeeds(this.runtime, sample),
    );
    return listing.hooks.map(({ name, kind, value, op, dtype, shape, batchAxis, call, note }) => ({
      name,
      kind,
      value,
      op,
      dtype,
      shape,
      batchAxis,
      call,
      note,
    }));
  }

  /**
   * Runs the model and caches hooks: `hooks` (names or globs), or by default every module hook
   * (every hook of a model without PyTorch module scopes).
   */
  runWithCache(inputs: Inputs, options: RunOptions = {}): Promise<RunOutput> {
    return this.run(inputs, { ...options, hooks: options.hooks ?? this.defaultHooks() });
  }

  /** Runs the model with interventions and edit functions; caches `hooks` when asked. */
  async run(inputs: Inputs, options: RunOptions = {}): Promise<RunOutput> {
    const feeds = toFeeds(this.runtime, inputs);
    const interventions = [
      ...(options.interventions ?? []),
      ...(await this.editsAsPatches(feeds, options)),
    ];
    return wrap(
      await runModel(this.runtime, feeds, { cache: options.hooks, interventions }),
      this.runtime.outputNames[0],
    );
  }

  /** Frees the onnxruntime sessions. */
  release(): Promise<void> {
    return this.runtime.release();
  }

  private defaultHooks(): string[] {
    const modules = this.runtime.hooks.hooks.filter((hook) => hook.kind === 'module');
    return (modules.length ? modules : this.runtime.hooks.hooks).map((hook) => hook.name);
  }

  /**
   * Edit functions as whole-hook patches (exact, as nnsight's edits): in graph order, one run
   * reads the hook with the interventions and earlier edits applied, the function edits the value,
   * and the edited value replaces the hook in every later run.
   */
  private async editsAsPatches(feeds: Feeds, options: RunOptions): Promise<Intervention[]> {
    const edits = Object.entries(options.edit ?? {});
    const position = (hook: string) =>
      this.runtime.graph.producer.get(this.runtime.hooks.resolve(hook).value) ?? -1;
    edits.sort(([a], [b]) => position(a) - position(b));
    const patches: Intervention[] = [];
    for (const [hook, edit] of edits) {
      const { cache } = await runModel(this.runtime, feeds, {
        cache: [hook],
        interventions: [...(options.interventions ?? []), ...patches],
      });
      const value = Tensor.from(cache.get(hook)!);
      const edited = Tensor.from(await edit(value));
      if (edited.dtype !== value.dtype || edited.dims.join() !== value.dims.join()) {
        throw new InputError(
          `The edit of hook '${hook}' returned a ${edited.dtype} tensor of shape [${edited.dims}], but the hook holds ${value.dtype} [${value.dims}]: return a value of the hook's dtype and shape.`,
        );
      }
      patches.push(patch(hook, edited));
    }
    return patches;
  }
}

function wrap(result: RunResult, firstOutput: string): RunOutput {
  const outputs = Object.fromEntries(
    Object.entries(result.outputs).map(([name, value]) => [name, Tensor.from(value)]),
  );
  const cache = new ActivationCache(
    new Map([...result.cache].map(([name, value]) => [name, Tensor.from(value)])),
  );
  return { outputs, output: outputs[firstOutput], cache };
}
