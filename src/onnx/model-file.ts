/**
 * Reading and writing ONNX model files.
 *
 * External-data tensors (TensorProto.data_location = EXTERNAL) are read from files relative to
 * the model's folder and inlined, so every later edit and session works on one self-contained
 * ModelProto. A location that leaves the model's folder (`../x`, an absolute path, or a link
 * pointing outside) is refused: a model file must not make teardown read arbitrary files.
 */
import { createHash } from 'node:crypto';
import {
  openSync,
  readSync,
  closeSync,
  readFileSync,
  realpathSync,
  existsSync,
  statSync,
} from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { ModelError } from '../errors.ts';
import { writeFileAtomic, requireFile } from '../files.ts';
import {
  decodeModel,
  encodeModel,
  toNumber,
  type ModelProto,
  type TensorProto,
  type GraphProto,
} from './proto.ts';
import { validateModel } from './validate.ts';

export interface ModelFile {
  path: string;
  proto: ModelProto;
  /** sha256 of the file's bytes, for provenance in JSON results. */
  sha256: string;
}

export function readModelFile(path: string): ModelFile {
  requireFile(path, 'Model file');
  const bytes = readFileSync(path);
  const proto = decodeModelBytes(bytes, path);
  resolveExternalData(proto.graph, dirname(resolve(path)));
  validateModel(proto, path);
  return { path, proto, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export function decodeModelBytes(bytes: Uint8Array, path: string): ModelProto {
  let proto: ModelProto;
  try {
    proto = decodeModel(bytes);
  } catch (error) {
    throw new ModelError(
      `'${path}' is not an ONNX model: its bytes do not decode as ModelProto (${(error as Error).message}). Is the file truncated, or another format (.pt, .pb, .h5)? Export it with torch.onnx.export.`,
    );
  }
  if (!proto.graph || proto.opsetImport.length === 0) {
    throw new ModelError(
      `'${path}' is not an ONNX model: it decodes but has no ${proto.graph ? 'opset_import' : 'graph'}. Is the file truncated, or another format? Export it with torch.onnx.export.`,
    );
  }
  return proto;
}

export function writeModelFile(path: string, proto: ModelProto): void {
  writeFileAtomic(path, encodeModel(proto));
}

function resolveExternalData(graph: GraphProto, modelDir: string): void {
  for (const tensor of graph.initializer) {
    if (tensor.dataLocation === 1) inlineExternalTensor(tensor, modelDir);
  }
  for (const node of graph.node) {
    for (const attribute of node.attribute) {
      if (attribute.t?.dataLocation === 1) inlineExternalTensor(attribute.t, modelDir);
      if (attribute.g) resolveExternalData(attribute.g, modelDir);
      for (const subgraph of attribute.graphs) resolveExternalData(subgraph, modelDir);
    }
  }
}

function inlineExternalTensor(tensor: TensorProto, modelDir: string): void {
  const entries = new Map(tensor.externalData.map((entry) => [entry.key, entry.value]));
  const location = entries.get('location');
  if (!location)
    throw new ModelError(
      `Initializer '${tensor.name}' is stored externally but names no 'location'.`,
    );
  const file = externalDataPath(location, modelDir, tensor.name);
  const stat = statSync(file);
  if (!stat.isFile()) {
    const what = `Initializer '${tensor.name}' names external data '${location}', which is not a file`;
    throw new ModelError(
      `${what}: the model's external data entry is damaged. Export the model again.`,
    );
  }
  const fileSize = stat.size;
  const offset = externalDataNumber(entries.get('offset') ?? '0', 'offset', tensor.name);
  const length = entries.has('length')
    ? externalDataNumber(entries.get('length')!, 'length', tensor.name)
    : fileSize - offset;
  if (offset > fileSize || offset + length > fileSize) {
    throw new ModelError(
      `Initializer '${tensor.name}' reads bytes ${offset}..${offset + length} of '${location}', which has only ${fileSize}: the external data file is truncated or not the one exported with this model.`,
    );
  }
  const bytes = new Uint8Array(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, bytes, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  tensor.rawData = bytes;
  tensor.externalData = [];
  tensor.dataLocation = 0;
}

/** An external data offset or length: a byte count written in decimal digits. */
function externalDataNumber(text: string, key: string, tensorName: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    const what = `Initializer '${tensorName}' has external data ${key} '${text}'`;
    throw new ModelError(
      `${what}, which is not a byte count (an integer ≥ 0): the model's external data entry is damaged. Export the model again.`,
    );
  }
  return value;
}

function externalDataPath(location: string, modelDir: string, tensorName: string): string {
  const escapes = (path: string, root: string) => {
    const fromRoot = relative(root, path);
    return isAbsolute(location) || fromRoot.startsWith('..') || isAbsolute(fromRoot);
  };
  const file = resolve(modelDir, location);
  if (escapes(file, modelDir)) {
    throw new ModelError(
      `Initializer '${tensorName}' points to external data at '${location}', outside the model's folder '${modelDir}': refused. Keep external data files beside the model.`,
    );
  }
  if (!existsSync(file)) {
    throw new ModelError(
      `Initializer '${tensorName}' needs the external data file '${location}', which is not in '${modelDir}': copy it beside the model.`,
    );
  }
  if (escapes(realpathSync(file), realpathSync(modelDir))) {
    throw new ModelError(
      `Initializer '${tensorName}' points to external data '${location}', a link that leads outside the model's folder: refused.`,
    );
  }
  return file;
}

/** The model's ai.onnx opset version (the default domain, '' or 'ai.onnx'). */
export function defaultOpset(proto: ModelProto): number {
  const entry = proto.opsetImport.find(
    (opset) => opset.domain === '' || opset.domain === 'ai.onnx',
  );
  return entry ? toNumber(entry.version) : 0;
}
