// The T.* constructors and op functions of the core families (elementwise, reductions, structure).
import { type DType, FLOAT_X, assertDType } from '../tensor/dtype.js';
import { NDArray, describe } from '../tensor/ndarray.js';
import { conformValue } from '../tensor/conform.js';
import { refuseUnknownKeys } from '../tensor/options.js';
import { TensorType } from '../tensor/type.js';
import { Constant, SharedVariable, Variable, asVariable, type SharedOptions } from '../tensor/variable.js';
import { applyOp } from '../ops/apply.js';
import type { IntArg } from '../ops/op.js';
import { normalizeAxes } from '../ops/layout.js';
import type { BinaryOpName, UnaryOpName } from '../ops/elementwise.js';

/**
 * What the op functions accept: a symbolic variable, or a constant value (a number, boolean, {@link NDArray} or nested array)
 * that is wrapped as a {@link Constant}; plain numbers are weakly typed (`xInt32.add(1)` stays int32).
 */
export type TensorLike = Variable | number | boolean | NDArray | readonly unknown[];

// ---- variables -------------------------------------------------------------------------------

function typed(ndim: number) {
  return (name?: string, dtype: DType = FLOAT_X): Variable => new Variable(TensorType.ofNdim(assertDType(dtype, 'dtype'), ndim), null, name);
}
/** A new symbolic scalar input: `T.scalar(name?, dtype = 'float32')`. */
export const scalar = typed(0);
/** A new symbolic vector (1-d) input: `T.vector(name?, dtype = 'float32')`, e.g. `T.vector('labels', 'int32')`. */
export const vector = typed(1);
/** A new symbolic matrix (2-d) input: `T.matrix(name?, dtype = 'float32')`. */
export const matrix = typed(2);
/** A new symbolic 3-d input: `T.tensor3(name?, dtype = 'float32')`. */
export const tensor3 = typed(3);
/** A new symbolic 4-d input (e.g. NCHW images): `T.tensor4(name?, dtype = 'float32')`. */
export const tensor4 = typed(4);

/**
 * A new symbolic input of any rank: give `ndim`, or a `broadcastable` pattern (true marks an axis of size 1 that
 * broadcasts, as in Theano). The dtype defaults to float32.
 */
export function tensor(options: { dtype?: DType; ndim?: number; broadcastable?: readonly boolean[]; name?: string }): Variable {
  const dtype = assertDType(options.dtype ?? FLOAT_X, 'tensor: dtype');
  if (options.broadcastable) return new Variable(new TensorType(dtype, options.broadcastable), null, options.name);
  if (options.ndim === undefined || !Number.isInteger(options.ndim) || options.ndim < 0) {
    throw new TypeError(`tensor: expected ndim (a non-negative integer) or broadcastable, got ${describe(options.ndim)}`);
  }
  return new Variable(TensorType.ofNdim(dtype, options.ndim), null, options.name);
}

/** A constant in the graph, from a number, nested array, typed array or {@link NDArray} (copied), optionally cast to `dtype`. */
export function constant(value: unknown, options: { dtype?: DType; name?: string } = {}): Constant {
  return new Constant(NDArray.from(value, { ...(options.dtype ? { dtype: options.dtype } : {}), what: 'constant' }), options.name);
}

/**
 * A shared variable: a value that lives with the compiled functions between calls (parameters, state) and that
 * `updates` change. The value is copied; read it with `getValue()` and replace it with `setValue()`.
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 * const w = T.shared(new Float32Array([1, 2]), { name: 'w' });
 * const x = T.vector('x');
 * const f = T.fn({ inputs: [x], outputs: T.sum(x.mul(w)), updates: [[w, w.add(1)]] });
 * console.log((f([3, 4]) as T.NDArray).item(), w.getValue().toArray()); // 11 [2, 3]
 * ```
 */
