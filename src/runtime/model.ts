/**
 * A loaded model: its ModelProto, graph index, hooks, and the onnxruntime sessions of its
 * edited variants, cached by edit signature so that repeated runs of the same structure (the
 * same hooks cached, the same hooks intervened on) reuse one session.
 */
import { InputError } from '../errors.ts';
import { readModelFile, type ModelFile } from '../onnx/model-file.ts';
import { encodeModel, toNumber, type ModelProto } from '../onnx/proto.ts';
import { dtypeOfCode, elementTypeName } from '../onnx/tensor-proto.ts';
import { validateModel } from '../onnx/validate.ts';
import { GraphIndex } from '../graph/graph.ts';
import { HookTable } from '../graph/hooks.ts';
import { applyEdits, derive, editSignature, nodesComputing, type EditPlan } from '../graph/edit.ts';
import { downstreamGraph } from '../graph/downstream.ts';
import { shapeGraph, type ShapeRead } from '../graph/shape-graph.ts';
import { dimsAtBatch } from '../graph/units.ts';
import { probeHookShapes } from './probe.ts';
import { shapeString, tensor, type DType, type Tensor } from '../tensor.ts';
import { explainLoadError } from './ort-errors.ts';
import { Session, type Feeds, type RuntimeOptions } from './session.ts';
import { WeightFile } from './weight-file.ts';

export interface InputSpec {
  name: string;
  dtype: DType | undefined;
  /** ONNX element type name, for messages about types teardown does not handle. */
  typeName: string;
  /** Fixed sizes as numbers, symbolic ones (batch, seq) as their names, unknown as '?'. */
  dims: (number | string)[] | undefined;
}

export interface PreparedSession {
  session: Session;
  /** Exposed value → graph output name. */
  outputOf: Map<string, string>;
}

export class Model {
  readonly graph: GraphIndex;
  readonly hooks: HookTable;
  readonly inputs: InputSpec[];
  private readonly sessions = new Map<string, Promise<PreparedSession>>();
  private readonly downstreamSessions = new Map<
    string,
    Promise<{ session: Session; inputs: string[] } | undefined>
  >();
  private readonly variants = new Map<string, Promise<Model>>();
  private readonly staticSessions = new Map<string, Promise<PreparedSession>>();
  private readonly staticResults = new Map<string, Record<string, Tensor>>();
  private readonly shapeSessions = new Map<
    string,
    Promise<{ session: Session; reads: ShapeRead[] } | undefined>
  >();

  /**
   * `weights`: the file sessions read the weights from (runtime/weight-file.ts), when the model
   * was loaded from a file holding them; otherwise every session gets its own copy.
   */
  private constructor(
    readonly file: ModelFile,
    readonly options: RuntimeOptions,
    private readonly weights?: WeightFile,
  ) {
    this.graph = new GraphIndex(file.proto);
    this.hooks = new HookTable(this.graph);
    this.inputs = this.graph.inputs.map((input) => {
      const tensorType = input.type?.tensorType;
      return {
        name: input.name,
        dtype: tensorType ? dtypeOfCode(tensorType.elemType) : undefined,
        typeName: tensorType ? elementTypeName(tensorType.elemType) : 'non-tensor',
        dims: tensorType?.shape?.dim.map((dim) =>
          dim.dimParam
            ? dim.dimParam
            : dim.dimValue !== undefined && dim.dimValue !== null
              ? toNumber(dim.dimValue)
              : '?',
        ),
      };
    });
  }

  static load(path: string, options: RuntimeOptions = {}): Model {
    const file = readModelFile(path);
    return new Model(file, options, WeightFile.of(path, file.proto));
  }

  /** A model built in memory (by teardown's builders or a test), described as `name` in messages. */
  static fromProto(proto: ModelProto, name: string, options: RuntimeOptions = {}): Model {
    validateModel(proto, name);
    return new Model({ path: name, proto, sha256: '' }, options);
  }

  get path(): string {
    return this.file.path;
  }
  get proto(): ModelProto {
    return this.file.proto;
  }
  get outputNames(): string[] {
    return this.file.proto.graph.output.map((output) => output.name);
  }
  /** Whether sessions read the large weights from the model file, mapped (runtime/weight-file.ts), instead of a copy each. */
  get mapsWeights(): boolean {
    return this.weights !== undefined;
  }

