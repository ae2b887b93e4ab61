/**
 * A minimal PNG encoder (RGB, 8 bits, no filter) so that reports can embed sample images as
 * data: URIs — no canvas, no network. Format: PNG spec (ISO/IEC 15948), chunks IHDR, IDAT
 * (zlib-deflated scanlines, each prefixed by filter byte 0) and IEND, each with a CRC-32.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** `rgb`: height × width × 3 bytes, row-major. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit depth, colour type 2 (RGB), deflate, no filter, no interlace
  const raw = Buffer.alloc(height * (1 + 3 * width));
  for (let y = 0; y < height; y++)
    Buffer.from(rgb.subarray(y * 3 * width, (y + 1) * 3 * width)).copy(
      raw,
      y * (1 + 3 * width) + 1,
    );
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array()),
  ]);
}

/**
 * One image of an [N, C, H, W] tensor in [0, 1] as a PNG data URI: one channel is grey, two or
 * three channels are red, green (and blue).
 */
export function imageDataUri(
  data: Float32Array,
  index: number,
  channels: number,
  height: number,
  width: number,
): string {
  const plane = height * width;
  const rgb = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const source = channels === 1 ? 0 : c < channels ? c : -1;
      const value = source < 0 ? 0 : data[(index * channels + source) * plane + p];
      rgb[p * 3 + c] = Math.round(255 * Math.min(1, Math.max(0, value)));
    }
  }
  return `data:image/png;base64,${encodePng(width, height, rgb).toString('base64')}`;
}
