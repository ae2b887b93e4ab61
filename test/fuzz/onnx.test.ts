/**
 * Fuzzing the ONNX loader (Model.load: src/onnx/model-file.ts, validate.ts, the graph index and
 * hook table built on it, and tensor-proto.ts reading every initializer): random bytes, byte
 * mutations of real models, and edits through the protobuf schema — dims, element types, names,
 * raw_data lengths, external-data entries, value-info shapes, ops, opsets. No onnxruntime session
 * is made here (a native fault would end the test process); the commands' fuzz test covers those.
 * Every case must load or be refused with a UserError, soon and without a large allocation.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import Long from 'long';
import { ModelError } from '../../src/errors.ts';
import {
  decodeModel,
  encodeModel,
  type ModelProto,
  type TensorProto,
} from '../../src/onnx/proto.ts';
import { tensorFromProto } from '../../src/onnx/tensor-proto.ts';
import { Model } from '../../src/runtime/model.ts';
import { fixtureDir } from '../helpers.ts';
import {
  assertWellBehaved,
  fuzzParameters,
  hostileString,
  inFreshDir,
  mutatedBytes,
} from './support.ts';

const MODELS = {
  mlp: new Uint8Array(readFileSync(join(fixtureDir('mlp'), 'model.onnx'))),
  'multi-input': new Uint8Array(
    readFileSync(new URL('../fixtures/multi-input/model.onnx', import.meta.url)),
  ),
};
/** The external data file every case finds beside its model: 64 bytes of 0..63. */
const WEIGHTS = new Uint8Array(Array.from({ length: 64 }, (_, i) => i));

const dimValue = fc.oneof(
  fc.integer({ min: -3, max: 8 }),
  fc.constantFrom(2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 53),
  fc.constantFrom('9223372036854775807', '-9223372036854775808'),
);
const elementType = fc.oneof(fc.integer({ min: 0, max: 25 }), fc.constantFrom(-1, 1000));
const int64Text = fc.oneof(
  fc.integer({ min: -10, max: 100 }).map(String),
  fc.constantFrom('-5', '1e3', 'abc', '', '99999999999999', '9007199254740993', 'NaN', ' 8'),
);
const location = fc.oneof(
  fc.constantFrom('weights.bin', 'weights.bin', 'sub', '.', '', '..', '../x', '/etc/hostname'),
  fc.constantFrom('outside.bin', 'missing.bin', 'sub/../weights.bin', 'weights.bin\u0000x'),
  hostileString,
);

/**
 * One edit through the schema, as data (so that a counterexample prints as the edits that make
 * it): `at` picks the initializer, input, node... by index modulo their count.
 */
type Edit =
  | { kind: 'dim'; at: number; axis: number; value: number | string }
  | { kind: 'dims'; at: number; dims: (number | string)[] }
  | { kind: 'dtype'; at: number; code: number }
  | { kind: 'raw-length'; at: number; length: number }
  | { kind: 'float-data'; at: number; values: number[] }
  | {
      kind: 'external';
      at: number;
      location: string;
      offset: string | null;
      length: string | null;
      keepRaw: boolean;
    }
  | { kind: 'initializer-name'; at: number; name: string }
  | { kind: 'same-name'; at: number; other: number }
  | { kind: 'input-dim'; at: number; axis: number; value: number | string; symbolic: boolean }
  | { kind: 'input-type'; at: number; code: number }
  | { kind: 'value-name'; at: number; name: string }
  | { kind: 'op'; at: number; op: string }
  | { kind: 'node-input'; at: number; slot: number; name: string }
  | { kind: 'same-output'; at: number; other: number }
  | { kind: 'domain'; at: number; domain: string }
  | { kind: 'drop-node'; at: number }
  | { kind: 'no-outputs' }
  | { kind: 'opset'; version: number }
  | { kind: 'no-opsets' }
  | { kind: 'ir-version'; version: number };

