// Validation of a data-parallel call's arguments, before any worker is involved: which trailing
// object is the options, the inputs as Data of the declared types, and the row selections.
import { NDArray, describe, shapeToString } from '../tensor/ndarray.js';
import { canUpcast, type DType } from '../tensor/dtype.js';
import { conformValue } from '../tensor/conform.js';
import { Data, data as makeData } from './data.js';
import { splitPoints } from './split.js';
import { rowCount, type Rows } from '../devices/rows.js';

/** Rows along axis 0: the first n, a range, or a list of row indices. */
export type RowsSpec = number | { readonly start?: number; readonly stop?: number } | readonly number[] | Int32Array;

/** Options of a call of a data-parallel function, given after its inputs: `await f(x, y, { batch, numSlices })`. */
export interface CallOptions {
  /** The rows of the scattered inputs this call uses (split over the ranks in order). */
  batch?: RowsSpec;
  /** Rows of the sliceable shareds on every rank, or one selection per rank (no bare numbers there). */
  batchS?: RowsSpec | readonly Exclude<RowsSpec, number>[];
  /** Each rank computes its rows in this many slices and combines them (at most one per row). */
  numSlices?: number;
  /** Compute only these outputs (indices into the outputs list); the call returns a list. */
  outputSubset?: readonly number[];
}

export const CALL_OPTION_KEYS: readonly (keyof CallOptions)[] = ['batch', 'batchS', 'numSlices', 'outputSubset'];

/** An object literal (not an array, typed array, NDArray, Data or other class instance). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A `{ data, shape }` input (see tensor/conform.ts). */
export function isShapedInput(v: unknown): boolean {
  return isPlainObject(v) && 'data' in v && 'shape' in v;
}

/**
 * Checks an options argument: undefined or a plain object whose keys are all in `known`; each
 * unknown key is refused naming it and listing the known ones.
 */
export function checkOptions(options: unknown, known: readonly string[], what: string): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isPlainObject(options)) throw new TypeError(`${what}: expected an options object { ${known.join(', ')} }, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`${what}: unknown option '${key}'; known options are ${known.join(', ')}`);
  }
  return options;
}

export function checkBoolean(value: unknown, what: string): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${what}: expected a boolean, got ${describe(value)}`);
  return value;
}

/**
 * Separates a call's inputs from its trailing options. The last argument is the options when it is
 * a plain object (not `{ data, shape }`) whose keys are all option names, unless it is the only
 * argument and names every input (inputs by name win: an input may be called `batch`). A plain
 * object with other keys in the last place is refused naming the key, unless it is the only
 * argument and names an input (then it is inputs by name, checked below).
 */
export function splitCallArgs(given: readonly unknown[], names: readonly (string | undefined)[], what: string): { args: unknown[]; options: CallOptions } {
  const args = [...given];
  let options: CallOptions = {};
  const last = args[args.length - 1];
  if (args.length > 0 && isPlainObject(last) && !isShapedInput(last)) {
    const keys = Object.keys(last);
    const isInputName = (k: string) => names.includes(k);
    const byName = args.length === 1 && names.length > 0 && keys.some(isInputName);
    const namesEveryInput = byName && keys.every(isInputName) && names.every((n) => n !== undefined && keys.includes(n));
    const unknown = keys.filter((k) => !(CALL_OPTION_KEYS as readonly string[]).includes(k));
    if (unknown.length === 0 && !namesEveryInput) {
      options = args.pop() as CallOptions;
    } else if (!byName) {
      const named = names.filter((n): n is string => n !== undefined);
      const hint = args.length === 1 && named.length > 0 ? ` (to pass inputs by name, use ${named.join(', ')})` : '';
      throw new TypeError(`${what}: unknown option '${unknown[0]}' in the last argument; known options are ${CALL_OPTION_KEYS.join(', ')}${hint}`);
    }
  }
  if (args.length === 1 && names.length > 0 && isPlainObject(args[0]) && !isShapedInput(args[0])) {
    const named = args[0];
    const unknown = Object.keys(named).filter((k) => !names.includes(k));
    if (unknown.length) {
      const inputs = names.map((n, i) => n ?? `#${i}`).join(', ');
      throw new TypeError(`${what}: unknown input name(s) ${unknown.join(', ')}; inputs are ${inputs} (options go in a second argument)`);
    }
    return {
      args: names.map((n, i) => {
        if (n === undefined || !(n in named)) {
          throw new TypeError(`${what}: input ${i}${n !== undefined ? ` '${n}'` : ' (unnamed)'} is missing from the inputs by name`);
        }
        return named[n];
      }),
      options,
    };
  }
  return { args, options };
}

