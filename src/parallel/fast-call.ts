// The fast path of a call: a few numbers through the pool's control block instead of a message per
// worker. Data handles are sent once (and again only after a reallocation); index lists go through a
// shared scratch buffer; rank 0 writes the reduced outputs (and the shared values it changed) into a
// shared result arena that the controller reads.
import { NDArray } from '../tensor/ndarray.js';
import { DTYPES, storageOf, type TypedArray } from '../tensor/dtype.js';
import type { Rows } from '../devices/rows.js';


/** Puts a string into the scratch arena; returns its byte length. */
export function writeString(scratch: SharedArrayBuffer, text: string): number {
  const bytes = new TextEncoder().encode(text);
  if (!ensureArena(scratch, bytes.length)) throw new RangeError('scratch arena too small');
  new Uint8Array(scratch, 0, bytes.length).set(bytes);
  return bytes.length;
}

export function readString(scratch: SharedArrayBuffer, length: number): string {
  return new TextDecoder().decode(new Uint8Array(scratch, 0, length).slice());
}
const MAX_ARGS = 64;
const MAX_NDIM = 8;
const HEADER_BYTES = 4096;
const ENTRY_INTS = 12; // dtype, ndim, 8 dims, byteOffset, updateIndex (-1 for an output)
export const MAX_RESULT_ENTRIES = Math.floor((HEADER_BYTES / 4 - 4) / ENTRY_INTS);

const GrowableSAB = SharedArrayBuffer as unknown as new (length: number, options?: { maxByteLength: number }) => SharedArrayBuffer;
type Growable = SharedArrayBuffer & { grow?: (n: number) => void; growable?: boolean; maxByteLength?: number };

export function createArena(initialBytes: number, maxBytes = 1 << 30): SharedArrayBuffer {
  try {
    return new GrowableSAB(initialBytes, { maxByteLength: maxBytes });
  } catch {
    return new SharedArrayBuffer(initialBytes);
  }
}

/** Makes sure the arena has `bytes`; returns false when it cannot grow that far. */
export function ensureArena(arena: SharedArrayBuffer, bytes: number): boolean {
  if (arena.byteLength >= bytes) return true;
  const g = arena as Growable;
  if (!g.growable || g.grow === undefined || (g.maxByteLength ?? 0) < bytes) return false;
  g.grow(Math.min(g.maxByteLength!, Math.max(bytes, arena.byteLength * 2)));
  return true;
}

export interface FastCall {
  readonly fnId: number;
  readonly numSlices: number;
  readonly someRankEmpty: boolean;
  readonly selection: Rows | null;
  readonly dataIds: readonly number[];
  readonly outputSubset: readonly number[] | null;
  /**
   * batchS: the rows of the sliceable shareds per local rank (null: all of that rank's rows); one
   * entry stands for every rank. Empty (or absent) without batchS.
   */
  readonly sliceRows?: readonly (Rows | null)[];
}

/** Index lists go into the scratch arena one after another, each at a multiple of 4 bytes. */
class ListWriter {
  private bytes = 0;
  constructor(private readonly scratch: SharedArrayBuffer) {}
  /** Encodes rows as [kind, a, b] (0: none, 1: range a..b, 2: list of b indices at int32 offset a); false when the arena cannot grow. */
  push(args: number[], rows: Rows | null): boolean {
    if (rows === null) args.push(0, 0, 0);
    else if (rows.kind === 'range') args.push(1, rows.start, rows.stop);
    else {
      const at = this.bytes;
      if (!ensureArena(this.scratch, at + rows.indices.byteLength)) return false;
      new Int32Array(this.scratch, at, rows.indices.length).set(rows.indices);
      this.bytes += rows.indices.byteLength;
      args.push(2, at / 4, rows.indices.length);
    }
    return true;
  }
}

/** Encodes a call into control-block arguments, or returns null when it does not fit. */
export function encodeFastCall(call: FastCall, scratch: SharedArrayBuffer): number[] | null {
  const args = [call.fnId, call.numSlices, call.someRankEmpty ? 1 : 0];
  const lists = new ListWriter(scratch);
  if (!lists.push(args, call.selection)) return null;
  args.push(call.dataIds.length, ...call.dataIds);
  args.push(call.outputSubset ? call.outputSubset.length : -1, ...(call.outputSubset ?? []));
  // One entry when every rank takes the same rows (batchS given once), else one per rank.
  const slices = call.sliceRows ?? [];
  const same = slices.length > 1 && slices.every((r) => r === slices[0]);
  const entries = same ? [slices[0]!] : slices;
  if (args.length + 1 + 3 * entries.length > MAX_ARGS) return null;
  args.push(entries.length);
  for (const rows of entries) if (!lists.push(args, rows)) return null;
  return args;
}

