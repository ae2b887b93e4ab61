/**
 * NumPy .npy files (format versions 1–3): little-endian float32, float64, int32, int64, int8,
 * uint8 and bool, C order. Anything else is refused with the reason.
 *
 * Reading is by row ranges (`NpyFile.readRows`), so a dataset larger than memory streams in
 * batches; writing streams rows too (`NpyWriter`) and renames into place only when complete.
 */
import { closeSync, openSync, readSync, writeSync, fstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from '../errors.ts';
import { createTemporary, discardTemporary, finishTemporary, requireFile } from '../files.ts';
import {
  allocate,
  BYTES_PER_ELEMENT,
  elementCount,
  shapeString,
  type DType,
  type Tensor,
} from '../tensor.ts';
import { requireFinite } from './validate.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DTYPE_OF_DESCR: Record<string, DType> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<i4': 'int32',
  '<i8': 'int64',
  '|u1': 'uint8',
  '|i1': 'int8',
  '|b1': 'bool',
};
const DESCR_OF_DTYPE = Object.fromEntries(
  Object.entries(DTYPE_OF_DESCR).map(([descr, dtype]) => [dtype, descr]),
) as Record<DType, string>;

export interface NpyHeader {
  dtype: DType;
  dims: number[];
  /** Byte offset of the first element. */
  dataOffset: number;
}

export class NpyFile {
  readonly header: NpyHeader;

  constructor(readonly path: string) {
    requireFile(path, 'Array file');
    const fd = openSync(path, 'r');
    try {
      this.header = parseHeader(fd, path);
      const expected =
        this.header.dataOffset +
        elementCount(this.header.dims) * BYTES_PER_ELEMENT[this.header.dtype];
      const size = fstatSync(fd).size;
      if (size < expected) {
        throw new InputError(
          `'${path}' is truncated: its header promises ${this.header.dtype} ${shapeString(this.header.dims)} (${expected} bytes) but the file has ${size} bytes. Save the array again.`,
        );
      }
    } finally {
      closeSync(fd);
    }
  }

  get rows(): number {
    return this.header.dims[0] ?? 1;
  }

  /**
   * Rows [start, end) along the first axis. Float rows holding NaN or ±Inf are refused (an
   * InputError naming the file, rows and columns) unless non-finite data is allowed
   * (validate.ts allowNonFinite, --allow-non-finite) or `finite: false` reads the file as it is.
   */
  readRows(start: number, end: number, options: { finite?: boolean } = {}): Tensor {
    const { dtype, dims, dataOffset } = this.header;
    const rowDims = dims.slice(1);
    const rowBytes = elementCount(rowDims) * BYTES_PER_ELEMENT[dtype];
    const data = allocate(dtype, (end - start) * elementCount(rowDims));
    const fd = openSync(this.path, 'r');
    try {
      readSync(fd, new Uint8Array(data.buffer), 0, data.byteLength, dataOffset + start * rowBytes);
    } finally {
      closeSync(fd);
    }
    const block: Tensor = { dtype, dims: dims.length === 0 ? [] : [end - start, ...rowDims], data };
    if (options.finite !== false) requireFinite(block, `'${this.path}'`, { firstRow: start });
    return block;
  }

  readAll(options: { finite?: boolean } = {}): Tensor {
    return this.header.dims.length === 0
      ? this.readRows(0, 1, options)
      : this.readRows(0, this.rows, options);
  }
}

/**
 * Any .npy file as it is, non-finite values included: teardown's own outputs hold them
 * legitimately (an attention mask's −∞). Commands read users' data through NpyFile, which refuses them.
 */
export function readNpy(path: string): Tensor {
  return new NpyFile(path).readAll({ finite: false });
}