export function shared(value: unknown, options: SharedOptions & { dtype?: DType; forceCast?: boolean } = {}): SharedVariable {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new TypeError(`shared: options must be an object, got ${describe(options)}`);
  refuseUnknownKeys(options, ['name', 'broadcastable', 'sharedId', 'dtype', 'forceCast'], 'shared');
  const { dtype, forceCast, ...sharedOptions } = options;
  // With a dtype, the one cast rule applies (no silent truncation); without, the value keeps its own.
  const nd =
    dtype !== undefined
      ? conformValue(value, assertDType(dtype, 'shared: dtype'), { what: 'shared', ...(forceCast === true ? { forceCast } : {}) })
      : NDArray.from(value, { what: 'shared' });
  return new SharedVariable(value instanceof NDArray && nd.data === value.data ? nd.copy() : nd, sharedOptions);
}

// ---- elementwise -----------------------------------------------------------------------------

function likeDtype(args: readonly unknown[]): DType | undefined {
  let best: DType | undefined;
  for (const a of args) if (a instanceof Variable) best = best === undefined ? a.dtype : best === 'float64' || a.dtype === 'float64' ? 'float64' : best;
  return best;
}

function wrapAll(op: string, args: readonly unknown[]): Variable[] {
  const like = likeDtype(args);
  return args.map((a, i) => asVariable(a, `${op}: argument ${i}`, like));
}

// The op names come from the op table: an elementwise op added there is typed here without a list to edit.
type Unary = UnaryOpName;
type Binary = BinaryOpName;

const un =
  (op: Unary) =>
  (x: TensorLike): Variable =>
    applyOp(op, wrapAll(op, [x]), {});
const bin =
  (op: Binary) =>
  (a: TensorLike, b: TensorLike): Variable =>
    applyOp(op, wrapAll(op, [a, b]), {});

/**
 * Elementwise functions of one tensor, each also a method (`x.exp()`): `neg` -x, `abs`, `sign` (-1, 0 or 1), `exp`,
 * `expm1` e^x - 1, `log` (natural), `log1p` log(1 + x), `sqrt`, `square`, `reciprocal` 1/x, `sin`, `cos`, `tanh`,
 * `sigmoid` 1/(1 + e^-x), `softplus` log(1 + e^x), `relu` max(x, 0), `erf`, `floor`, `ceil`, `round` (half to even,
 * as NumPy) and `not` (logical on bool, bitwise on integers). Integer inputs of the float functions give float results.
 */
export const neg = un('neg'),
  abs = un('abs'),
  sign = un('sign'),
  exp = un('exp'),
  expm1 = un('expm1'),
  log = un('log'),
  log1p = un('log1p'),
  sqrt = un('sqrt'),
  square = un('square'),
  reciprocal = un('reciprocal'),
  sin = un('sin'),
  cos = un('cos'),
  tanh = un('tanh'),
  sigmoid = un('sigmoid'),
  softplus = un('softplus'),
  relu = un('relu'),
  erf = un('erf'),
  floor = un('floor'),
  ceil = un('ceil'),
  round = un('round'),
  not = un('not');
/**
 * Elementwise functions of two tensors with NumPy broadcasting, each also a method (`a.add(b)`): `add`, `sub`, `mul`,
 * `div` (true division), `intDiv` (floor division), `mod` (sign of the divisor, as NumPy), `pow`, `maximum`, `minimum`,
 * the comparisons `eq neq lt le gt ge` (bool results), and `and or xor` (logical on bool, bitwise on integers).
 */
export const add = bin('add'),
  sub = bin('sub'),
  mul = bin('mul'),
  div = bin('div'),
  intDiv = bin('intDiv'),
  mod = bin('mod'),
  pow = bin('pow'),
  maximum = bin('maximum'),
  minimum = bin('minimum'),
  eq = bin('eq'),
  neq = bin('neq'),
  lt = bin('lt'),
  le = bin('le'),
  gt = bin('gt'),
  ge = bin('ge'),
  and = bin('and'),
  or = bin('or'),
  xor = bin('xor');

