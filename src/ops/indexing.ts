// Indexing: basic slicing (subtensor), integer-array indexing on one axis (take), and their
// functional updates (incSubtensor / incTake with `set` for Theano's set_subtensor).
import { NDArray, shapeToString, sizeOf, stridesOf, type Shape } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { canUpcast, castScalar, isFloat, isInteger, type DType } from '../tensor/dtype.js';
import { OpTypeError, OpRuntimeError, resolveIntArg, type IntArg, type OpDef } from './op.js';
import { forEachBroadcast } from './broadcast.js';

/** One per-axis entry of a subtensor: an integer (drops the axis) or a Python slice (null = omitted). */
export type IndexEntry =
  | { readonly kind: 'index'; readonly index: IntArg }
  | { readonly kind: 'slice'; readonly start: IntArg | null; readonly stop: IntArg | null; readonly step: IntArg | null };

export type SubtensorAttrs = { readonly entries: readonly IndexEntry[] };
export type IncSubtensorAttrs = { readonly entries: readonly IndexEntry[]; readonly set: boolean };
export type TakeAttrs = { readonly axis: number };
export type IncTakeAttrs = { readonly axis: number; readonly set: boolean };

// ---- build-time rules -------------------------------------------------------------------------

const intArgsOf = (e: IndexEntry): (IntArg | null)[] => (e.kind === 'index' ? [e.index] : [e.start, e.stop, e.step]);

/** Renumbers the symbolic arguments of entries by `delta` input positions. */
export function shiftEntries(entries: readonly IndexEntry[], delta: number): IndexEntry[] {
  const s = (a: IntArg | null): IntArg | null => (a === null || typeof a === 'number' ? a : { input: a.input + delta });
  return entries.map((e) => (e.kind === 'index'
    ? { kind: 'index', index: s(e.index)! }
    : { kind: 'slice', start: s(e.start), stop: s(e.stop), step: s(e.step) }));
}

function isFullSlice(e: IndexEntry): boolean {
  return e.kind === 'slice' && (e.start === null || e.start === 0) && e.stop === null && (e.step === null || e.step === 1);
}

function checkEntries(op: string, inputs: readonly TensorType[], entries: readonly IndexEntry[], firstInt: number): void {
  const x = inputs[0]!;
  if (!Array.isArray(entries)) throw new OpTypeError(op, inputs, 'entries must be an array');
  if (entries.length > x.ndim) throw new OpTypeError(op, inputs, `too many indices: ${entries.length} entries for ndim ${x.ndim}`);
  entries.forEach((e, axis) => {
    for (const a of intArgsOf(e)) {
      if (a === null) continue;
      if (typeof a === 'number') {
        if (!Number.isInteger(a)) throw new OpTypeError(op, inputs, `index ${a} on axis ${axis} is not an integer`);
        continue;
      }
      const t = inputs[a.input];
      if (a.input < firstInt || t === undefined) throw new OpTypeError(op, inputs, `entry on axis ${axis} refers to missing input ${a.input}`);
      if (t.ndim !== 0 || !isInteger(t.dtype)) throw new OpTypeError(op, inputs, `symbolic index on axis ${axis} must be an int32 or uint8 scalar, got ${t}`);
    }
    if (e.kind === 'slice' && e.step === 0) throw new OpTypeError(op, inputs, `slice step on axis ${axis} cannot be zero`);
    if (e.kind === 'index' && typeof e.index === 'number' && x.broadcastable[axis] && e.index !== 0 && e.index !== -1) {
      throw new OpTypeError(op, inputs, `index ${e.index} is out of range for broadcastable (size 1) axis ${axis}`);
    }
  });
}

/** Kept axes: those without an integer entry; full slices keep the broadcastable flag. */
function subtensorPattern(x: TensorType, entries: readonly IndexEntry[]): boolean[] {
  const out: boolean[] = [];
  x.broadcastable.forEach((b, axis) => {
    const e = entries[axis];
    if (e === undefined || isFullSlice(e)) out.push(b);
    else if (e.kind === 'slice') out.push(false);
  });
  return out;
}