  /** The session for the graph edited by `plan`, created once per distinct structure. */
  prepare(plan: EditPlan): Promise<PreparedSession> {
    const signature = editSignature(plan);
    let prepared = this.sessions.get(signature);
    if (!prepared) {
      prepared = (async () => {
        const edited = applyEdits(this.graph, plan);
        const name = `'${this.path}'`;
        const session = await this.createSession(edited.proto, name, (message) =>
          explainLoadError(message, this.proto, name),
        );
        return { session, outputOf: edited.outputOf };
      })();
      this.sessions.set(signature, prepared);
      prepared.catch(() => this.sessions.delete(signature));
    }
    return prepared;
  }

  /**
   * Values that are not activations (shape arithmetic, `Range` positions, constants and tables
   * indexed by them; GraphIndex.dataDependent) for inputs of the shapes of `feeds`. They are read
   * through a session at onnxruntime's basic optimization level, never by exposing them from the
   * main one: onnxruntime-node 1.30 dies of a segmentation fault when a `Range` output is a graph
   * output at the extended level. Computed once per set of values and input shapes.
   */
  async staticValues(values: readonly string[], feeds: Feeds): Promise<Record<string, Tensor>> {
    if (values.length === 0) return {};
    const signature = [...values].sort().join('\u0000');
    const shapes = Object.entries(feeds)
      .map(([name, value]) => `${name}:${value.dims}`)
      .sort()
      .join(';');
    const known = this.staticResults.get(`${signature}|${shapes}`);
    if (known) return known;
    let prepared = this.staticSessions.get(signature);
    if (!prepared) {
      prepared = (async () => {
        const edited = applyEdits(this.graph, {
          expose: values,
          rewrites: [],
          inputTypes: new Map(),
        });
        // Only the exposed values are outputs, computed by the nodes they need: onnxruntime runs
        // every node of a graph, so the model's activations would be computed (and their weights read) for nothing.
        const exposed = new Set(edited.outputOf.values());
        const graph = edited.proto.graph;
        const node = nodesComputing(graph.node, exposed);
        const used = new Set(node.flatMap((kept) => kept.input));
        const proto = derive(edited.proto, {
          graph: derive(graph, {
            output: graph.output.filter((output) => exposed.has(output.name)),
            node,
            initializer: graph.initializer.filter((tensor) => used.has(tensor.name)),
          }),
        });
        const session = await this.createSession(proto, `'${this.path}'`, undefined, 'basic');
        return { session, outputOf: edited.outputOf };
      })();
      this.staticSessions.set(signature, prepared);
      prepared.catch(() => this.staticSessions.delete(signature));
    }
    const { session, outputOf } = await prepared;
    const results = await session.run(feeds, [
      ...new Set(values.map((value) => outputOf.get(value)!)),
    ]);
    const byValue = Object.fromEntries(
      values.map((value) => [value, results[outputOf.get(value)!]]),
    );
    this.staticResults.set(`${signature}|${shapes}`, byValue);
    return byValue;
  }

  /**
   * Values that are not activations, as they are when the inputs of `like` have `rows` examples:
   * they depend only on the inputs' shapes (a Reshape's target [batch, seq, d], say), so inputs of
   * zeros with that many rows give them. Parts of a graph run on stacked variants need them at the
   * stacked size.
   */
  async staticValuesAt(
    values: readonly string[],
    like: Feeds,
    rows: number,
  ): Promise<Record<string, Tensor>> {
    if (values.length === 0) return {};
    const signature = [...values].sort().join('\u0000');
    const key = `at|${signature}|${rows}|${Object.entries(like)
      .map(([name, value]) => `${name}:${value.dims.slice(1)}`)
      .sort()
      .join(';')}`;
    const known = this.staticResults.get(key);
    if (known) return known;
    const computed = await this.computeStaticValuesAt(values, like, rows, signature);
    this.staticResults.set(key, computed);
    return computed;
  }