/** A Data of the declared dtype and ndim: given Data is used as is (or up-cast once), arrays are copied in once. */
export function asInputData(value: unknown, what: string, dtype: DType, broadcastable: readonly boolean[], scattered: boolean): Data {
  let d: Data;
  if (value instanceof Data) {
    d = value;
    if (d.dtype !== dtype) {
      if (!canUpcast(d.dtype, dtype)) {
        throw new TypeError(`${what}: expected dtype ${dtype} (or one that up-casts to it), got a Data of ${d.dtype}; `
          + `down-casts are refused (make the Data with dtype '${dtype}')`);
      }
      d = makeData(d.array.astype(dtype), { name: what });
    }
  } else {
    const known = value instanceof NDArray || ArrayBuffer.isView(value) || Array.isArray(value)
      || typeof value === 'number' || typeof value === 'boolean' || isShapedInput(value);
    if (!known) {
      throw new TypeError(`${what}: expected a synk.data(), an NDArray, a typed array, a nested array, a number or { data, shape }, got ${describe(value)}`);
    }
    // A call has no forceCast: say how to convert instead of pointing at an option it does not take.
    const typed = value instanceof NDArray ? value.dtype
      : ArrayBuffer.isView(value) && !(value instanceof DataView) ? NDArray.from(value, { what }).dtype : undefined;
    if (typed !== undefined && !canUpcast(typed, dtype)) {
      throw new TypeError(`${what}: expected dtype ${dtype} (or one that up-casts to it), got ${typed}; `
        + `down-casts are refused (convert it first, e.g. with .astype('${dtype}'))`);
    }
    d = makeData(conformValue(value, dtype, { what }), { name: what });
  }
  if (d.ndim !== broadcastable.length) throw new TypeError(`${what}: expected ndim ${broadcastable.length}, got shape ${shapeToString(d.shape)}`);
  // A scattered input's axis 0 is split over the ranks, so only the other axes are checked here.
  broadcastable.forEach((b, ax) => {
    if (b && !(scattered && ax === 0) && d.shape[ax] !== 1) {
      throw new TypeError(`${what}: axis ${ax} is broadcastable and must have size 1, got shape ${shapeToString(d.shape)}`);
    }
  });
  return d;
}