function checkValue(op: string, inputs: readonly TensorType[], regionNdim: number): void {
  const [x, y] = inputs as [TensorType, TensorType];
  if (y.ndim > regionNdim) throw new OpTypeError(op, inputs, `y has ndim ${y.ndim}, more than the selected region (ndim ${regionNdim})`);
  if (!canUpcast(y.dtype, x.dtype) && !(isFloat(y.dtype) && isFloat(x.dtype))) {
    throw new OpTypeError(op, inputs, `y of dtype ${y.dtype} cannot be stored into ${x.dtype} without a down-cast; cast it explicitly`);
  }
}

function checkTake(op: string, inputs: readonly TensorType[], axis: number, indicesAt: number): TensorType {
  const x = inputs[0]!;
  const idx = inputs[indicesAt];
  if (idx === undefined) throw new OpTypeError(op, inputs, 'missing indices input');
  if (x.ndim === 0) throw new OpTypeError(op, inputs, 'cannot index a 0-d tensor along an axis');
  if (!Number.isInteger(axis) || axis < 0 || axis >= x.ndim) throw new OpTypeError(op, inputs, `axis ${axis} is out of range for ndim ${x.ndim}`);
  if (!isInteger(idx.dtype)) throw new OpTypeError(op, inputs, `indices must be an integer tensor (int32 or uint8), got ${idx}`);
  const b = x.broadcastable;
  return new TensorType(x.dtype, [...b.slice(0, axis), ...idx.broadcastable, ...b.slice(axis + 1)]);
}

// ---- run-time helpers -------------------------------------------------------------------------

/** One axis of a basic slice: first index, step and length, and whether the axis is kept. */
export interface AxisPlan { readonly start: number; readonly step: number; readonly length: number; readonly keep: boolean }

/** Python's slice.indices(dim) followed by the slice length. */
export function pySlice(dim: number, start: number | null, stop: number | null, step: number | null): { start: number; step: number; length: number } {
  const st = step ?? 1;
  const neg = st < 0;
  const lower = neg ? -1 : 0;
  const upper = neg ? dim - 1 : dim;
  const clamp = (v: number | null, dflt: number): number => (v === null ? dflt : v < 0 ? Math.max(v + dim, lower) : Math.min(v, upper));
  const s = clamp(start, neg ? upper : lower);
  const e = clamp(stop, neg ? lower : upper);
  const length = neg ? (s > e ? Math.ceil((s - e) / -st) : 0) : e > s ? Math.ceil((e - s) / st) : 0;
  return { start: s, step: st, length };
}

/** The per-axis plan of a subtensor of an array of `shape` (the CPU device's subtensor kernel uses it too). */
export function planOf(op: string, shape: Shape, entries: readonly IndexEntry[], inputs: readonly NDArray[]): AxisPlan[] {
  const r = (a: IntArg | null): number | null => (a === null ? null : resolveIntArg(a, inputs));
  return shape.map((dim, axis): AxisPlan => {
    const e = entries[axis];
    if (e === undefined) return { start: 0, step: 1, length: dim, keep: true };
    if (e.kind === 'index') {
      const i = r(e.index)!;
      const j = i < 0 ? i + dim : i;
      if (j < 0 || j >= dim) throw new OpRuntimeError(op, `index ${i} is out of range for axis ${axis} of size ${dim} (shape ${shapeToString(shape)})`);
      return { start: j, step: 1, length: 1, keep: false };
    }
    const step = r(e.step);
    if (step === 0) throw new OpRuntimeError(op, `slice step on axis ${axis} is zero`);
    return { ...pySlice(dim, r(e.start), r(e.stop), step), keep: true };
  });
}

