// Data: an array in a SharedArrayBuffer, the inputs of data-parallel calls. The controller owns it;
// workers read it through a DataHandle (dataView, gatherRows) without any copy through postMessage.
import { type DType, type TypedArray, assertDType, bytesPerElement, storageOf } from '../tensor/dtype.js';
import { type Shape, NDArray, assertShape, describe, shapeToString, sizeOf } from '../tensor/ndarray.js';
import { assertOversize, conditionValue, resolveRows, rowView, type RowIndex, type RowSelection } from './data-rows.js';
import type { Rows } from '../devices/rows.js';
import { constants as bufferConstants } from 'node:buffer';
import { freedSoon } from './collect-garbage.js';

export type { RowIndex, RowSelection } from './data-rows.js';

/** Options of {@link data}. */
export interface DataOptions {
  /** Rows of this Data are a minibatch: a call's `batch` indexes it from 0 (default false). */
  minibatch?: boolean;
  /** Allow down-casts of the value into the Data's dtype (default false: up-casts only). */
  forceCast?: boolean;
  /** Reserve oversize x the value's size, in [1, 2], so that it can grow in place (default 1). */
  oversize?: number;
  name?: string;
  /** The element type (default: the value's own; a plain JS array infers float32 or bool). */
  dtype?: DType;
}

export interface SetValueOptions {
  forceCast?: boolean;
  /** In [1, 2]; default: the oversize the Data was created with. */
  oversize?: number;
}

/** A Data as a worker sees it: plain, structured-cloneable; the buffer is shared, not copied. */
export interface DataHandle {
  readonly id: number;
  /** Bumped on every reallocation: a worker holding an older version has a stale buffer. */
  readonly version: number;
  readonly buffer: SharedArrayBuffer;
  readonly dtype: DType;
  /** The shape when the handle was taken (the length may change without a new buffer). */
  readonly shape: readonly number[];
  readonly minibatch: boolean;
  readonly name: string | undefined;
}

const OPTION_KEYS = ['minibatch', 'forceCast', 'oversize', 'name', 'dtype'];
let nextId = 1;

type View = new (buffer: SharedArrayBuffer, byteOffset: number, length: number) => TypedArray;

/** A typed view of `length` elements of `dtype` at the start of `buffer`. */
export function viewOf(dtype: DType, buffer: SharedArrayBuffer, length: number): TypedArray {
  return new (storageOf(dtype) as unknown as View)(buffer, 0, length);
}

/** The most elements one typed array (so one Data) holds in this runtime. */
export const MAX_DATA_ELEMENTS: number = bufferConstants.MAX_LENGTH;

function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Zeroed shared memory for `elements` of `dtype`; `what` names the argument that asked for it. */
function allocate(dtype: DType, elements: number, what: string): SharedArrayBuffer {
  const bytes = elements * bytesPerElement(dtype);
  if (elements > MAX_DATA_ELEMENTS) {
    throw new RangeError(`${what}: ${elements} ${dtype} elements (${formatBytes(bytes)}) do not fit one array; at most ${MAX_DATA_ELEMENTS} elements do`);
  }
  try {
    return new SharedArrayBuffer(bytes);
  } catch (e) {
    throw new RangeError(`${what}: cannot allocate ${formatBytes(bytes)} of shared memory for ${elements} ${dtype} elements (${(e as Error).message})`);
  }
}

type ReleaseListener = (id: number, bytes: number) => void;
const releaseListeners = new Set<ReleaseListener>();

/**
 * Calls `listener(id, bytes)` whenever a Data lets go of a buffer (freeMemory, or a reallocation by
 * setValue, setLength or setShape): the runtime tells the workers to drop their handle of it.
 * Returns a function that removes the listener.
 */
export function onDataBufferReleased(listener: ReleaseListener): () => void {
  releaseListeners.add(listener);
  return () => releaseListeners.delete(listener);
}

function released(id: number, buffer: SharedArrayBuffer): void {
  for (const listener of releaseListeners) listener(id, buffer.byteLength);
  freedSoon(buffer.byteLength);
}

function isSpec(value: unknown): value is { dtype: unknown; shape: unknown } {
  return typeof value === 'object' && value !== null && !(value instanceof NDArray) && !Array.isArray(value)
    && !ArrayBuffer.isView(value) && 'dtype' in value && 'shape' in value;
}

