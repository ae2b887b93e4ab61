/**
 * The only module that imports onnxruntime-node. It turns ModelProto bytes into sessions, feeds
 * teardown tensors in and takes teardown tensors out, and words onnxruntime's refusals as
 * ModelErrors that name the op and node.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { InternalError, ModelError } from '../errors.ts';
import { checkThreads } from './threads.ts';
import { cleanOrtMessage, ortLoadMessage, ortRunMessage } from './ort-errors.ts';
import { encodeModel, type ModelProto } from '../onnx/proto.ts';
import type { DType, Feeds, Tensor, TensorData } from '../tensor.ts';
import type { LoadedSessions, Unloadable } from './loaded-sessions.ts';

export interface RuntimeOptions {
  /** onnxruntime intra-op threads; default all cores. */
  threads?: number;
  /** Let onnxruntime log at info level; otherwise its log is off (level 4 = fatal): its errors reach the user as messages (ort-errors.ts). */
  verbose?: boolean;
  /**
   * onnxruntime's CPU memory arena (default on). An arena keeps what a run freed for the session's
   * next run: sessions that each run once in turn (runtime/segmented-run.ts) turn it off.
   */
  memoryArena?: boolean;
}

export type { Feeds };

/** The intra-op threads a session made with `options` runs on: the given count, else (onnxruntime's default) one per core. */
export function sessionThreads(options: RuntimeOptions): number {
  return options.threads || availableParallelism();
}

export const onnxruntimeVersion: string = ort.env.versions.node ?? ort.env.versions.common;

/** A graph whose large initializers lie in a mapped file (runtime/weight-file.ts). */
export interface MappedWeights {
  /** The folder onnxruntime resolves the initializers' locations in. */
  folder: string;
  /** Bytes of weights the graph reads from the file. */
  bytes: number;
  /** The bound on mapped weights kept loaded that this session counts against. */
  loaded: LoadedSessions;
  /** Throws when the file is no longer the one the graph was made from (checked before loading again). */
  checkUnchanged(): void;
}

export class Session implements Unloadable {
  /** The onnxruntime session, or undefined while unloaded (mapped sessions only: see LoadedSessions). */
  private inner: Promise<ort.InferenceSession> | undefined;
  private running = 0;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** The model or graph, as messages name it. */
  describe = 'the model';

  private constructor(
    inner: ort.InferenceSession,
    private readonly load: () => Promise<ort.InferenceSession>,
    private readonly mapped?: MappedWeights,
  ) {
    this.inner = Promise.resolve(inner);
    this.inputNames = [...inner.inputNames];
    this.outputNames = [...inner.outputNames];
  }

  /**
   * `explain` may reword onnxruntime's load error with what the caller knows of the model.
   * `level` 'basic' is for sessions that expose shape arithmetic (runtime/model.ts staticValues).
   * `mapped`: the graph's large initializers are external data in a file that onnxruntime maps.
   * Prepacking is then off: it would copy every matrix-product weight into the session (a copy
   * of the weights per session), where unpacked they are read from the mapping itself.
   */
  static async create(
    bytes: Uint8Array,
    options: RuntimeOptions = {},
    describe = 'the model',
    explain?: (message: string) => string | undefined,
    level: 'basic' | 'extended' = 'extended',
    mapped?: MappedWeights,
  ): Promise<Session> {
    checkThreads(options.threads);
    const fromFile = mapped
      ? { model_external_initializers_file_folder_path: mapped.folder, disable_prepacking: '1' }
      : {};
    const load = () =>
      ort.InferenceSession.create(bytes, {
        intraOpNumThreads: options.threads ?? 0,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        enableCpuMemArena: options.memoryArena ?? true,
        // 'extended', not 'all': the layout pass of 'all' reorders conv maps to NCHWc and must
        // reorder back every exposed value (4–6× slower caching on the cnn fixture), and one level
        // for every session keeps edited and unedited runs numerically alike
        // (docs/performance-log.md, "Cache overhead").
        graphOptimizationLevel: level,
        logSeverityLevel: options.verbose ? 1 : 4,
        // Idle pool threads would spin-wait for work and starve the JavaScript thread that
        // prepares the next feeds (patch sweeps ran 1.7× slower with 2 threads on 2 cores); in
        // training loops spinning made 2-thread CNN steps bimodal here (6 or 12 ms per step).
        extra: { session: { intra_op: { allow_spinning: '0' }, ...fromFile } },
      });
    let inner: ort.InferenceSession;
    try {
      inner = await load();
    } catch (error) {
      throw new ModelError(explain?.(cleanOrtMessage(error)) ?? ortLoadMessage(error, describe));
    }
    // Only a mapped session is worth unloading: loading it again reads no weights. Others keep
    // their bytes nowhere, and load only once.
    const session = new Session(
      inner,
      mapped ? load : () => Promise.reject(new Error('session: only mapped sessions unload')),
      mapped,
    );
    session.describe = describe;
    mapped?.loaded.use(session, mapped.bytes);
    return session;
  }