const at = fc.nat({ max: 12 });
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('dim'), at, axis: fc.nat({ max: 3 }), value: dimValue }),
  fc.record({ kind: fc.constant('dims'), at, dims: fc.array(dimValue, { maxLength: 5 }) }),
  fc.record({ kind: fc.constant('dtype'), at, code: elementType }),
  fc.record({
    kind: fc.constant('raw-length'),
    at,
    length: fc.oneof(fc.nat({ max: 64 }), fc.constant(-1)),
  }),
  fc.record({
    kind: fc.constant('float-data'),
    at,
    values: fc.array(fc.double(), { maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('external'),
    at,
    location,
    offset: fc.option(int64Text),
    length: fc.option(int64Text),
    keepRaw: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('initializer-name'), at, name: hostileString }),
  fc.record({ kind: fc.constant('same-name'), at, other: at }),
  fc.record({
    kind: fc.constant('input-dim'),
    at,
    axis: fc.nat({ max: 3 }),
    value: fc.oneof(dimValue, hostileString),
    symbolic: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('input-type'), at, code: elementType }),
  fc.record({ kind: fc.constant('value-name'), at, name: hostileString }),
  fc.record({
    kind: fc.constant('op'),
    at,
    op: fc.oneof(hostileString, fc.constantFrom('Gemm', 'Relu', 'Loop', 'If', 'Scan')),
  }),
  fc.record({ kind: fc.constant('node-input'), at, slot: fc.nat({ max: 3 }), name: hostileString }),
  fc.record({ kind: fc.constant('same-output'), at, other: at }),
  fc.record({ kind: fc.constant('domain'), at, domain: hostileString }),
  fc.record({ kind: fc.constant('drop-node'), at }),
  fc.record({ kind: fc.constant('no-outputs') }),
  fc.record({
    kind: fc.constant('opset'),
    version: fc.oneof(fc.integer({ min: -2, max: 30 }), fc.constant(2 ** 40)),
  }),
  fc.record({ kind: fc.constant('no-opsets') }),
  fc.record({
    kind: fc.constant('ir-version'),
    version: fc.oneof(fc.constantFrom(0, 3, 99, -1), fc.nat()),
  }),
) as fc.Arbitrary<Edit>;

/** Picks an element of a list by index modulo its length. */
const pick = <T>(list: readonly T[], index: number): T | undefined =>
  list[index % Math.max(1, list.length)];
const int64 = (value: number | string) =>
  typeof value === 'string' ? Long.fromString(value) : value;

/** Applies one edit in place. */
function applyEdit(model: ModelProto, edit: Edit): void {
  const graph = model.graph;
  const tensor = 'at' in edit ? pick(graph.initializer, edit.at) : undefined;
  const node = 'at' in edit ? pick(graph.node, edit.at) : undefined;
  switch (edit.kind) {
    case 'dim':
      if (tensor?.dims.length) tensor.dims[edit.axis % tensor.dims.length] = int64(edit.value);
      return;
    case 'dims':
      if (tensor) tensor.dims = edit.dims.map(int64);
      return;
    case 'dtype':
      if (tensor) tensor.dataType = edit.code;
      return;
    case 'raw-length': {
      const raw = tensor?.rawData;
      if (!tensor || !raw) return;
      const length = edit.length;
      tensor.rawData =
        length < 0 ? new Uint8Array(raw.length + 3) : raw.slice(0, Math.min(length, raw.length));
      return;
    }
    case 'float-data':
      if (!tensor) return;
      tensor.rawData = new Uint8Array(0);
      tensor.floatData = edit.values;
      return;
    case 'external':
      if (!tensor) return;
      tensor.dataLocation = 1;
      tensor.externalData = [{ key: 'location', value: edit.location }];
      if (edit.offset !== null) tensor.externalData.push({ key: 'offset', value: edit.offset });
      if (edit.length !== null) tensor.externalData.push({ key: 'length', value: edit.length });
      if (!edit.keepRaw) tensor.rawData = new Uint8Array(0);
      return;
    case 'initializer-name':
      if (tensor) tensor.name = edit.name;
      return;
    case 'same-name': {
      const other = pick(graph.initializer, edit.other);
      if (tensor && other) other.name = tensor.name;
      return;
    }
    case 'input-dim': {
      const dims = pick(graph.input, edit.at)?.type?.tensorType?.shape?.dim;
      if (!dims?.length) return;
      const value = edit.value;
      const symbolic = edit.symbolic || (typeof value === 'string' && !/^-?\d+$/.test(value));
      dims[edit.axis % dims.length] = symbolic
        ? { dimParam: String(value) }
        : { dimValue: int64(value) };
      return;
    }
    case 'input-type': {
      const tensorType = pick(graph.input, edit.at)?.type?.tensorType;
      if (tensorType) tensorType.elemType = edit.code;
      return;
    }
    case 'value-name': {
      const value = pick([...graph.input, ...graph.output], edit.at);
      if (value) value.name = edit.name;
      return;
    }
    case 'op':
      if (node) node.opType = edit.op;
      return;
    case 'node-input':
      if (node?.input.length) node.input[edit.slot % node.input.length] = edit.name;
      return;
    case 'same-output': {
      const other = pick(graph.node, edit.other);
      if (node?.output.length && other?.output.length) other.output[0] = node.output[0];
      return;
    }
    case 'domain':
      if (node) node.domain = edit.domain;
      return;
    case 'drop-node':
      graph.node.splice(edit.at % Math.max(1, graph.node.length), 1);
      return;
    case 'no-outputs':
      graph.output = [];
      return;
    case 'opset':
      if (model.opsetImport[0]) model.opsetImport[0].version = edit.version;
      return;
    case 'no-opsets':
      model.opsetImport = [];
      return;
    case 'ir-version':
      model.irVersion = edit.version;
  }
}

type ModelName = keyof typeof MODELS;

/** The bytes of a fixture model with these edits. */
function editedModel(name: ModelName, edits: readonly Edit[]): Uint8Array {
  const model = decodeModel(MODELS[name]);
  for (const change of edits) applyEdit(model, change);
  return encodeModel(model);
}

const edited = fc
  .tuple(
    fc.constantFrom(...(Object.keys(MODELS) as ModelName[])),
    fc.array(edit, { minLength: 1, maxLength: 4 }),
  )
  .map(([name, edits]) => ({ name, edits }));

/** A model file's bytes: random, a fixture's bytes mutated, or a fixture edited through the schema. */
const anyModel = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 3, arbitrary: fc.constantFrom(...Object.values(MODELS)).chain(mutatedBytes) },
  { weight: 8, arbitrary: edited },
);
const bytesOf = (model: Uint8Array | { name: ModelName; edits: Edit[] }) =>
  model instanceof Uint8Array ? model : editedModel(model.name, model.edits);

