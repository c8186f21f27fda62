// The T.* functions and Variable methods of the shape and indexing families: concatenate, stack,
// slicing (subtensor / x.get / x.slice), take, setSubtensor / incSubtensor, oneHot, zeros, ones,
// alloc, arange, repeat, tile.
import { type DType, FLOAT_X, assertDType, isInteger } from '../tensor/dtype.js';
import { NDArray, describe } from '../tensor/ndarray.js';
import { Variable, asVariable } from '../tensor/variable.js';
import { applyOp } from '../ops/apply.js';
import { OpTypeError, type IntArg } from '../ops/op.js';
import { shiftEntries, type IndexEntry } from '../ops/indexing.js';
import * as B from './build.js';
import type { TensorLike } from './build.js';

/** An integer known now, or an int32/uint8 scalar variable (read at run time). */
export type IntLike = number | Variable;
/** A slice bound: an integer (negative counts from the end), an int scalar variable, or null / undefined for the end. */
export type SliceBound = IntLike | null | undefined;
/** [start, stop, step] or { start, stop, step }; omitted / null parts as in Python. */
export type SliceSpec =
  readonly [SliceBound?, SliceBound?, SliceBound?] | { readonly start?: SliceBound; readonly stop?: SliceBound; readonly step?: SliceBound };
/**
 * One axis of an index: an integer (drops the axis), a slice, null / undefined (the whole axis), or an
 * integer array variable (integer-array indexing; then every other entry must be a whole axis).
 */
export type Index = IntLike | SliceSpec | null | undefined | NDArray;

function isArrayIndex(e: unknown): e is Variable | NDArray {
  return (e instanceof Variable && e.ndim > 0) || e instanceof NDArray;
}

/** Turns user index entries into op entries plus the int scalar variables they read. */
function parseIndex(op: string, x: Variable, index: readonly Index[], firstInput: number): { entries: IndexEntry[]; inputs: Variable[] } {
  const inputs: Variable[] = [];
  const arg = (v: SliceBound, axis: number): IntArg | null => {
    if (v === null || v === undefined) return null;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new TypeError(`${op}: index ${v} on axis ${axis} is not an integer`);
      return v;
    }
    if (v instanceof Variable) {
      if (v.ndim !== 0 || !isInteger(v.dtype))
        throw new TypeError(`${op}: a symbolic index on axis ${axis} must be an int32 or uint8 scalar, got ${v.label()}`);
      const k = inputs.indexOf(v);
      if (k >= 0) return { input: firstInput + k };
      inputs.push(v);
      return { input: firstInput + inputs.length - 1 };
    }
    throw new TypeError(`${op}: index on axis ${axis} must be an integer, an int scalar variable or null, got ${describe(v)}`);
  };
  if (index.length > x.ndim) throw new OpTypeError(op, [x.type], `too many indices: ${index.length} entries for ndim ${x.ndim}`);
  const entries = index.map((e, axis): IndexEntry => {
    if (e === null || e === undefined) return { kind: 'slice', start: null, stop: null, step: null };
    if (typeof e === 'number' || e instanceof Variable) return { kind: 'index', index: arg(e, axis)! };
    if (Array.isArray(e)) {
      if (e.length > 3) throw new TypeError(`${op}: slice on axis ${axis} has ${e.length} parts; expected [start, stop, step]`);
      return { kind: 'slice', start: arg(e[0], axis), stop: arg(e[1], axis), step: arg(e[2], axis) };
    }
    if (typeof e === 'object' && !(e instanceof NDArray)) {
      const s = e as { readonly start?: SliceBound; readonly stop?: SliceBound; readonly step?: SliceBound };
      return { kind: 'slice', start: arg(s.start, axis), stop: arg(s.stop, axis), step: arg(s.step, axis) };
    }
    throw new TypeError(`${op}: bad index on axis ${axis}: ${describe(e)}`);
  });
  return { entries, inputs };
}

const isWhole = (e: Index): boolean => e === null || e === undefined || (Array.isArray(e) && e.every((p) => p === null || p === undefined));