  get idle(): boolean {
    return this.running === 0;
  }

  /** Frees the onnxruntime session; the next run loads it again (mapped sessions only). */
  unload(): void {
    if (!this.mapped || !this.inner || this.running > 0) return;
    const inner = this.inner;
    this.inner = undefined;
    // Nothing waits on this release, and nothing could be done about its failure.
    void inner.then((session) => session.release()).catch(() => undefined);
  }

  /** One ORT run; returns the requested outputs (all by default) as teardown tensors. */
  async run(feeds: Feeds, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, value] of Object.entries(feeds)) ortFeeds[name] = toOrt(value);
    let results: ort.InferenceSession.ReturnType;
    this.running++;
    try {
      if (!this.inner) this.mapped?.checkUnchanged();
      const inner = await (this.inner ??= this.load());
      this.mapped?.loaded.use(this, this.mapped.bytes);
      results = outputs
        ? await inner.run(ortFeeds, outputs as string[])
        : await inner.run(ortFeeds);
    } catch (error) {
      if (error instanceof ModelError) throw error;
      throw new ModelError(ortRunMessage(error, this.describe));
    } finally {
      this.running--;
    }
    const tensors: Record<string, Tensor> = {};
    for (const [name, value] of Object.entries(results)) tensors[name] = fromOrt(name, value);
    return tensors;
  }

  async release(): Promise<void> {
    this.mapped?.loaded.forget(this);
    const inner = this.inner;
    this.inner = undefined;
    await (await inner)?.release();
  }
}

/**
 * A session of a graph built in memory by a layer above (a gradient graph, a training step loop,
 * an evaluation graph), with its weights copied into the session: those layers ask here, so
 * sessions open in runtime/ only (test/layers.test.ts).
 */
export async function openSession(
  proto: ModelProto,
  options: RuntimeOptions,
  describe: string,
): Promise<Session> {
  try {
    return await Session.create(encodeModel(proto), options, describe);
  } catch (error) {
    // The user's model loaded: a graph teardown built from it that onnxruntime refuses is teardown's bug.
    if (error instanceof ModelError && !/out of memory/.test(error.message))
      throw new InternalError(`teardown built ${describe} wrongly: ${error.message}`);
    throw error;
  }
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  int8: 'int8',
  bool: 'bool',
};

/** onnxruntime's tensor type, for code outside runtime/ that converts to and from it (toOrt, fromOrt). */
export type OrtTensor = ort.Tensor;

/** Wraps the same typed array: onnxruntime's Tensor keeps the array it is given (no copy). */
export function toOrt(tensor: Tensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[tensor.dtype], tensor.data as ort.Tensor.DataType, tensor.dims);
}

export function fromOrt(name: string, value: ort.Tensor): Tensor {
  const dtype = (Object.keys(ORT_TYPE) as DType[]).find((key) => ORT_TYPE[key] === value.type);
  if (!dtype)
    throw new ModelError(
      `Value '${name}' has element type ${value.type}, which teardown cannot compute with (it handles ${Object.keys(ORT_TYPE).join(', ')}).`,
    );
  return { dtype, dims: [...value.dims], data: value.data as TensorData };
}
