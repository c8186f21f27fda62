// Parameters to and from the safetensors format (huggingface/safetensors), readable by PyTorch,
// JAX and others: 8-byte little-endian header length N, N bytes of JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { string: string } } padded
// with spaces to a multiple of 8, then the tensors' bytes (little-endian, row-major, no holes).
import { readFileSync, writeFileSync } from 'node:fs';
import { NDArray, describe, shapeToString } from '../tensor/ndarray.js';
import { storageOf, type DType, type TypedArray } from '../tensor/dtype.js';
import { SharedVariable } from '../tensor/variable.js';

const TO_ST: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', uint8: 'U8', bool: 'BOOL' };
const FROM_ST: Record<string, DType> = { F32: 'float32', F64: 'float64', I32: 'int32', U8: 'uint8', BOOL: 'bool' };
const BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4, uint8: 1, bool: 1 };
const MAX_HEADER = 100 * 2 ** 20;

/** The arrays and the string metadata of a safetensors file. */
export interface SafetensorsContents {
  readonly tensors: Record<string, NDArray>;
  readonly metadata: Record<string, string>;
}

/** Encodes named arrays (in the given order) as one safetensors buffer. */
export function encodeSafetensors(tensors: Readonly<Record<string, NDArray>>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new TypeError(`safetensors: metadata ${k} must be a string, got ${describe(v)}`);
    header['__metadata__'] = { ...metadata };
  }
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, a] of entries) {
    if (name === '__metadata__') throw new TypeError('safetensors: __metadata__ is reserved and cannot name a tensor');
    if (!(a instanceof NDArray)) throw new TypeError(`safetensors: tensor ${name} must be an NDArray, got ${describe(a)}`);
    const bytes = a.size * BYTES[a.dtype];
    header[name] = { dtype: TO_ST[a.dtype], shape: [...a.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const raw = new TextEncoder().encode(json);
  const padded = Math.ceil(raw.length / 8) * 8;
  json += ' '.repeat(padded - raw.length);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const [, a] of entries) {
    const data = a.data;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pos);
    pos += data.byteLength;
  }
  return out;
}

/** Decodes a safetensors buffer; `source` names it in errors (e.g. the file path). */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors buffer'): SafetensorsContents {
  const fail = (problem: string): never => {
    throw new RangeError(`${source}: not a valid safetensors file: ${problem}`);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes, too short for the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) fail(`the header claims ${n} bytes, the file has ${bytes.length - 8} after the length`);
  const headerLength = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    fail(`the header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('the header is not a JSON object');
  const data = bytes.subarray(8 + headerLength);
  const tensors: Record<string, NDArray> = {};
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Object.values(raw).some((v) => typeof v !== 'string')) fail('__metadata__ must map strings to strings');
      metadata = { ...(raw as Record<string, string>) };
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) fail(`tensor ${name}: the entry is not an object`);
    const dtype = typeof e.dtype === 'string' ? FROM_ST[e.dtype] : undefined;
    if (!dtype) fail(`tensor ${name}: dtype ${JSON.stringify(e.dtype)} is not supported (F32, F64, I32, U8, BOOL)`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      fail(`tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0) || offs[0] > offs[1])
      fail(`tensor ${name}: data_offsets ${JSON.stringify(offs)} is not [begin, end]`);
    const [begin, end] = offs as [number, number];
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    const dt = dtype as DType;
    if (end - begin !== size * BYTES[dt])
      fail(`tensor ${name}: ${end - begin} bytes for shape ${shapeToString(shape as number[])} of ${e.dtype as string} (needs ${size * BYTES[dt]})`);
    if (end > data.length) fail(`tensor ${name}: bytes ${begin}..${end} run past the end of the data (${data.length} bytes); the file is truncated`);
    const copy = new Uint8Array(end - begin);
    copy.set(data.subarray(begin, end));
    tensors[name] = new NDArray(dt, shape as number[], new (storageOf(dt))(copy.buffer, 0, size) as TypedArray);
    spans.push([begin, end, name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  let expected = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== expected) fail(`tensor ${name} starts at byte ${begin}, expected ${expected} (overlap or hole in the data)`);
    expected = end;
  }
  return { tensors, metadata };
}