/** Theano's switch: elementwise choice between `a` (where cond) and `b`. */
export function where(cond: TensorLike, a: TensorLike, b: TensorLike): Variable {
  const [x, y] = wrapAll('where', [a, b]);
  return applyOp('where', [asVariable(cond, 'where: cond'), x!, y!], {});
}
/** Theano's name for {@link where}. */
export const switch_ = where;

/** Elementwise `min(max(x, lo), hi)`. */
export function clip(x: TensorLike, lo: TensorLike, hi: TensorLike): Variable {
  return applyOp('clip', wrapAll('clip', [x, lo, hi]), {});
}

/** Converts to `dtype` (the same variable when it already has it); `x.astype(dtype)` is the method form. */
export function cast(x: TensorLike, dtype: DType): Variable {
  const v = asVariable(x, 'cast: x');
  assertDType(dtype, 'cast: dtype');
  return v.dtype === dtype ? v : applyOp('cast', [v], { dtype });
}

// ---- reductions ------------------------------------------------------------------------------

/** Which axes a reduction runs over: one axis, a list, or all of them (null or left out). Negative axes count from the end. */
export type Axis = number | readonly number[] | null | undefined;

function axesOf(op: string, x: Variable, axis: Axis): number[] {
  const list = axis === null || axis === undefined ? x.type.broadcastable.map((_, i) => i) : typeof axis === 'number' ? [axis] : [...axis];
  for (const a of list) {
    if (!Number.isInteger(a) || a < -x.ndim || a >= x.ndim) throw new TypeError(`${op}: axis ${a} is out of range for ${x.label()} (ndim ${x.ndim})`);
  }
  const axes = normalizeAxes(list, x.ndim);
  if (axes.length !== list.length) throw new TypeError(`${op}: axes ${JSON.stringify(list)} repeat an axis`);
  return axes;
}

type ReduceName = 'sum' | 'prod' | 'mean' | 'max' | 'min' | 'all' | 'any' | 'argmax' | 'argmin' | 'logsumexp';
const red =
  (op: ReduceName) =>
  (x: TensorLike, axis?: Axis, keepdims = false): Variable => {
    const v = asVariable(x, `${op}: x`);
    return applyOp(op, [v], { axes: axesOf(op, v, axis), keepdims });
  };
/**
 * Reductions over `axis` (all axes when left out), keeping the reduced axes as size 1 when `keepdims`, each also a method
 * (`x.sum(0)`): `sum`, `prod`, `mean`, `max`, `min`, `all` and `any` (bool results), `argmax` and `argmin` (int32 index
 * along one axis), and `logsumexp` (log of the sum of exponentials, computed stably).
 */
export const sum = red('sum'),
  prod = red('prod'),
  mean = red('mean'),
  max = red('max'),
  min = red('min'),
  all = red('all'),
  any = red('any'),
  argmax = red('argmax'),
  argmin = red('argmin'),
  logsumexp = red('logsumexp');

/** The variance over `axis`, dividing by n - `ddof` (NumPy's var); the method is `x.var(axis, keepdims, ddof)`. */
export function variance(x: TensorLike, axis?: Axis, keepdims = false, ddof = 0): Variable {
  const v = asVariable(x, 'var: x');
  if (typeof ddof !== 'number' || !Number.isFinite(ddof)) throw new TypeError(`var: ddof must be a finite number, got ${describe(ddof)}`);
  return applyOp('var', [v], { axes: axesOf('var', v, axis), keepdims, ddof });
}
export { variance as var_ };
/** The standard deviation over `axis`: the square root of {@link variance}. */
export function std(x: TensorLike, axis?: Axis, keepdims = false, ddof = 0): Variable {
  return sqrt(variance(x, axis, keepdims, ddof));
}

// ---- structure ------------------------------------------------------------------------------