/** The folder every model is loaded from: the model, its external data, a folder and a link out. */
function caseFolder(dir: string, bytes: Uint8Array): string {
  writeFileSync(join(dir, 'weights.bin'), WEIGHTS);
  mkdirSync(join(dir, 'sub'));
  symlinkSync('/etc/hostname', join(dir, 'outside.bin'));
  const path = join(dir, 'model.onnx');
  writeFileSync(path, bytes);
  return path;
}

/** Loads the model as every command does, lists its hooks, and reads every initializer. */
async function loadEveryWay(bytes: Uint8Array): Promise<void> {
  await inFreshDir(async (dir) => {
    const path = caseFolder(dir, bytes);
    const what = `model of ${bytes.length} bytes`;
    const loaded = await assertWellBehaved(() => Model.load(path, { threads: 1 }), `${what}: load`);
    if (loaded.kind !== 'value') return;
    const model = loaded.value as Model;
    await assertWellBehaved(() => model.hooks.hooks.map((hook) => hook.name), `${what}: hooks`);
    for (const tensor of model.proto.graph.initializer as TensorProto[]) {
      await assertWellBehaved(
        () => tensorFromProto(tensor),
        `${what}: initializer '${tensor.name}'`,
      );
    }
  });
}

describe('fuzz: the ONNX loader', { timeout: 60_000 }, () => {
  it('random, mutated and schema-edited models: a model or a UserError', async () => {
    await fc.assert(
      fc.asyncProperty(anyModel, (model) => loadEveryWay(bytesOf(model))),
      fuzzParameters(),
    );
  });
});

describe('regressions found by fuzzing the ONNX loader', () => {
  /** Loads the mlp with these edits and reads its initializers; returns the refusal's message. */
  async function refusal(edits: Edit[]): Promise<string> {
    return inFreshDir(async (dir) => {
      const path = caseFolder(dir, editedModel('mlp', edits));
      try {
        const model = Model.load(path, { threads: 1 });
        for (const tensor of model.proto.graph.initializer) tensorFromProto(tensor);
      } catch (error) {
        assert.ok(error instanceof ModelError, `a ModelError, not ${(error as Error).stack}`);
        return error.message;
      }
      return assert.fail('loaded');
    });
  }

  it('dims of 2^63 − 1: refused as not sizes (was a RangeError allocating the typed array)', async () => {
    const message = await refusal([{ kind: 'dims', at: 0, dims: ['9223372036854775807'] }]);
    assert.match(
      message,
      /Tensor 'fc1.weight' has dims \[9223372036854776000\], which are not sizes/,
    );
  });

  it('raw_data shorter than the dims say: refused (was read as zeros past its end)', async () => {
    const message = await refusal([{ kind: 'raw-length', at: 0, length: 8 }]);
    assert.match(
      message,
      /'fc1.weight' is float32 \[32, 20\] \(640 values\) but holds 8 bytes of raw_data \(2560 expected\)/,
    );
  });

  it("external data offset '-5': refused (was readSync's RangeError)", async () => {
    const edit: Edit = {
      kind: 'external',
      at: 0,
      location: 'weights.bin',
      offset: '-5',
      length: null,
      keepRaw: false,
    };
    assert.match(await refusal([edit]), /external data offset '-5', which is not a byte count/);
  });

  it('external data offset past the end of its file, no length: refused (was a negative length)', async () => {
    const edit: Edit = {
      kind: 'external',
      at: 0,
      location: 'weights.bin',
      offset: '100',
      length: null,
      keepRaw: false,
    };
    assert.match(
      await refusal([edit]),
      /reads bytes 100\.\.64 of 'weights.bin', which has only 64/,
    );
  });

  it('external data location naming a folder: refused (was EISDIR from readSync)', async () => {
    const edit: Edit = {
      kind: 'external',
      at: 0,
      location: 'sub',
      offset: null,
      length: null,
      keepRaw: false,
    };
    assert.match(await refusal([edit]), /names external data 'sub', which is not a file/);
  });
});
