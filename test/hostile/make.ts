/**
 * Writes the hostile corpus (test/hostile/files/): small files each broken in one way that a user,
 * an exporter or an attacker could hand teardown. cases.json says what every command must do with
 * them; test/hostile.test.ts runs those cases and checks that these files are what this script
 * writes. Models are derived from test/fixtures/mlp/model.onnx (input 'input' float32 [batch, 20],
 * 3 classes; hooks fc1, act1, fc2, act2, head).
 *
 *   node --import tsx test/hostile/make.ts     (writes the files; rerun after changing this script)
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeModel, encodeModel, type ModelProto } from '../../src/onnx/proto.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/mlp/model.onnx', import.meta.url));
export const HOSTILE_DIR = fileURLToPath(new URL('./files/', import.meta.url));

const EXAMPLES = 6;
const FEATURES = 20;

/** Every hostile file by name: its bytes. */
export function hostileFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const model = (name: string, edit: (proto: ModelProto) => void) => {
    const proto = decodeModel(readFileSync(FIXTURE));
    edit(proto);
    files.set(name, encodeModel(proto));
  };
  const original = readFileSync(FIXTURE);

  // Model files that are not models, or not whole.
  files.set('empty.onnx', new Uint8Array(0));
  files.set(
    'garbage.onnx',
    Buffer.from('PK\x03\x04 this is a zip, or a .pt file, not an ONNX model\n'),
  );
  files.set('truncated.onnx', original.subarray(0, Math.floor(original.length / 3)));
  model('ir-99.onnx', (proto) => {
    proto.irVersion = 99;
  });
  model('short-raw-data.onnx', (proto) => {
    const weight = initializer(proto, 'fc1.weight');
    weight.rawData = weight.rawData!.subarray(0, 10);
  });
  // External data: outside the model's folder, the folder itself, a negative length.
  model('external-outside.onnx', (proto) =>
    external(proto, [['location', '../../../../../../etc/passwd']]),
  );
  model('external-absolute.onnx', (proto) => external(proto, [['location', '/etc/passwd']]));
  model('external-dot.onnx', (proto) =>
    external(proto, [
      ['location', '.'],
      ['length', '2560'],
    ]),
  );
  model('external-negative-length.onnx', (proto) =>
    external(proto, [
      ['location', 'weights.bin'],
      ['length', '-5'],
    ]),
  );
  files.set('weights.bin', new Uint8Array(2560));
  // Declared shapes: a dimension of 2^40 and a negative one.
  model('dim-2p40.onnx', (proto) => {
    inputDims(proto)[1] = { dimValue: 2 ** 40 };
  });
  model('dim-negative.onnx', (proto) => {
    inputDims(proto)[1] = { dimValue: -5 };
  });
  // The feature axis left symbolic: any width loads, the first Gemm refuses a wrong one at run time.
  model('symbolic-features.onnx', (proto) => {
    inputDims(proto)[1] = { dimParam: 'features' };
  });
  // Names that would drive a terminal: an ANSI clear-screen and colour, a window-title OSC, a CR.
  model('ansi-names.onnx', (proto) => {
    proto.producerName = '\x1b]0;owned\x07';
    rename(proto, 'output', 'logits\x1b[2J\x1b[31m');
    rename(proto, '/act1/Relu_output_0', '/act1/Relu\routput\x1b[0m');
  });

  // Examples for the mlp fixture: fine, with NaN rows, with an Inf cell, too wide.
  const values = (count: number, width: number) =>
    Float32Array.from({ length: count * width }, (_, i) => ((i * 7) % 11) / 10 - 0.5);
  files.set('x.npy', npy('<f4', [EXAMPLES, FEATURES], values(EXAMPLES, FEATURES)));
  const nan = values(EXAMPLES, FEATURES);
  nan.fill(NaN, 2 * FEATURES, 4 * FEATURES); // rows 2 and 3
  files.set('x-nan-rows.npy', npy('<f4', [EXAMPLES, FEATURES], nan));
  const inf = values(EXAMPLES, FEATURES);
  inf[4 * FEATURES + 7] = Infinity; // row 4, column 7
  files.set('x-inf-cell.npy', npy('<f4', [EXAMPLES, FEATURES], inf));
  files.set('x-21-features.npy', npy('<f4', [EXAMPLES, 21], values(EXAMPLES, 21)));
  files.set('x-no-rows.npy', npy('<f4', [0, FEATURES], new Float32Array(0)));
  files.set(
    'x-truncated.npy',
    npy('<f4', [EXAMPLES, FEATURES], values(EXAMPLES, FEATURES)).subarray(0, 200),
  );
  // An object array: numpy would unpickle it (code execution); this is the pickle of [1] only.
  files.set(
    'x-pickled.npy',
    npyBytes(
      "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
      Buffer.from('80049505000000000000005d944b01612e', 'hex'),
    ),
  );
  // Headers are read as text, never evaluated: code where the shape goes is not a shape; a huge shape is not the file's.
  files.set(
    'x-code-in-header.npy',
    npyBytes(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (__import__('os').system('id'),), }",
      new Uint8Array(480),
    ),
  );
  files.set(
    'x-huge-shape.npy',
    npyBytes(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 20), }",
      new Uint8Array(480),
    ),
  );
  files.set('not-npy.npy', Buffer.from('x,y\n1,2\n'));

  // Labels for 6 examples of 3 classes: fine, −1, 2.5 (float), 1e6, one class only.
  files.set(
    'labels.npy',
    npy('<i8', [EXAMPLES], BigInt64Array.from([0, 1, 2, 0, 1, 2].map(BigInt))),
  );
  files.set(
    'labels-minus-one.npy',
    npy('<i8', [EXAMPLES], BigInt64Array.from([0, 1, 2, -1, 1, 2].map(BigInt))),
  );
  files.set('labels-fraction.npy', npy('<f4', [EXAMPLES], Float32Array.from([0, 1, 2, 2.5, 1, 0])));
  files.set(
    'labels-million.npy',
    npy('<i8', [EXAMPLES], BigInt64Array.from([0, 1, 2, 1_000_000, 1, 2].map(BigInt))),
  );
  files.set('labels-one-class.npy', npy('<i8', [EXAMPLES], new BigInt64Array(EXAMPLES)));

  // CSV tables: 20 feature columns f0..f19 and a label column.
  const header = [...Array.from({ length: FEATURES }, (_, i) => `f${i}`), 'label'].join(',');
  const row = (r: number, cell?: [number, string]) =>
    Array.from({ length: FEATURES + 1 }, (_, c) =>
      cell && cell[0] === c
        ? cell[1]
        : c === FEATURES
          ? String(r % 3)
          : (((r + c) % 5) / 4).toFixed(2),
    ).join(',');
  const csv = (bad: [number, number, string] | undefined) =>
    `${header}\n${Array.from({ length: EXAMPLES }, (_, r) => row(r, bad && bad[0] === r ? [bad[1], bad[2]] : undefined)).join('\n')}\n`;
  files.set('table.csv', Buffer.from(csv(undefined)));
  files.set('table-hex.csv', Buffer.from(csv([2, 3, '0x1F'])));
  files.set('table-1e999.csv', Buffer.from(csv([4, 5, '1e999'])));
  files.set('table-empty-cell.csv', Buffer.from(csv([1, 0, ''])));
  files.set('table-header-only.csv', Buffer.from(`${header}\n`));

  // Intervention files.
  files.set(
    'interventions-bom.json',
    Buffer.from('\ufeff[{"kind": "ablate", "hook": "act1", "units": [0, 1]}]'),
  );
  files.set('interventions-null.json', Buffer.from('[null]'));
  files.set(
    'interventions-wrong-types.json',
    Buffer.from('[{"kind": "ablate", "hook": "act1", "units": "all"}]'),
  );
  files.set('interventions-not-array.json', Buffer.from('{"kind": "ablate", "hook": "act1"}'));
  files.set('interventions-not-json.json', Buffer.from('[{"kind": "ablate", "hook": "act1",'));
  files.set(
    'interventions-huge-range.json',
    Buffer.from('[{"kind": "scale", "hook": "act1", "factor": 0, "units": "0:99999999999"}]'),
  );

  // A file where an output folder goes.
  files.set('a-file', Buffer.from('not a folder\n'));
  return files;
}