function checkOptions(options: unknown, keys: string[], what: string): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${what}: expected an options object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) throw new TypeError(`${what}: unknown option '${key}' (expected ${keys.join(', ')})`);
  }
  const o = options as Record<string, unknown>;
  for (const key of ['minibatch', 'forceCast']) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new TypeError(`${what}.${key}: expected a boolean, got ${describe(o[key])}`);
  }
  if (o.name !== undefined && typeof o.name !== 'string') throw new TypeError(`${what}.name: expected a string, got ${describe(o.name)}`);
  if (o.oversize !== undefined) assertOversize(o.oversize, `${what}.oversize`);
  if (o.dtype !== undefined) assertDType(o.dtype, `${what}.dtype`);
  return o;
}

/**
 * Makes a Data from a value (a nested JS array, number, typed array, NDArray or another Data; copied
 * once into shared memory) or from `{ dtype, shape }` (zeros).
 */
export function data(value: unknown, options?: DataOptions): Data {
  return new Data(value, options);
}

/**
 * Data for data-parallel functions, in shared memory (a SharedArrayBuffer) that every worker reads in place: made by
 * {@link data}, passed as an input of a {@link fn} function, its rows scattered along axis 0. `setValue` reuses the
 * memory when the new value fits (`oversize` reserves room to grow).
 *
 * @example
 * ```ts
 * import * as synk from 'synkhronos';
 * const d = synk.data([[1, 2], [3, 4], [5, 6]], { oversize: 2 });
 * console.log(d.dtype, d.shape, d.length, d.get(1).toArray()); // float32 [3, 2] 3 [3, 4]
 * d.setValue([[7, 8], [9, 10], [11, 12], [13, 14]]);            // fits in the reserved room: no reallocation
 * console.log(d.shape, d.array.toArray());
 * ```
 */
export class Data {
  readonly id: number;
  readonly dtype: DType;
  readonly minibatch: boolean;
  readonly name: string | undefined;
  private buffer: SharedArrayBuffer;
  private dims: number[];
  private reserved: number;
  private readonly oversize: number;
  private ver = 0;

  constructor(value: unknown, options?: DataOptions) {
    const o = checkOptions(options, OPTION_KEYS, 'data options');
    this.oversize = (o.oversize as number | undefined) ?? 1;
    if (isSpec(value) && !(value instanceof Data)) {
      // Zeros: the shared buffer is zeroed already, no array is built first.
      const dtype = assertDType(value.dtype, 'data value.dtype');
      const shape = assertShape(value.shape, 'data value.shape');
      if (o.dtype !== undefined && o.dtype !== dtype) throw new TypeError(`data options.dtype: ${String(o.dtype)} contradicts value.dtype ${dtype}`);
      this.reserved = Math.ceil(sizeOf(shape) * this.oversize);
      this.buffer = allocate(dtype, this.reserved, `data value.shape ${shapeToString(shape)}`);
      this.dtype = dtype;
      this.dims = shape;
    } else {
      const v = value instanceof Data ? value.array : value;
      const target = (o.dtype as DType | undefined) ?? inferDType(v);
      const src = conditionValue(v, target, o.forceCast === true, 'data value');
      this.reserved = Math.ceil(src.size * this.oversize);
      this.buffer = allocate(src.dtype, this.reserved, 'data value');
      viewOf(src.dtype, this.buffer, src.size).set(src.data);
      this.dtype = src.dtype;
      this.dims = [...src.shape];
    }
    this.id = nextId++;
    this.minibatch = o.minibatch === true;
    this.name = o.name as string | undefined;
  }

  /** An NDArray view of the current value (no copy; stale after a reallocation). */
  get array(): NDArray {
    return new NDArray(this.dtype, this.dims, viewOf(this.dtype, this.buffer, this.size));
  }

  get shape(): readonly number[] {
    return Object.freeze([...this.dims]);
  }

  /** Rows (the size of axis 0); a 0-d Data holds one element and has length 1. */
  get length(): number {
    return this.dims.length === 0 ? 1 : this.dims[0]!;
  }

  get size(): number {
    return sizeOf(this.dims);
  }

  get ndim(): number {
    return this.dims.length;
  }