/** Flat offsets into an array of `shape` of every element of the region, in row-major order. */
function regionOffsets(shape: Shape, plan: readonly AxisPlan[]): Float64Array {
  const lens = plan.map((p) => p.length);
  const out = new Float64Array(sizeOf(lens));
  if (out.length === 0) return out;
  const strides = stridesOf(shape);
  const steps = plan.map((p, i) => p.step * strides[i]!);
  let offset = plan.reduce((acc, p, i) => acc + p.start * strides[i]!, 0);
  const counter = new Array<number>(lens.length).fill(0);
  for (let k = 0; k < out.length; k++) {
    out[k] = offset;
    for (let ax = lens.length - 1; ax >= 0; ax--) {
      counter[ax]!++;
      offset += steps[ax]!;
      if (counter[ax]! < lens[ax]!) break;
      offset -= steps[ax]! * lens[ax]!;
      counter[ax] = 0;
    }
  }
  return out;
}

function subtensorRegion(op: string, x: NDArray, entries: readonly IndexEntry[], inputs: readonly NDArray[]): { offsets: Float64Array; shape: number[] } {
  const plan = planOf(op, x.shape, entries, inputs);
  return { offsets: regionOffsets(x.shape, plan), shape: plan.filter((p) => p.keep).map((p) => p.length) };
}

function takeRegion(op: string, x: NDArray, idx: NDArray, axis: number): { offsets: Float64Array; shape: number[] } {
  const n = x.shape[axis]!;
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis + 1));
  const norm = new Float64Array(idx.size);
  for (let k = 0; k < idx.size; k++) {
    const i = idx.data[k]!;
    const j = i < 0 ? i + n : i;
    if (j < 0 || j >= n)
      throw new OpRuntimeError(op, `index ${i} (at position ${k} of the indices) is out of range for axis ${axis} of size ${n} `
        + `(shape ${shapeToString(x.shape)})`);
    norm[k] = j;
  }
  const offsets = new Float64Array(outer * idx.size * inner);
  let o = 0;
  for (let p = 0; p < outer; p++) for (let k = 0; k < idx.size; k++) {
    const base = (p * n + norm[k]!) * inner;
    for (let q = 0; q < inner; q++) offsets[o++] = base + q;
  }
  return { offsets, shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)] };
}

/**
 * A basic slice as block copies: the trailing full axes and the last sliced axis (when its step is 1)
 * form contiguous runs, copied with TypedArray.set instead of element by element. Into `into` when
 * given (the CPU device's pooled output, of the region's shape and x's dtype).
 */
export function copyRuns(x: NDArray, plan: readonly AxisPlan[], into?: NDArray): NDArray {
  const out = into ?? new NDArray(x.dtype, plan.filter((p) => p.keep).map((p) => p.length));
  if (out.size === 0) return out;
  const strides = stridesOf(x.shape);
  let k = plan.length; // axes k.. are whole
  while (k > 0) {
    const p = plan[k - 1]!;
    if (p.start === 0 && p.step === 1 && p.length === x.shape[k - 1]) k--;
    else break;
  }
  let run: number;
  let outer: number;
  if (k === 0) { run = x.size; outer = 0; }
  else if (plan[k - 1]!.step === 1) { run = plan[k - 1]!.length * strides[k - 1]!; outer = k - 1; }
  else { run = strides[k - 1]!; outer = k; }
  const lens = plan.slice(0, outer).map((p) => p.length);
  const steps = plan.slice(0, outer).map((p, i) => p.step * strides[i]!);
  let offset = plan.reduce((acc, p, i) => acc + p.start * strides[i]!, 0);
  const counter = new Array<number>(outer).fill(0);
  const src = x.data;
  const dst = out.data;
  for (let o = 0; o < out.size; o += run) {
    dst.set(src.subarray(offset, offset + run), o);
    for (let ax = outer - 1; ax >= 0; ax--) {
      counter[ax]!++;
      offset += steps[ax]!;
      if (counter[ax]! < lens[ax]!) break;
      offset -= steps[ax]! * lens[ax]!;
      counter[ax] = 0;
    }
  }
  return out;
}