/** The symbolic shape: one int32 scalar per axis (so `x.shape[0]` is a scalar variable). */
export function shapeOf(x: TensorLike): Variable[] {
  const v = asVariable(x, 'shape: x');
  return v.type.broadcastable.map((_, axis) => applyOp('shapeI', [v], { axis }));
}

/** Splits a list of dims (numbers or int scalar variables) into attrs and extra inputs. */
export function intArgs(op: string, dims: readonly (number | Variable)[], firstInput: number): { args: IntArg[]; inputs: Variable[] } {
  const inputs: Variable[] = [];
  const args = dims.map((d, i): IntArg => {
    if (typeof d === 'number') {
      if (!Number.isInteger(d)) throw new TypeError(`${op}: dimension ${i} must be an integer, got ${d}`);
      return d;
    }
    if (d instanceof Variable) {
      if (d.ndim !== 0 || (d.dtype !== 'int32' && d.dtype !== 'uint8'))
        throw new TypeError(`${op}: dimension ${i} must be an integer scalar, got ${d.label()}`);
      inputs.push(d);
      return { input: firstInput + inputs.length - 1 };
    }
    throw new TypeError(`${op}: dimension ${i} must be a number or an int scalar variable, got ${describe(d)}`);
  });
  return { args, inputs };
}

/**
 * Gives `x` a new shape with the same number of elements; one dimension may be -1 (inferred) and dimensions may be
 * int scalar variables, such as `x.shape[0]`.
 */
export function reshape(x: TensorLike, dims: readonly (number | Variable)[]): Variable {
  const v = asVariable(x, 'reshape: x');
  if (!Array.isArray(dims)) throw new TypeError(`reshape: dims must be an array, got ${describe(dims)}`);
  const { args, inputs } = intArgs('reshape', dims, 1);
  return applyOp('reshape', [v, ...inputs], { dims: args });
}

/** Keeps the first `ndim - 1` axes and merges the rest into one: `flatten(x)` is a vector, `flatten(x, 2)` a matrix. */
export function flatten(x: TensorLike, ndim = 1): Variable {
  const v = asVariable(x, 'flatten: x');
  if (!Number.isInteger(ndim) || ndim < 1 || ndim > Math.max(1, v.ndim))
    throw new TypeError(`flatten: ndim must be in [1, ${Math.max(1, v.ndim)}], got ${ndim}`);
  const s = shapeOf(v);
  // The merged axis is the product of the trailing sizes, not -1: with a zero among the leading
  // axes, -1 would be ambiguous (NumPy refuses it) and a zero-row batch must keep its columns.
  const merged = s.slice(ndim - 1).reduce<Variable | number>((n, d) => (n === 1 ? d : mul(n, d)), 1);
  return reshape(v, [...s.slice(0, ndim - 1), merged]);
}

/**
 * Theano's dimshuffle: the result's axes are the listed input axes in order, with 'x' inserting a broadcastable axis
 * (`x.dimshuffle(1, 0)` transposes a matrix; `v.dimshuffle('x', 0)` makes a row). Only broadcastable axes may be dropped.
 */
export function dimshuffle(x: TensorLike, pattern: readonly (number | 'x')[]): Variable {
  const v = asVariable(x, 'dimshuffle: x');
  if (pattern.length === v.ndim && pattern.every((p, i) => p === i)) return v;
  return applyOp('dimshuffle', [v], { pattern: [...pattern] });
}

/** Permutes the axes (reverses them when `axes` is left out); `x.T` is the method form. */
export function transpose(x: TensorLike, axes?: readonly number[]): Variable {
  const v = asVariable(x, 'transpose: x');
  const perm = axes ? axes.map((a) => (a < 0 ? a + v.ndim : a)) : v.type.broadcastable.map((_, i) => v.ndim - 1 - i);
  if (perm.length !== v.ndim || [...perm].sort((a, b) => a - b).some((p, i) => p !== i))
    throw new TypeError(`transpose: axes ${JSON.stringify(axes)} is not a permutation of ${v.ndim} axes`);
  return dimshuffle(v, perm);
}

