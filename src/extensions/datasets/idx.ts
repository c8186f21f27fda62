// The IDX format of the MNIST files (yann.lecun.com/exdb/mnist): two zero bytes, a type code, the
// number of axes, each axis as a big-endian uint32, then the values big-endian. Plain or gzip.
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { NDArray, shapeToString } from '../../tensor/ndarray.js';
import type { DType } from '../../tensor/dtype.js';

interface IdxType {
  readonly code: number;
  readonly name: string;
  readonly bytes: number;
  readonly dtype: DType;
  read(v: DataView, at: number): number;
  write(v: DataView, at: number, x: number): void;
}

const TYPES: readonly IdxType[] = [
  { code: 0x08, name: 'unsigned byte', bytes: 1, dtype: 'uint8', read: (v, a) => v.getUint8(a), write: (v, a, x) => v.setUint8(a, x) },
  { code: 0x09, name: 'signed byte', bytes: 1, dtype: 'int32', read: (v, a) => v.getInt8(a), write: (v, a, x) => v.setInt8(a, x) },
  { code: 0x0b, name: 'short', bytes: 2, dtype: 'int32', read: (v, a) => v.getInt16(a, false), write: (v, a, x) => v.setInt16(a, x, false) },
  { code: 0x0c, name: 'int', bytes: 4, dtype: 'int32', read: (v, a) => v.getInt32(a, false), write: (v, a, x) => v.setInt32(a, x, false) },
  { code: 0x0d, name: 'float', bytes: 4, dtype: 'float32', read: (v, a) => v.getFloat32(a, false), write: (v, a, x) => v.setFloat32(a, x, false) },
  { code: 0x0e, name: 'double', bytes: 8, dtype: 'float64', read: (v, a) => v.getFloat64(a, false), write: (v, a, x) => v.setFloat64(a, x, false) },
];

/** The element types of the IDX format (MNIST's file format). */
export type IdxTypeName = 'ubyte' | 'byte' | 'short' | 'int' | 'float' | 'double';
const BY_NAME: Record<IdxTypeName, number> = { ubyte: 0x08, byte: 0x09, short: 0x0b, int: 0x0c, float: 0x0d, double: 0x0e };

/** An IDX decoding error naming the file and what is wrong with it. */
export class IdxError extends Error {
  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = 'IdxError';
  }
}

const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * Decodes IDX bytes (gunzipped first when they start with the gzip magic). Unsigned bytes become
 * uint8, signed bytes, shorts and ints int32, floats float32, doubles float64.
 */
export function decodeIdx(input: Uint8Array, source = 'IDX data'): NDArray {
  let bytes = input;
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new IdxError(source, `the gzip data is corrupt or truncated (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4) throw new IdxError(source, `truncated: ${bytes.length} bytes, an IDX file starts with a 4-byte magic number`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0 || bytes[1] !== 0)
    throw new IdxError(source, `not an IDX file: the magic number starts with bytes 0x${hex(bytes[0]!)} 0x${hex(bytes[1]!)}, expected 0x00 0x00`);
  const type = TYPES.find((t) => t.code === bytes[2]);
  if (!type) throw new IdxError(source, `unknown IDX type code 0x${hex(bytes[2]!)} in the magic number (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)`);
  const ndim = bytes[3]!;
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes)
    throw new IdxError(source, `truncated: ${ndim} dimensions need a ${headerBytes}-byte header, the file has ${bytes.length} bytes`);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const size = shape.reduce((a, b) => a * b, 1);
  const need = headerBytes + size * type.bytes;
  if (bytes.length < need)
    throw new IdxError(source, `truncated: shape ${shapeToString(shape)} of ${type.name}s needs ${need} bytes, the file has ${bytes.length}`);
  if (bytes.length > need)
    throw new IdxError(source, `corrupt: ${bytes.length - need} unexpected bytes after the data of shape ${shapeToString(shape)} (${need} bytes expected)`);
  const out = new NDArray(type.dtype, shape);
  if (type.code === 0x08) out.data.set(bytes.subarray(headerBytes, need));
  else for (let i = 0; i < size; i++) out.data[i] = type.read(view, headerBytes + i * type.bytes);
  return out;
}

/** Reads an IDX file, plain or gzip (detected from the content). */
export function readIdx(path: string): NDArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new IdxError(path, code === 'ENOENT' ? 'no such file' : `cannot read it (${(e as Error).message})`);
  }
  return decodeIdx(bytes, path);
}

/** Encodes an array as IDX bytes of the given element type (default: from the dtype). */
export function encodeIdx(a: NDArray, options: { type?: IdxTypeName; gzip?: boolean } = {}): Uint8Array {
  const code = options.type
    ? BY_NAME[options.type]
    : a.dtype === 'uint8' || a.dtype === 'bool'
      ? 0x08
      : a.dtype === 'int32'
        ? 0x0c
        : a.dtype === 'float32'
          ? 0x0d
          : 0x0e;
  const type = TYPES.find((t) => t.code === code);
  if (!type) throw new TypeError(`encodeIdx: unknown type ${JSON.stringify(options.type)}`);
  if (a.ndim > 255) throw new RangeError(`encodeIdx: at most 255 axes, got ${a.ndim}`);
  const headerBytes = 4 + 4 * a.ndim;
  const bytes = new Uint8Array(headerBytes + a.size * type.bytes);
  const view = new DataView(bytes.buffer);
  bytes[2] = code;
  bytes[3] = a.ndim;
  a.shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < a.size; i++) type.write(view, headerBytes + i * type.bytes, a.data[i]!);
  return options.gzip ? gzipSync(bytes) : bytes;
}

/** Writes an array to an IDX file (gzip-compressed when `gzip` is set), as {@link encodeIdx} encodes it. */
export function writeIdx(path: string, a: NDArray, options: { type?: IdxTypeName; gzip?: boolean } = {}): void {
  writeFileSync(path, encodeIdx(a, options));
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0').toUpperCase();
}