  /** Elements reserved in shared memory (at least `size`). */
  get allocSize(): number {
    return this.reserved;
  }

  /** Bumped on every reallocation (setValue, setLength or setShape beyond allocSize, freeMemory). */
  get version(): number {
    return this.ver;
  }

  /**
   * Rows along axis 0: an index (negative counts from the end) gives one row, `{ start, stop }` a
   * range; both are views of shared memory. An index list (Int32Array or number[]) gives a copy.
   */
  get(index: RowIndex): NDArray {
    const sel = resolveRows(index, this.dims, 'Data.get index');
    if (sel.kind === 'list') return gatherInto(this.array, sel.indices);
    return rowView(this.dtype, this.buffer, this.dims, sel);
  }

  /** Writes rows: a scalar fills them, otherwise the value must have the selected rows' shape. */
  set(index: RowIndex, value: unknown, options?: { forceCast?: boolean }): void {
    const o = checkOptions(options, ['forceCast'], 'Data.set options');
    const sel = resolveRows(index, this.dims, 'Data.set index');
    const rowShape = this.dims.slice(1);
    const count = sel.kind === 'list' ? sel.indices.length : sel.kind === 'range' ? sel.stop - sel.start : 1;
    const target = sel.kind === 'row' ? rowShape : [count, ...rowShape];
    const scalar = typeof value === 'number' || typeof value === 'boolean';
    const src = conditionValue(value instanceof Data ? value.array : value, this.dtype, o.forceCast === true, 'Data.set value', scalar ? undefined : target);
    const all = viewOf(this.dtype, this.buffer, this.size);
    const rowSize = sizeOf(rowShape);
    if (sel.kind === 'list') {
      sel.indices.forEach((r, i) => {
        if (scalar) all.fill(src.data[0]!, r * rowSize, (r + 1) * rowSize);
        else all.set(src.data.subarray(i * rowSize, (i + 1) * rowSize), r * rowSize);
      });
      return;
    }
    const start = (sel.kind === 'row' ? sel.row : sel.start) * rowSize;
    if (scalar) all.fill(src.data[0]!, start, start + count * rowSize);
    else all.set(src.data, start);
  }

  /** Replaces the value (same ndim; cast into the dtype); reallocates only if it does not fit. */
  setValue(value: unknown, options?: SetValueOptions): void {
    const o = checkOptions(options, ['forceCast', 'oversize'], 'Data.setValue options');
    const src = conditionValue(value instanceof Data ? value.array : value, this.dtype, o.forceCast === true, 'Data.setValue value');
    if (src.ndim !== this.ndim) {
      throw new RangeError(`Data.setValue value: expected ${this.ndim} dimensions (the Data's ndim is fixed), got shape ${shapeToString(src.shape)}`);
    }
    if (src.size > this.reserved) this.reallocate(src.size, (o.oversize as number | undefined) ?? this.oversize, 0, 'Data.setValue');
    viewOf(this.dtype, this.buffer, src.size).set(src.data);
    this.dims = [...src.shape];
  }

  /** Changes the number of rows, keeping the first ones; new rows are zero. */
  setLength(length: number): void {
    if (this.ndim === 0) throw new RangeError('Data.setLength: a 0-d Data has no rows');
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`Data.setLength length: expected an integer >= 0, got ${describe(length)}`);
    this.resize([length, ...this.dims.slice(1)], 'Data.setLength');
  }

  /** Changes the shape (same ndim); elements keep their flat order, new ones are zero. */
  setShape(shape: Shape): void {
    const s = assertShape(shape, 'Data.setShape shape');
    if (s.length !== this.ndim) {
      throw new RangeError(`Data.setShape shape: expected ${this.ndim} dimensions (the Data's ndim is fixed), got ${shapeToString(s)}`);
    }
    this.resize(s, 'Data.setShape');
  }

  /** Releases the shared memory (length becomes 0; a 0-d Data keeps its one element). */
  freeMemory(): void {
    if (this.ndim === 0) return;
    const old = this.buffer;
    this.buffer = allocate(this.dtype, 0, 'Data.freeMemory');
    this.dims = [0, ...this.dims.slice(1)];
    this.reserved = 0;
    this.ver++;
    released(this.id, old);
  }

  /** Bytes of shared memory this Data holds (its reserved elements). */
  get byteLength(): number {
    return this.buffer.byteLength;
  }

  /** A structured-cloneable description for workers (see dataView and gatherRows). */
  handle(): DataHandle {
    return { id: this.id, version: this.ver, buffer: this.buffer, dtype: this.dtype, shape: [...this.dims], minibatch: this.minibatch, name: this.name };
  }

  private resize(shape: number[], what: string): void {
    const size = sizeOf(shape);
    const old = this.size;
    if (size > this.reserved) this.reallocate(size, this.oversize, old, what);
    else if (size > old) viewOf(this.dtype, this.buffer, size).fill(0, old);
    this.dims = shape;
  }

  /** Moves to a new buffer of ceil(size * oversize) elements, keeping the first `keep` elements. */
  private reallocate(size: number, oversize: number, keep: number, what: string): void {
    const reserved = Math.ceil(size * oversize);
    const buffer = allocate(this.dtype, reserved, what);
    if (keep > 0) viewOf(this.dtype, buffer, keep).set(viewOf(this.dtype, this.buffer, keep));
    const old = this.buffer;
    this.buffer = buffer;
    this.reserved = reserved;
    this.ver++;
    released(this.id, old);
  }
}