/** An integer row index in [0, length) (length undefined: only >= 0), or a TypeError naming position i. */
function rowIndex(v: unknown, length: number | undefined, what: string, i: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${what}: entry ${i} must be an integer row index, got ${describe(v)}`);
  if (v < 0 || (length !== undefined && v >= length)) throw new RangeError(`${what}: index ${v} at position ${i} is out of range for ${length ?? 'the'} rows`);
  return v;
}

/** A list of row indices: a number[] (no holes) or an Int32Array; other typed arrays are refused. */
function indexList(list: readonly unknown[] | Int32Array, length: number | undefined, what: string): Rows {
  const indices = new Int32Array(list.length);
  // An index loop, not forEach: a hole in the list is an error, not a skipped entry.
  for (let i = 0; i < list.length; i++) indices[i] = rowIndex(list[i], length, what, i);
  return { kind: 'list', indices };
}

function rangeOf(sel: Record<string, unknown>, length: number | undefined, what: string): Rows {
  const extra = Object.keys(sel).find((k) => k !== 'start' && k !== 'stop');
  if (extra !== undefined) throw new TypeError(`${what}: unknown key '${extra}' in { start, stop }`);
  for (const k of ['start', 'stop']) {
    const v = sel[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v))) throw new TypeError(`${what}.${k}: expected an integer, got ${describe(v)}`);
  }
  const start = (sel['start'] as number | undefined) ?? 0;
  const stop = (sel['stop'] as number | undefined) ?? length;
  if (stop === undefined) throw new TypeError(`${what}: { start, stop } needs stop here (the rows each rank holds are not known on the controller)`);
  if (start < 0 || start > stop || (length !== undefined && stop > length)) {
    const bound = length !== undefined ? ` <= ${length}` : '';
    throw new RangeError(`${what}: { start, stop } must satisfy 0 <= start <= stop${bound}, got { start: ${start}, stop: ${stop} }`);
  }
  return { kind: 'range', start, stop };
}

/** One row selection; `length` undefined when the rows are not known here (batchS). */
function selection(sel: unknown, length: number | undefined, what: string): Rows {
  if (typeof sel === 'number') {
    if (!Number.isInteger(sel) || sel < 0 || (length !== undefined && sel > length)) {
      throw new RangeError(`${what}: an integer n selects the first n rows and must be in [0, ${length ?? 'rows'}], got ${sel}`);
    }
    return { kind: 'range', start: 0, stop: sel };
  }
  if (sel instanceof Int32Array || Array.isArray(sel)) return indexList(sel as readonly unknown[] | Int32Array, length, what);
  if (isPlainObject(sel)) return rangeOf(sel, length, what);
  throw new TypeError(`${what}: expected an integer, { start, stop }, a number[] or an Int32Array of row indices, got ${describe(sel)}`);
}

/** The rows a `batch` option selects out of `length` (validated). */
export function resolveBatch(batch: unknown, length: number): Rows {
  if (batch === undefined) return { kind: 'range', start: 0, stop: length };
  return selection(batch, length, 'batch');
}

/**
 * The rows a call's `batch` selects, applied to every scattered input (minibatch Data is indexed
 * from 0). With only minibatch Data the data set's length is unknown: the batch just has to fit.
 */
export function scatteredSelection(scattered: readonly Data[], batch: unknown): Rows {
  const full = scattered.filter((d) => !d.minibatch);
  const length = full.length ? Math.min(...full.map((d) => d.length)) : Number.MAX_SAFE_INTEGER;
  if (batch === undefined && full.some((d) => d.length !== length)) {
    throw new RangeError(`scattered inputs have different lengths (${scattered.map((d) => d.length).join(', ')}); pass batch to select rows`);
  }
  const selection = resolveBatch(batch, length);
  const count = rowCount(selection);
  scattered.forEach((d, i) => {
    if (d.minibatch && d.length < count) throw new RangeError(`input ${i}: minibatch Data has ${d.length} rows, the batch needs ${count}`);
  });
  return selection;
}

/** One selection for every rank, or one per rank; numbers are not allowed as a per-rank entry. */
export function resolveBatchS(batchS: unknown, ranks: number): (Rows | null)[] {
  if (batchS === undefined) return new Array<Rows | null>(ranks).fill(null);
  const perRank = Array.isArray(batchS) && batchS.length > 0 && batchS.every((x) => typeof x === 'object' && x !== null);
  if (perRank) {
    if (batchS.length !== ranks) throw new RangeError(`batchS: one selection per rank needs ${ranks} entries, got ${batchS.length}`);
    return batchS.map((sel, r) => selection(sel, undefined, `batchS[${r}]`));
  }
  return new Array<Rows | null>(ranks).fill(selection(batchS, undefined, 'batchS'));
}

export function assertNumSlices(v: unknown): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`numSlices: expected an integer >= 1, got ${describe(v)}`);
  return v;
}

/** numSlices against the rows it slices: more slices than rows would only add empty slices. */
export function checkSlicesFit(numSlices: number, rows: number, what: string): void {
  if (numSlices > 1 && numSlices > rows) throw new RangeError(`numSlices: ${numSlices} slices for ${rows} ${what}; at most one slice per row`);
}

/** Distinct output indices in [0, nOutputs), given as a list without holes. */
export function checkOutputSubset(subset: unknown, nOutputs: number): readonly number[] | undefined {
  if (subset === undefined) return undefined;
  const entry = (k: unknown) => (typeof k === 'number' || k === undefined ? String(k) : describe(k));
  const shown = Array.isArray(subset) ? `[${Array.from(subset, entry).join(', ')}]` : describe(subset);
  const bad = () => new RangeError(`outputSubset: expected a list of distinct output indices in [0, ${nOutputs}), got ${shown}`);
  if (!Array.isArray(subset)) throw bad();
  const seen = new Set<number>();
  for (let i = 0; i < subset.length; i++) {
    const k: unknown = subset[i];
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= nOutputs || seen.has(k)) throw bad();
    seen.add(k);
  }
  return [...seen];
}

/** Whether some rank gets no rows when `length` rows are split over `ranks`. */
export function someRankEmpty(length: number, ranks: number): boolean {
  const p = splitPoints(length, ranks);
  return p.some((x, i) => i > 0 && x === p[i - 1]);
}
