/**
 * Weights that every onnxruntime session of a model reads from the model file itself.
 *
 * A model loaded from a file with its weights inside holds each initializer's raw data as a view
 * of the file's bytes (protobufjs decodes bytes fields as subarrays), so each one's place in the
 * file is known: its byteOffset. Sessions are then given the graph with those initializers marked
 * as external data at that offset of that file, instead of a copy of their bytes: onnxruntime
 * memory-maps the file and, with prepacking off (runtime/session.ts), computes straight from the
 * mapping. The page cache holds the weights once for every session, a session costs no copy of
 * them, and encoding a graph copies no weight bytes.
 *
 * JavaScript then keeps no copy either: each such initializer's `rawData` becomes a property that
 * reads its bytes from the file when asked (autodiff, training and parameter names still see the
 * same bytes), and every other bytes field is copied out of the file's buffer, so that buffer is
 * collected.
 */
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ModelError } from '../errors.ts';
import type { ExternalRegion, ModelProto, TensorProto } from '../onnx/proto.ts';
import { LoadedSessions } from './loaded-sessions.ts';
import type { MappedWeights } from './session.ts';

/** Below this many bytes an initializer stays inside the encoded graph (mapping a page for it gains nothing). */
const MIN_EXTERNAL_BYTES = 4096;

/**
 * Loaded sessions keep at most the model's weights mapped once over (LoadedSessions), and never
 * less than this: a small model's sessions all stay loaded, as unloading would cost more than it saves.
 */
const MIN_LOADED_BYTES = 256 * 2 ** 20;

export class WeightFile {
  /** The bound on mapped weights kept loaded, shared by every session of the model and its variants. */
  readonly loaded: LoadedSessions;
  /** Initializers whose raw data is read from the file, and where. */
  private readonly regions = new WeakMap<TensorProto, ExternalRegion>();

  private constructor(
    /** The folder onnxruntime resolves the location in (it refuses absolute locations). */
    readonly folder: string,
    private readonly location: string,
    /** The path as the user gave it, for messages. */
    private readonly path: string,
    private readonly stamp: { size: number; mtimeMs: number },
    /** Bytes of all the weights the file holds for sessions. */
    readonly weightBytes: number,
  ) {
    this.loaded = new LoadedSessions(Math.max(weightBytes, MIN_LOADED_BYTES));
  }

  /**
   * The weight file of a model decoded from the whole of the file at `path`, or undefined when no
   * large initializer is a view of one buffer of exactly the file's size (weights inlined from
   * external data files, or a model built in memory).
   */
  static of(path: string, proto: ModelProto): WeightFile | undefined {
    const stat = statSync(path);
    const large = proto.graph.initializer.filter(
      (tensor) => (tensor.rawData?.length ?? 0) >= MIN_EXTERNAL_BYTES,
    );
    const buffer = large[0]?.rawData?.buffer;
    if (
      !buffer ||
      buffer.byteLength !== stat.size ||
      !large.every((tensor) => tensor.rawData!.buffer === buffer)
    )
      return undefined;
    const real = realpathSync(path); // onnxruntime gets the folder the bytes really live in
    const bytes = large.reduce((sum, tensor) => sum + tensor.rawData!.length, 0);
    const file = new WeightFile(
      dirname(real),
      basename(real),
      path,
      { size: stat.size, mtimeMs: stat.mtimeMs },
      bytes,
    );
    copyViewsOf(buffer, proto, new Set(large));
    for (const tensor of large) file.leaveInFile(tensor);
    return file;
  }

  /** Where in the file `tensor`'s raw data lies, or undefined to keep it inside the graph. */
  readonly regionOf = (tensor: TensorProto): ExternalRegion | undefined => this.regions.get(tensor);

  /** `tensor.rawData` read from the file on each access; assigning it stores the new bytes in memory, as before. */
  private leaveInFile(tensor: TensorProto): void {
    const raw = tensor.rawData!;
    const region = { location: this.location, offset: raw.byteOffset, length: raw.length };
    this.regions.set(tensor, region);
    Object.defineProperty(tensor, 'rawData', {
      enumerable: true,
      configurable: true,
      get: () => this.read(region),
      set: (value: Uint8Array | undefined) => {
        this.regions.delete(tensor);
        Object.defineProperty(tensor, 'rawData', {
          value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      },
    });
  }

  private read(region: ExternalRegion): Uint8Array {
    this.checkUnchanged();
    const bytes = Buffer.allocUnsafe(region.length); // a Buffer, as protobufjs decodes bytes fields
    const fd = openSync(join(this.folder, this.location), 'r'); // resolved at load: a later change of directory does not move it
    try {
      readSync(fd, bytes, 0, region.length, region.offset);
    } finally {
      closeSync(fd);
    }
    return bytes;
  }

  /** What Session.create needs for a graph whose weights take `bytes` of the file. */
  mappedWeights(bytes: number): MappedWeights {
    return {
      folder: this.folder,
      bytes,
      loaded: this.loaded,
      checkUnchanged: () => this.checkUnchanged(),
    };
  }

  /** Refuses to hand onnxruntime the file when it changed since it was loaded: its weights would not be the model's. */
  checkUnchanged(): void {
    let now: { size: number; mtimeMs: number } | undefined;
    try {
      now = statSync(join(this.folder, this.location));
    } catch {
      now = undefined;
    }
    if (!now || now.size !== this.stamp.size || now.mtimeMs !== this.stamp.mtimeMs) {
      throw new ModelError(
        `Model file '${this.path}' changed or disappeared since it was loaded: its weights are read from the file as sessions are made. Load the model again.`,
      );
    }
  }
}

/** Replaces every Uint8Array in `message` (recursively, but not inside `kept`) that views `buffer` with a copy of its bytes. */
function copyViewsOf(buffer: ArrayBufferLike, message: object, kept: ReadonlySet<object>): void {
  if (kept.has(message)) return;
  for (const [key, value] of Object.entries(message)) {
    if (value instanceof Uint8Array) {
      // Buffer's slice is a view: Buffer.from copies.
      if (value.buffer === buffer)
        (message as Record<string, unknown>)[key] = Buffer.isBuffer(value)
          ? Buffer.from(value)
          : value.slice();
    } else if (value && typeof value === 'object') {
      copyViewsOf(buffer, value, kept);
    }
  }
}