function checkAxes(op: string, axes: readonly number[], ndim: number): number[] {
  for (const a of axes) {
    if (!Number.isInteger(a) || a < -ndim || a >= ndim) throw new TypeError(`${op}: axis ${a} is out of range for ndim ${ndim}`);
  }
  const list = normalizeAxes(axes, ndim);
  if (list.length !== axes.length) throw new TypeError(`${op}: axes ${JSON.stringify(axes)} repeat an axis`);
  return list;
}

/** Inserts size-1 axes at the given positions of the result (NumPy's expand_dims). */
export function expandDims(x: TensorLike, axes: number | readonly number[]): Variable {
  const v = asVariable(x, 'expandDims: x');
  const given = typeof axes === 'number' ? [axes] : [...axes];
  const outNdim = v.ndim + given.length;
  const list = checkAxes('expandDims', given, outNdim);
  const pattern: (number | 'x')[] = [];
  let k = 0;
  for (let i = 0; i < outNdim; i++) pattern.push(list.includes(i) ? 'x' : k++);
  return dimshuffle(v, pattern);
}

/** Removes broadcastable (size-1) axes: the given ones, or all of them. */
export function squeeze(x: TensorLike, axes?: number | readonly number[]): Variable {
  const v = asVariable(x, 'squeeze: x');
  const list =
    axes === undefined
      ? v.broadcastable.map((b, i) => (b ? i : -1)).filter((i) => i >= 0)
      : checkAxes('squeeze', typeof axes === 'number' ? [axes] : axes, v.ndim);
  const marked = addBroadcast(v, list);
  return dimshuffle(
    marked,
    marked.broadcastable.map((_, i) => i).filter((i) => !list.includes(i)),
  );
}

/** Marks axes as broadcastable (checked at run time): Theano's addbroadcast. */
export function addBroadcast(x: TensorLike, axes: readonly number[]): Variable {
  const v = asVariable(x, 'addBroadcast: x');
  const todo = checkAxes('addBroadcast', axes, v.ndim).filter((a) => !v.broadcastable[a]);
  return todo.length === 0 ? v : applyOp('rebroadcast', [v], { axes: todo, broadcastable: true });
}

/** Gives g the broadcastable pattern of x (same ndim). */
export function rebroadcastLike(g: Variable, x: Variable): Variable {
  const add = x.broadcastable.map((b, i) => (b && !g.broadcastable[i] ? i : -1)).filter((i) => i >= 0);
  const drop = x.broadcastable.map((b, i) => (!b && g.broadcastable[i] ? i : -1)).filter((i) => i >= 0);
  let out = add.length ? applyOp('rebroadcast', [g], { axes: add, broadcastable: true }) : g;
  if (drop.length) out = applyOp('rebroadcast', [out], { axes: drop, broadcastable: false });
  return out;
}

/** For gradients: sums `g` over the axes where `like` was broadcast, so the result has the shape of `like`. */
export function sumToLike(g: Variable, like: Variable): Variable {
  return applyOp('sumToLike', [g, like], {});
}
/** Broadcasts `g` to the shape of `like`. */
export function broadcastLike(g: Variable, like: Variable): Variable {
  return applyOp('broadcastLike', [g, like], {});
}
/** A tensor of the shape of `x` filled with `value` (of `dtype`, by default the dtype of `x`). */
export function fillLike(x: TensorLike, value: number, dtype?: DType): Variable {
  const v = asVariable(x, 'fillLike: x');
  return applyOp('fillLike', [v], { value, dtype: dtype ?? v.dtype });
}
/** Zeros of the shape of `x` (of `dtype`, by default the dtype of `x`). */
export const zerosLike = (x: TensorLike, dtype?: DType): Variable => fillLike(x, 0, dtype);
/** Ones of the shape of `x` (of `dtype`, by default the dtype of `x`). */
export const onesLike = (x: TensorLike, dtype?: DType): Variable => fillLike(x, 1, dtype);