/**
 * Basic indexing, as x[...] in NumPy: per axis an integer (negative counts from the end; drops the
 * axis), a slice [start, stop, step] or { start, stop, step } (Python semantics, negative steps too),
 * or null for the whole axis; missing trailing axes are whole. Integers may be int scalar variables.
 * One integer-array entry (others whole) indexes that axis like take().
 */
export function subtensor(x: TensorLike, index: readonly Index[]): Variable {
  const v = asVariable(x, 'subtensor: x');
  if (!Array.isArray(index)) throw new TypeError(`subtensor: index must be an array of per-axis entries, got ${describe(index)}`);
  const arrays = index.map((e, i) => (isArrayIndex(e) ? i : -1)).filter((i) => i >= 0);
  if (arrays.length > 0) {
    if (arrays.length > 1 || index.some((e, i) => i !== arrays[0] && !isWhole(e))) {
      throw new TypeError('subtensor: an integer-array entry may only be combined with whole axes (null); apply the slices first, then take()');
    }
    return take(v, index[arrays[0]!] as Variable | NDArray, arrays[0]!);
  }
  const { entries, inputs } = parseIndex('subtensor', v, index, 1);
  return applyOp('subtensor', [v, ...inputs], { entries });
}

function indicesOf(op: string, indices: TensorLike): Variable {
  if (indices instanceof Variable) return indices;
  const nd = NDArray.from(indices, { what: `${op}: indices` });
  if (!isInteger(nd.dtype) && !Array.from(nd.data).every((d) => Number.isInteger(d))) throw new TypeError(`${op}: indices must be integers`);
  return B.constant(nd.dtype === 'uint8' || nd.dtype === 'int32' ? nd : nd.astype('int32'));
}

/** Integer-array indexing along an axis (NumPy's take); no axis: of the flattened x. Negative indices wrap. */
export function take(x: TensorLike, indices: TensorLike, axis?: number | null): Variable {
  let v = asVariable(x, 'take: x');
  if (axis === undefined || axis === null) {
    v = B.flatten(v);
    axis = 0;
  }
  if (!Number.isInteger(axis) || axis < -v.ndim || axis >= v.ndim) throw new OpTypeError('take', [v.type], `axis ${axis} is out of range for ndim ${v.ndim}`);
  return applyOp('take', [v, indicesOf('take', indices)], { axis: axis < 0 ? axis + v.ndim : axis });
}

function update(op: 'setSubtensor' | 'incSubtensor', xSliced: Variable, y: TensorLike): Variable {
  const owner = xSliced instanceof Variable ? xSliced.owner : null;
  if (!owner || (owner.op !== 'subtensor' && owner.op !== 'take')) {
    throw new TypeError(
      `${op}: the first argument must be the result of a slicing or take expression (x.get(...), x.slice(...), x.take(...)), ` +
        `got ${xSliced instanceof Variable ? xSliced.label() : describe(xSliced)}`,
    );
  }
  const base = owner.inputs[0]!;
  const value = asVariable(y, `${op}: y`, base.dtype);
  const set = op === 'setSubtensor';
  if (owner.op === 'take') return applyOp('incTake', [base, value, owner.inputs[1]!], { axis: owner.attrs['axis'] as number, set });
  const entries = shiftEntries(owner.attrs['entries'] as readonly IndexEntry[], 1);
  return applyOp('incSubtensor', [base, value, ...owner.inputs.slice(1)], { entries, set });
}

/**
 * Theano's set_subtensor: given `x.get(...)` (or `x.take(...)`), a new x whose selected region is
 * replaced by y (broadcast to the region). Functional: x itself is not changed.
 */
export const setSubtensor = (xSliced: Variable, y: TensorLike): Variable => update('setSubtensor', xSliced, y);
/** Theano's inc_subtensor: like setSubtensor, adding y to the region (repeated take indices accumulate). */
export const incSubtensor = (xSliced: Variable, y: TensorLike): Variable => update('incSubtensor', xSliced, y);