/** Writes named arrays (in the given order) and metadata to a safetensors file. */
export function saveSafetensors(path: string, tensors: Readonly<Record<string, NDArray>>, metadata: Readonly<Record<string, string>> = {}): void {
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file; errors name the file and what is wrong with it. */
export function loadSafetensors(path: string): SafetensorsContents {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`loadSafetensors: cannot read ${path}: ${(e as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}

/** Shared variables to save or load: a list (each named by its `name`, which must be unique) or a record by name. */
export type NamedParams = readonly SharedVariable[] | Readonly<Record<string, SharedVariable>>;

/** Names for shared variables: a record's keys, or each variable's name (unique, required). */
export function namedParams(params: NamedParams, what: string): [string, SharedVariable][] {
  const list: [string, SharedVariable][] = Array.isArray(params)
    ? (params as readonly SharedVariable[]).map((p, i) => {
        if (!(p instanceof SharedVariable)) throw new TypeError(`${what}: params[${i}] must be a shared variable, got ${describe(p)}`);
        if (p.name === undefined)
          throw new TypeError(`${what}: params[${i}] has no name; give names (T.shared(v, { name })) or pass a record { name: shared }`);
        return [p.name, p];
      })
    : Object.entries(params as Record<string, SharedVariable>);
  const seen = new Set<string>();
  for (const [name, p] of list) {
    if (!(p instanceof SharedVariable)) throw new TypeError(`${what}: ${name} must be a shared variable, got ${describe(p)}`);
    if (seen.has(name)) throw new TypeError(`${what}: the name ${name} is used twice`);
    seen.add(name);
  }
  return list;
}

/** Writes the current values of shared variables to a safetensors file. */
export function saveParams(path: string, params: NamedParams, metadata: Readonly<Record<string, string>> = {}): void {
  const tensors: Record<string, NDArray> = {};
  for (const [name, p] of namedParams(params, 'saveParams')) tensors[name] = p.getValue({ borrow: true });
  saveSafetensors(path, tensors, metadata);
}

/**
 * Sets shared variables from a safetensors file. Every variable must be in the file with its exact
 * dtype and shape (strict also refuses tensors in the file that are not asked for); on any mismatch
 * nothing is changed. Values set on the controller reach the workers through synk.broadcast (a
 * makeTrainFunction's train does that by itself before its next step).
 */
export function loadParams(path: string, params: NamedParams, options: { strict?: boolean } = {}): SafetensorsContents['metadata'] {
  const list = namedParams(params, 'loadParams');
  const { tensors, metadata } = loadSafetensors(path);
  const problems: string[] = [];
  const values: [SharedVariable, NDArray][] = [];
  for (const [name, p] of list) {
    const t = tensors[name];
    if (!t) {
      problems.push(`${name} is missing from the file`);
      continue;
    }
    const want = p.getValue({ borrow: true });
    if (t.dtype !== p.dtype) problems.push(`${name} is ${TO_ST[t.dtype]} in the file, the variable is ${TO_ST[p.dtype]}`);
    else if (shapeToString(t.shape) !== shapeToString(want.shape))
      problems.push(`${name} has shape ${shapeToString(t.shape)} in the file, the variable has ${shapeToString(want.shape)}`);
    else values.push([p, t]);
  }
  if (options.strict ?? true) {
    const asked = new Set(list.map(([n]) => n));
    const extra = Object.keys(tensors).filter((n) => !asked.has(n));
    if (extra.length) problems.push(`the file has tensors that were not asked for: ${extra.join(', ')} (pass { strict: false } to ignore them)`);
  }
  if (problems.length) throw new RangeError(`loadParams(${path}): refused, nothing was changed: ${problems.join('; ')}`);
  for (const [p, t] of values) p.setValue(t, { borrow: true });
  return metadata;
}