/** Decodes one [kind, a, b] row selection; index lists are copied (the controller may reuse the scratch buffer for the next call). */
function decodeRows(kind: number, a: number, b: number, scratch: SharedArrayBuffer): Rows | null {
  if (kind === 0) return null;
  if (kind === 1) return { kind: 'range', start: a, stop: b };
  return { kind: 'list', indices: new Int32Array(scratch, a * 4, b).slice() };
}

/** The call as the worker of local rank `rank` sees it: `sliceRows` holds its own rows only (or is empty). */
export function decodeFastCall(args: Float64Array, scratch: SharedArrayBuffer, rank: number): FastCall {
  let p = 0;
  const next = () => args[p++]!;
  const fnId = next();
  const numSlices = next();
  const someRankEmpty = next() === 1;
  const selection = decodeRows(next(), next(), next(), scratch);
  const nData = next();
  const dataIds = Array.from({ length: nData }, next);
  const nSubset = next();
  const outputSubset = nSubset < 0 ? null : Array.from({ length: nSubset }, next);
  const nSlices = p < args.length ? next() : 0;
  let sliceRows: (Rows | null)[] = [];
  if (nSlices > 0) {
    const mine = nSlices === 1 ? 0 : rank;
    if (mine >= nSlices) throw new RangeError(`fast call: batchS rows for ${nSlices} ranks, this is rank ${rank}`);
    p += 3 * mine;
    sliceRows = [decodeRows(next(), next(), next(), scratch)];
  }
  return { fnId, numSlices, someRankEmpty, selection, dataIds, outputSubset, sliceRows };
}

export interface ResultEntry {
  readonly value: NDArray;
  /** Index of the program update whose new value this is, or -1 for an output. */
  readonly updateIndex: number;
}

/** Rank 0 writes its results into the arena (growing it when needed). */
export function writeResults(arena: SharedArrayBuffer, entries: readonly ResultEntry[]): void {
  let bytes = HEADER_BYTES;
  const offsets = entries.map((e) => { const at = bytes; bytes += Math.ceil(e.value.data.byteLength / 8) * 8; return at; });
  if (entries.length > MAX_RESULT_ENTRIES) throw new RangeError(`fast call: ${entries.length} results exceed the arena's ${MAX_RESULT_ENTRIES}`);
  if (!ensureArena(arena, bytes)) throw new RangeError(`fast call: results need ${bytes} bytes, the result arena cannot grow that far`);
  const header = new Int32Array(arena, 0, HEADER_BYTES / 4);
  header[0] = entries.length;
  entries.forEach((e, i) => {
    const base = 4 + i * ENTRY_INTS;
    if (e.value.ndim > MAX_NDIM) throw new RangeError(`fast call: result ${i} has more than ${MAX_NDIM} axes`);
    header[base] = DTYPES.indexOf(e.value.dtype);
    header[base + 1] = e.value.ndim;
    e.value.shape.forEach((d, k) => { header[base + 2 + k] = d; });
    header[base + 10] = offsets[i]!;
    header[base + 11] = e.updateIndex;
    new (storageOf(e.value.dtype))(arena as unknown as ArrayBuffer, offsets[i]!, e.value.size).set(e.value.data as TypedArray & ArrayLike<number>);
  });
}

/**
 * The results rank 0 wrote, as views of the arena: valid only until the next call writes it (a
 * caller that copies them at once, such as a fetch of a shared value into its own array, saves a copy).
 */
export function viewResults(arena: SharedArrayBuffer): ResultEntry[] {
  const header = new Int32Array(arena, 0, HEADER_BYTES / 4);
  const out: ResultEntry[] = [];
  for (let i = 0; i < header[0]!; i++) {
    const base = 4 + i * ENTRY_INTS;
    const dtype = DTYPES[header[base]!]!;
    const shape = Array.from(header.subarray(base + 2, base + 2 + header[base + 1]!));
    const size = shape.reduce((x, y) => x * y, 1);
    const view = new (storageOf(dtype))(arena as unknown as ArrayBuffer, header[base + 10]!, size) as TypedArray;
    out.push({ value: new NDArray(dtype, shape, view), updateIndex: header[base + 11]! });
  }
  return out;
}

/** The controller reads (copies) the results rank 0 wrote. */
export function readResults(arena: SharedArrayBuffer): ResultEntry[] {
  return viewResults(arena).map((e) => ({ value: new NDArray(e.value.dtype, e.value.shape, e.value.data.slice() as TypedArray), updateIndex: e.updateIndex }));
}