  private async computeStaticValuesAt(
    values: readonly string[],
    like: Feeds,
    rows: number,
    signature: string,
  ): Promise<Record<string, Tensor>> {
    if (!this.shapeSessions.has(signature)) {
      const made = (async () => {
        const part = shapeGraph(this.graph, values);
        return (
          part && {
            session: await this.createSession(
              part.proto,
              `the shape arithmetic of '${this.path}'`,
              undefined,
              'basic',
            ),
            reads: part.reads,
          }
        );
      })();
      made.catch(() => this.shapeSessions.delete(signature));
      this.shapeSessions.set(signature, made);
    }
    const prepared = await this.shapeSessions.get(signature)!;
    if (!prepared) {
      // Some value reads an activation's contents after all: compute it from inputs of zeros at that size.
      return this.staticValues(values, zerosAt(like, rows, this));
    }
    const readHooks = prepared.reads.map((read) =>
      this.hooks.hooks.find((hook) => hook.value === read.of)!,
    );
    const shapes = await probeHookShapes(this, like, readHooks);
    const dimsOf = readHooks.map((hook) => dimsAtBatch(shapes.get(hook.name)!, rows));
    if (dimsOf.some((dims) => dims.includes(-1)))
      return this.staticValues(values, zerosAt(like, rows, this));
    const feeds: Feeds = {};
    for (const [r, read] of prepared.reads.entries()) {
      const dims = dimsOf[r];
      const shape = dims.slice(read.start ?? 0, read.end ?? dims.length);
      feeds[read.output] =
        read.op === 'Shape'
          ? tensor('int64', [shape.length], shape)
          : tensor('int64', [], [dims.reduce((a, b) => a * b, 1)]);
    }
    const results = await prepared.session.run(feeds, [...values]);
    return Object.fromEntries(values.map((value) => [value, results[value]]));
  }

  /** The values the part downstream of `value` is fed (graph/downstream.ts), without building its session. */
  downstreamInputs(value: string, output: string): string[] | undefined {
    return downstreamGraph(this.graph, value, output)?.inputs;
  }

  /**
   * The session of the part of the graph downstream of `value` (graph/downstream.ts), computing
   * `output`; undefined when there is nothing to skip. Created once per value.
   */
  downstream(
    value: string,
    output: string,
  ): Promise<{ session: Session; inputs: string[] } | undefined> {
    const key = `downstream|${value}|${output}`;
    if (!this.downstreamSessions.has(key)) {
      this.downstreamSessions.set(
        key,
        (async () => {
          const part = downstreamGraph(this.graph, value, output);
          if (!part) return undefined;
          const session = await this.createSession(
            part.proto,
            `the part of '${this.path}' downstream of '${value}'`,
          );
          return { session, inputs: part.inputs };
        })(),
      );
    }
    return this.downstreamSessions.get(key)!;
  }

  /** A session of a graph derived from this model's, reading the weights from the model file where it can. */
  private createSession(
    proto: ModelProto,
    describe: string,
    explain?: (message: string) => string | undefined,
    level?: 'basic' | 'extended',
  ): Promise<Session> {
    const weights = this.weights;
    if (!weights) return Session.create(encodeModel(proto), this.options, describe, explain, level);
    weights.checkUnchanged();
    let mappedBytes = 0;
    const bytes = encodeModel(proto, (tensor) => {
      const region = weights.regionOf(tensor);
      mappedBytes += region?.length ?? 0;
      return region;
    });
    return Session.create(
      bytes,
      this.options,
      describe,
      explain,
      level,
      mappedBytes > 0 ? weights.mappedWeights(mappedBytes) : undefined,
    );
  }

  /**
   * A model derived from this one by `build` (e.g. one that computes less of its output), made
   * once per key and released with this one; `runtime` overrides this model's session options.
   */
  variant(
    key: string,
    build: (model: Model) => Promise<ModelProto>,
    runtime: Partial<RuntimeOptions> = {},
  ): Promise<Model> {
    if (!this.variants.has(key)) {
      const made = build(this).then((proto) => {
        const name = `${this.path} (${key})`;
        validateModel(proto, name);
        // Its initializers are this model's where it keeps them: it reads them from the same file.
        return new Model(
          { path: name, proto, sha256: '' },
          { ...this.options, ...runtime },
          this.weights,
        );
      });
      made.catch(() => this.variants.delete(key));
      this.variants.set(key, made);
    }
    return this.variants.get(key)!;
  }