function wrapList(op: string, list: readonly TensorLike[]): Variable[] {
  if (!Array.isArray(list) || list.length === 0) throw new TypeError(`${op}: expected a non-empty array of tensors, got ${describe(list)}`);
  let like: DType | undefined;
  for (const a of list) if (a instanceof Variable) like = like === undefined ? a.dtype : like === 'float64' || a.dtype === 'float64' ? 'float64' : like;
  return list.map((a, i) => asVariable(a, `${op}: tensor ${i}`, like));
}

/** Joins tensors along an existing axis (default 0). */
export function concatenate(list: readonly TensorLike[], axis = 0): Variable {
  const vs = wrapList('concatenate', list);
  const ndim = vs[0]!.ndim;
  if (ndim > 0 && (!Number.isInteger(axis) || axis < -ndim || axis >= ndim))
    throw new OpTypeError(
      'concatenate',
      vs.map((v) => v.type),
      `axis ${axis} is out of range for ndim ${ndim}`,
    );
  return applyOp('concatenate', vs, { axis: axis < 0 ? axis + ndim : axis });
}

/** Joins tensors of equal shape along a new axis (default 0). */
export function stack(list: readonly TensorLike[], axis = 0): Variable {
  const vs = wrapList('stack', list);
  const ndim = vs[0]!.ndim;
  const types = vs.map((v) => v.type);
  if (vs.some((v) => v.ndim !== ndim)) throw new OpTypeError('stack', types, 'all inputs must have the same ndim');
  if (!Number.isInteger(axis) || axis < -(ndim + 1) || axis > ndim) throw new OpTypeError('stack', types, `axis ${axis} is out of range for ndim ${ndim + 1}`);
  const a = axis < 0 ? axis + ndim + 1 : axis;
  return applyOp(
    'concatenate',
    vs.map((v) => B.expandDims(v, a)),
    { axis: a },
  );
}

function dimsOf(op: string, shape: IntLike | readonly IntLike[]): readonly IntLike[] {
  const dims = typeof shape === 'number' || shape instanceof Variable ? [shape] : shape;
  if (!Array.isArray(dims)) throw new TypeError(`${op}: shape must be an array of integers or int scalar variables, got ${describe(shape)}`);
  dims.forEach((d, i) => {
    if (typeof d === 'number' && d < 0) throw new TypeError(`${op}: dimension ${i} is negative (${d})`);
  });
  return dims;
}

/** Theano's alloc: `value` broadcast to the shape `dims` (numbers or int scalar variables). */
export function alloc(value: TensorLike, ...dims: (IntLike | readonly IntLike[])[]): Variable {
  const flat = dims.length === 1 && Array.isArray(dims[0]) ? dimsOf('alloc', dims[0]) : dimsOf('alloc', dims as IntLike[]);
  const v = asVariable(value, 'alloc: value');
  const { args, inputs } = B.intArgs('alloc', flat, 1);
  return applyOp('alloc', [v, ...inputs], { dims: args });
}

/** An array of zeros of the given shape (numbers or int scalar variables). */
export function zeros(shape: IntLike | readonly IntLike[], dtype: DType = FLOAT_X): Variable {
  return alloc(B.constant(0, { dtype: assertDType(dtype, 'zeros: dtype') }), dimsOf('zeros', shape));
}

/** An array of ones of the given shape (numbers or int scalar variables). */
export function ones(shape: IntLike | readonly IntLike[], dtype: DType = FLOAT_X): Variable {
  return alloc(B.constant(1, { dtype: assertDType(dtype, 'ones: dtype') }), dimsOf('ones', shape));
}

/**
 * NumPy's arange: arange(stop), arange(start, stop), arange(start, stop, step). Arguments are numbers
 * or int scalar variables; dtype defaults to int32 when every number is an integer, else floatX.
 */
