/**
 * Saving a fine-tuned model as its input was stored: initializers the input kept in an external
 * data file are written to `<out>.data` beside the saved model (ONNX external data: location,
 * offset, length), the rest inline. The data file is written first and each file is staged and
 * renamed, so a failure leaves no model pointing at missing data.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { writeFileAtomic } from '../files.ts';
import { decodeModelBytes, writeModelFile } from '../onnx/model-file.ts';
import type { ModelProto, TensorProto } from '../onnx/proto.ts';
import { derive } from '../graph/edit.ts';

/** Names of the initializers `path` keeps in external data files. */
export function externalInitializers(path: string): Set<string> {
  const proto = decodeModelBytes(readFileSync(path), path);
  return new Set(
    proto.graph.initializer
      .filter((tensor) => tensor.dataLocation === 1)
      .map((tensor) => tensor.name),
  );
}

/** Writes `proto` to `path`, the initializers named in `external` into `<path>.data`. */
export function writeModelKeepingExternalData(
  path: string,
  proto: ModelProto,
  external: ReadonlySet<string>,
): void {
  const moved = proto.graph.initializer.filter(
    (tensor) => external.has(tensor.name) && tensor.rawData?.length,
  );
  if (!moved.length) {
    writeModelFile(path, proto);
    return;
  }
  const location = `${basename(path)}.data`;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const placed = new Map<string, TensorProto>();
  for (const tensor of moved) {
    const bytes = tensor.rawData!;
    chunks.push(bytes);
    const entries = [
      ['location', location],
      ['offset', String(offset)],
      ['length', String(bytes.length)],
    ].map(([key, value]) => ({ key, value }));
    placed.set(
      tensor.name,
      derive(tensor, { rawData: new Uint8Array(0), externalData: entries, dataLocation: 1 }),
    );
    offset += bytes.length;
  }
  const data = new Uint8Array(offset);
  chunks.reduce((at, chunk) => {
    data.set(chunk, at);
    return at + chunk.length;
  }, 0);
  writeFileAtomic(`${path}.data`, data);
  writeModelFile(
    path,
    derive(proto, {
      graph: derive(proto.graph, {
        initializer: proto.graph.initializer.map((tensor) => placed.get(tensor.name) ?? tensor),
      }),
    }),
  );
}