function inferDType(value: unknown): DType {
  if (value instanceof NDArray) return value.dtype;
  return NDArray.from(value, { what: 'data value' }).dtype;
}

function gatherInto(src: NDArray, rows: Int32Array): NDArray {
  const rowShape = src.shape.slice(1);
  const rowSize = sizeOf(rowShape);
  const out = new NDArray(src.dtype, [rows.length, ...rowShape]);
  rows.forEach((r, i) => out.data.set(src.data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return out;
}

function checkHandle(handle: unknown, what: string): DataHandle {
  const h = handle as DataHandle;
  if (typeof handle !== 'object' || handle === null || !(h.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(`${what}: expected a DataHandle (from Data.handle()), got ${describe(handle)}`);
  }
  assertDType(h.dtype, `${what}.dtype`);
  const shape = assertShape(h.shape, `${what}.shape`);
  const bytes = sizeOf(shape) * bytesPerElement(h.dtype);
  if (bytes > h.buffer.byteLength) {
    throw new RangeError(`${what}: shape ${shapeToString(shape)} needs ${bytes} bytes, the buffer has ${h.buffer.byteLength}`);
  }
  return h;
}

/** The NDArray a handle describes, as a view of the shared buffer (no copy). */
export function dataView(handle: DataHandle): NDArray {
  const h = checkHandle(handle, 'dataView handle');
  return new NDArray(h.dtype, h.shape, viewOf(h.dtype, h.buffer, sizeOf(h.shape)));
}

/**
 * Rows of a handle's data: `{ start, stop }` (or a range {@link Rows}) gives a view (no copy); an Int32Array of row
 * indices (absolute, in [0, length); or a list {@link Rows}) gives a copy, written into `out` when given (shape [k, ...row]).
 */
export function gatherRows(handle: DataHandle, rows: Rows | Int32Array | { start: number; stop: number }, out?: NDArray): NDArray {
  const h = checkHandle(handle, 'gatherRows handle');
  const dims = [...h.shape];
  if (dims.length === 0) throw new RangeError('gatherRows: a 0-d Data has no rows');
  const sel = resolveRows(rows, dims, 'gatherRows rows');
  // A number[] has no view and is refused there, as before: workers pass Int32Arrays or Rows.
  if (sel.kind !== 'list' || Array.isArray(rows)) return rowView(h.dtype, h.buffer, dims, sel);
  const src = new NDArray(h.dtype, dims, viewOf(h.dtype, h.buffer, sizeOf(dims)));
  if (out === undefined) return gatherInto(src, sel.indices);
  const want = [sel.indices.length, ...dims.slice(1)];
  if (!(out instanceof NDArray) || out.dtype !== h.dtype || shapeToString(out.shape) !== shapeToString(want)) {
    throw new TypeError(`gatherRows out: expected an NDArray(${h.dtype}, ${shapeToString(want)}), got ${describe(out)}`);
  }
  const rowSize = sizeOf(dims.slice(1));
  sel.indices.forEach((r, i) => out.data.set(src.data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return out;
}