  /** Checks feeds against the declared inputs; returns the batch size (first axis) they share. */
  checkFeeds(feeds: Feeds): number {
    const known = new Set(this.inputs.map((input) => input.name));
    for (const name of Object.keys(feeds)) {
      if (!known.has(name))
        throw new InputError(
          `The model has no input named '${name}': its inputs are ${[...known].map((n) => `'${n}'`).join(', ')}.`,
        );
    }
    const batches = new Set<number>();
    for (const input of this.inputs) {
      const feed = feeds[input.name];
      if (!feed)
        throw new InputError(
          `Input '${input.name}' is missing: the model needs ${this.describeInputs()}. Give it with --input ${input.name}=FILE.npy.`,
        );
      if (input.dtype === undefined)
        throw new InputError(
          `Input '${input.name}' has element type ${input.typeName}, which teardown cannot feed.`,
        );
      if (feed.dtype !== input.dtype) {
        throw new InputError(
          `Input '${input.name}' has dtype ${feed.dtype} but the model expects ${input.dtype}: convert the array (e.g. numpy's .astype(np.${input.dtype === 'float32' ? 'float32' : input.dtype})).`,
        );
      }
      if (input.dims) {
        if (feed.dims.length !== input.dims.length) {
          throw new InputError(
            `Input '${input.name}' has rank ${feed.dims.length} (shape ${shapeString(feed.dims)}) but the model expects rank ${input.dims.length} (${shapeString(input.dims)}): reshape the array.`,
          );
        }
        input.dims.forEach((expected, axis) => {
          if (typeof expected === 'number' && feed.dims[axis] !== expected) {
            throw new InputError(
              `Input '${input.name}' has shape ${shapeString(feed.dims)} but the model expects ${shapeString(input.dims!)}: axis ${axis} must be ${expected}, not ${feed.dims[axis]}.`,
            );
          }
        });
      }
      if (this.hasBatchAxis(input.name)) batches.add(feed.dims[0] ?? 1);
    }
    if (batches.size > 1)
      throw new InputError(
        `The inputs disagree on the number of examples (first axis): ${[...batches].join(' vs ')}. Give every input the same number of rows.`,
      );
    return [...batches][0] ?? 1;
  }

  /** Whether an input's first axis is a free (symbolic or undeclared) size: the batch of examples. */
  hasBatchAxis(inputName: string): boolean {
    const dims = this.inputs.find((input) => input.name === inputName)?.dims;
    return !dims || (dims.length > 0 && typeof dims[0] === 'string');
  }

  describeInputs(): string {
    return this.inputs
      .map(
        (input) =>
          `'${input.name}' ${input.dtype ?? input.typeName} ${input.dims ? shapeString(input.dims) : '[?]'}`,
      )
      .join(', ');
  }

  async release(): Promise<void> {
    const shapeSessions = await Promise.all(
      [...this.shapeSessions.values()].map((made) => made.catch(() => undefined)),
    );
    this.shapeSessions.clear();
    for (const made of shapeSessions) await made?.session.release();
    const prepared = [
      ...this.sessions.values(),
      ...this.downstreamSessions.values(),
      ...this.staticSessions.values(),
    ];
    const variants = [...this.variants.values()];
    this.sessions.clear();
    this.staticSessions.clear();
    this.staticResults.clear();
    this.downstreamSessions.clear();
    this.variants.clear();
    for (const entry of prepared) await (await entry.catch(() => undefined))?.session.release();
    for (const variant of variants) await (await variant.catch(() => undefined))?.release();
  }
}

/** Inputs of zeros shaped like `like` with `rows` examples (values that are not activations depend only on shapes). */
function zerosAt(like: Feeds, rows: number, model: Model): Feeds {
  return Object.fromEntries(
    Object.entries(like).map(([name, value]) => [
      name,
      model.hasBatchAxis(name) ? tensor(value.dtype, [rows, ...value.dims.slice(1)]) : value,
    ]),
  );
}