function parseHeader(fd: number, path: string): NpyHeader {
  const bad = (what: string) =>
    new InputError(`'${path}' is not a valid .npy file: ${what}. Save it with numpy.save.`);
  const prefix = new Uint8Array(12);
  const got = readSync(fd, prefix, 0, 12, 0);
  if (got < 10 || !MAGIC.every((byte, i) => prefix[i] === byte))
    throw bad('it does not start with the \\x93NUMPY magic');
  const major = prefix[6];
  if (major < 1 || major > 3)
    throw bad(`format version ${major}.${prefix[7]} is unknown (1, 2 and 3 are read)`);
  const view = new DataView(prefix.buffer);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  // The length field is read from the file: check it against the file before allocating it.
  const size = fstatSync(fd).size;
  if (headerStart + headerLength > size) {
    throw bad(
      `its header length field says ${headerLength} bytes, but the file has only ${size} bytes`,
    );
  }
  const headerBytes = new Uint8Array(headerLength);
  if (readSync(fd, headerBytes, 0, headerLength, headerStart) < headerLength)
    throw bad('the header is cut short');
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined)
    throw bad(`the header '${text.trim()}' lacks descr, fortran_order or shape`);
  const dtype =
    DTYPE_OF_DESCR[
      descr === '<u1' || descr === '<i1' || descr === '<b1' ? `|${descr.slice(1)}` : descr
    ];
  if (!dtype) {
    throw new InputError(
      `'${path}' holds dtype '${descr}', which teardown does not read: use little-endian float32, float64, int32, int64, int8, uint8 or bool (numpy: arr.astype(np.float32)).`,
    );
  }
  if (fortran === 'True')
    throw new InputError(
      `'${path}' is stored in Fortran order: save a C-order copy (numpy.ascontiguousarray(arr)).`,
    );
  const dims = shape
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map(Number);
  if (dims.some((dim) => !Number.isInteger(dim) || dim < 0))
    throw bad(`the shape (${shape}) is not a tuple of sizes`);
  return { dtype, dims, dataOffset: headerStart + headerLength };
}

/** The header bytes for an array, padded so the data starts on a 64-byte boundary (format 1.0). */
function headerBytes(dtype: DType, dims: readonly number[], minimumLength = 0): Uint8Array {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let dict = `{'descr': '${DESCR_OF_DTYPE[dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = Math.max(minimumLength, Math.ceil((10 + dict.length + 1) / 64) * 64);
  dict = dict.padEnd(total - 10 - 1, ' ') + '\n';
  const bytes = new Uint8Array(total);
  bytes.set(MAGIC, 0);
  bytes[6] = 1;
  bytes[7] = 0;
  new DataView(bytes.buffer).setUint16(8, dict.length, true);
  bytes.set(new TextEncoder().encode(dict), 10);
  return bytes;
}

export function encodeNpy(tensor: Tensor): Uint8Array {
  const header = headerBytes(tensor.dtype, tensor.dims);
  const data = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const bytes = new Uint8Array(header.length + data.length);
  bytes.set(header);
  bytes.set(data, header.length);
  return bytes;
}

/**
 * Appends rows to an .npy file as batches arrive; the header (written with room to spare) gets
 * the final row count on close, and the file appears under its name only then.
 */
export class NpyWriter {
  private fd: number | undefined;
  private rows = 0;
  private rowDims: number[] | undefined;
  private dtype: DType | undefined;
  private temporary: string | undefined;
  private static readonly HEADER_LENGTH = 256;

  constructor(readonly path: string) {}

  append(batch: Tensor): void {
    if (this.fd === undefined) {
      ({ path: this.temporary, fd: this.fd } = createTemporary(dirname(this.path)));
      this.rowDims = batch.dims.slice(1);
      this.dtype = batch.dtype;
      writeSync(this.fd, new Uint8Array(NpyWriter.HEADER_LENGTH));
    } else if (batch.dtype !== this.dtype || batch.dims.slice(1).join() !== this.rowDims!.join()) {
      throw new InputError(
        `Rows appended to '${this.path}' changed shape or dtype: ${batch.dtype} ${shapeString(batch.dims.slice(1))} after ${this.dtype} ${shapeString(this.rowDims!)}.`,
      );
    }
    writeSync(
      this.fd,
      new Uint8Array(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength),
    );
    this.rows += batch.dims[0];
  }

  close(): void {
    if (this.fd === undefined) throw new InputError(`No rows were written to '${this.path}'.`);
    writeSync(
      this.fd,
      headerBytes(this.dtype!, [this.rows, ...this.rowDims!], NpyWriter.HEADER_LENGTH),
      0,
      NpyWriter.HEADER_LENGTH,
      0,
    );
    closeSync(this.fd);
    this.fd = undefined;
    finishTemporary(this.temporary!, this.path);
  }

  abandon(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.temporary !== undefined) discardTemporary(this.temporary);
  }
}