function gather(x: NDArray, region: { offsets: Float64Array; shape: number[] }, dtype: DType): NDArray {
  const out = new NDArray(dtype, region.shape);
  const src = x.data;
  const exact = dtype === x.dtype || isFloat(dtype);
  for (let i = 0; i < out.size; i++) out.data[i] = exact ? src[region.offsets[i]!]! : castScalar(src[region.offsets[i]!]!, dtype);
  return out;
}

function scatter(op: string, x: NDArray, y: NDArray, region: { offsets: Float64Array; shape: number[] }, set: boolean, dtype: DType): NDArray {
  const rs = region.shape;
  const fits = y.ndim <= rs.length && y.shape.every((d, i) => d === 1 || d === rs[rs.length - y.ndim + i]);
  if (!fits)
    throw new OpRuntimeError(op, `y of shape ${shapeToString(y.shape)} does not broadcast to the selected region of shape ${shapeToString(rs)} `
      + `(x has shape ${shapeToString(x.shape)})`);
  const out = x.dtype === dtype ? x.copy() : x.astype(dtype);
  const d = out.data;
  const yd = y.data;
  const exact = isFloat(dtype);
  forEachBroadcast(rs, [y.shape], (i, off) => {
    const o = region.offsets[i]!;
    const v = set ? yd[off[0]!]! : d[o]! + yd[off[0]!]!;
    d[o] = exact ? v : castScalar(v, dtype);
  });
  return out;
}

// ---- ops --------------------------------------------------------------------------------------

export const indexingOps = {
  /** Basic indexing x[e0, e1, ...]: integers drop an axis, slices keep it; missing trailing entries mean all. */
  subtensor: {
    name: 'subtensor',
    inferType(inputs, attrs) {
      checkEntries('subtensor', inputs, attrs.entries, 1);
      return new TensorType(inputs[0]!.dtype, subtensorPattern(inputs[0]!, attrs.entries));
    },
    perform: (inputs, attrs, out) => {
      const x = inputs[0]!;
      if (out.dtype === x.dtype) return copyRuns(x, planOf('subtensor', x.shape, attrs.entries, inputs));
      return gather(x, subtensorRegion('subtensor', x, attrs.entries, inputs), out.dtype);
    },
  } satisfies OpDef<SubtensorAttrs>,

  /** A copy of x with the region x[entries] replaced by (set) or incremented by y, y broadcasting to the region. */
  incSubtensor: {
    name: 'incSubtensor',
    inferType(inputs, attrs) {
      checkEntries('incSubtensor', inputs, attrs.entries, 2);
      checkValue('incSubtensor', inputs, subtensorPattern(inputs[0]!, attrs.entries).length);
      return inputs[0]!;
    },
    perform(inputs, attrs, out) {
      const [x, y] = inputs as [NDArray, NDArray];
      return scatter('incSubtensor', x, y, subtensorRegion('incSubtensor', x, attrs.entries, inputs), attrs.set, out.dtype);
    },
  } satisfies OpDef<IncSubtensorAttrs>,

  /** Integer-array indexing along one axis (NumPy's take): negative indices wrap. */
  take: {
    name: 'take',
    inferType: (inputs, attrs) => checkTake('take', inputs, attrs.axis, 1),
    perform(inputs, attrs, out) {
      const [x, idx] = inputs as [NDArray, NDArray];
      return gather(x, takeRegion('take', x, idx, attrs.axis), out.dtype);
    },
  } satisfies OpDef<TakeAttrs>,

  /** A copy of x with x.take(indices, axis) replaced by (set) or incremented by y; repeated indices accumulate. */
  incTake: {
    name: 'incTake',
    inferType(inputs, attrs) {
      const region = checkTake('incTake', inputs, attrs.axis, 2);
      checkValue('incTake', inputs, region.ndim);
      return inputs[0]!;
    },
    perform(inputs, attrs, out) {
      const [x, y, idx] = inputs as [NDArray, NDArray, NDArray];
      return scatter('incTake', x, y, takeRegion('incTake', x, idx, attrs.axis), attrs.set, out.dtype);
    },
  } satisfies OpDef<IncTakeAttrs>,
};