function initializer(proto: ModelProto, name: string) {
  const tensor = proto.graph.initializer.find((t) => t.name === name);
  if (!tensor) throw new Error(`the mlp fixture has no initializer '${name}'`);
  return tensor;
}

/** fc1.weight moved to external data with these entries. */
function external(proto: ModelProto, entries: [string, string][]): void {
  const weight = initializer(proto, 'fc1.weight');
  weight.externalData = entries.map(([key, value]) => ({ key, value }));
  weight.dataLocation = 1;
  weight.rawData = new Uint8Array(0);
}

function inputDims(proto: ModelProto) {
  return proto.graph.input[0].type!.tensorType!.shape!.dim;
}

/** Renames a value everywhere it appears (node outputs and inputs, graph outputs). */
function rename(proto: ModelProto, from: string, to: string): void {
  for (const node of proto.graph.node) {
    node.input = node.input.map((name) => (name === from ? to : name));
    node.output = node.output.map((name) => (name === from ? to : name));
  }
  for (const output of proto.graph.output) if (output.name === from) output.name = to;
}

/** A .npy file (version 1.0) of this dtype and shape. */
function npy(descr: string, shape: number[], data: Float32Array | BigInt64Array): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  return npyBytes(
    `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`,
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
}

/** Magic, version 1.0, the header padded with spaces to a multiple of 64 bytes, then the data. */
function npyBytes(header: string, data: Uint8Array): Uint8Array {
  const padded = header + ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const preamble = Buffer.alloc(10);
  preamble.write('\x93NUMPY', 0, 'latin1');
  preamble[6] = 1;
  preamble.writeUInt16LE(padded.length, 8);
  return Buffer.concat([preamble, Buffer.from(padded, 'latin1'), data]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  rmSync(HOSTILE_DIR, { recursive: true, force: true });
  mkdirSync(HOSTILE_DIR, { recursive: true });
  for (const [name, bytes] of hostileFiles()) writeFileSync(`${HOSTILE_DIR}${name}`, bytes);
  const total = readdirSync(HOSTILE_DIR).reduce(
    (sum, name) => sum + readFileSync(`${HOSTILE_DIR}${name}`).length,
    0,
  );
  console.log(`wrote ${readdirSync(HOSTILE_DIR).length} files, ${total} bytes, to ${HOSTILE_DIR}`);
}