export function arange(start: IntLike, stop?: IntLike | DType | null, step?: IntLike | null, dtype?: DType): Variable {
  if (typeof stop === 'string') {
    dtype = stop;
    stop = undefined;
  }
  const [a, b, s] = stop === undefined || stop === null ? [0, start, step ?? 1] : [start, stop, step ?? 1];
  const inputs: Variable[] = [];
  const arg = (v: IntLike, what: string): IntArg => {
    if (typeof v === 'number') return v;
    if (v instanceof Variable && v.ndim === 0 && isInteger(v.dtype)) {
      inputs.push(v);
      return { input: inputs.length - 1 };
    }
    throw new TypeError(`arange: ${what} must be a number or an int scalar variable, got ${v instanceof Variable ? v.label() : describe(v)}`);
  };
  const attrs = { start: arg(a, 'start'), stop: arg(b, 'stop'), step: arg(s, 'step') };
  const allInt = [a, b, s].every((v) => typeof v !== 'number' || Number.isInteger(v));
  const dt = dtype === undefined ? (allInt ? 'int32' : FLOAT_X) : assertDType(dtype, 'arange: dtype');
  return applyOp('arange', inputs, { ...attrs, dtype: dt });
}

/** One-hot rows: a new last axis of size n holding 1 at each (int) index; dtype defaults to floatX. */
export function oneHot(indices: TensorLike, n: IntLike, dtype: DType = FLOAT_X): Variable {
  const idx = indicesOf('oneHot', indices);
  const { args, inputs } = B.intArgs('oneHot', [n], 1);
  return applyOp('oneHot', [idx, ...inputs], { n: args[0]!, dtype: assertDType(dtype, 'oneHot: dtype') });
}

/** Repeats each element `repeats` times along an axis; no axis: of the flattened x (NumPy's repeat). */
export function repeat(x: TensorLike, repeats: number, axis?: number | null): Variable {
  let v = asVariable(x, 'repeat: x');
  if (axis === undefined || axis === null) {
    v = B.flatten(v);
    axis = 0;
  }
  if (!Number.isInteger(axis) || axis < -v.ndim || axis >= v.ndim) throw new OpTypeError('repeat', [v.type], `axis ${axis} is out of range for ndim ${v.ndim}`);
  return applyOp('repeat', [v], { repeats, axis: axis < 0 ? axis + v.ndim : axis });
}

/** NumPy's tile: reps shorter than ndim are padded with leading 1s; longer ones add leading axes to x. */
export function tile(x: TensorLike, reps: number | readonly number[]): Variable {
  let v = asVariable(x, 'tile: x');
  if (typeof reps !== 'number' && !Array.isArray(reps)) throw new TypeError(`tile: reps must be an integer or an array of integers, got ${describe(reps)}`);
  const list = typeof reps === 'number' ? [reps] : [...reps];
  if (list.length > v.ndim) v = B.dimshuffle(v, [...new Array<'x'>(list.length - v.ndim).fill('x'), ...v.broadcastable.map((_, i) => i)]);
  const full = [...new Array<number>(v.ndim - list.length).fill(1), ...list];
  return applyOp('tile', [v], { reps: full });
}

// ---- methods ----------------------------------------------------------------------------------

declare module '../tensor/variable.js' {
  interface Variable {
    /** Basic indexing x[e0, e1, ...]: see T.subtensor. */
    get(...index: Index[]): Variable;
    /** Same as get(...). */
    slice(...index: Index[]): Variable;
    take(indices: TensorLike, axis?: number | null): Variable;
    repeat(repeats: number, axis?: number | null): Variable;
    tile(reps: number | readonly number[]): Variable;
  }
}

Object.assign(Variable.prototype, {
  get(this: Variable, ...index: Index[]) {
    return subtensor(this, index);
  },
  slice(this: Variable, ...index: Index[]) {
    return subtensor(this, index);
  },
  take(this: Variable, indices: TensorLike, axis?: number | null) {
    return take(this, indices, axis);
  },
  repeat(this: Variable, repeats: number, axis?: number | null) {
    return repeat(this, repeats, axis);
  },
  tile(this: Variable, reps: number | readonly number[]) {
    return tile(this, reps);
  },
});
