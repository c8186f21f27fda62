// Method forms of the core ops on Variable (x.dot(w).tanh().mean(0)), added to the prototype once.
import type { DType } from '../tensor/dtype.js';
import { Variable } from '../tensor/variable.js';
import * as B from './build.js';
import type { Axis, TensorLike } from './build.js';
import { BINARY_OP_NAMES, UNARY_OP_NAMES } from '../ops/elementwise.js';
import { reduceOps } from '../ops/reduce.js';

declare module '../tensor/variable.js' {
  interface Variable {
    add(o: TensorLike): Variable;
    sub(o: TensorLike): Variable;
    mul(o: TensorLike): Variable;
    div(o: TensorLike): Variable;
    intDiv(o: TensorLike): Variable;
    mod(o: TensorLike): Variable;
    pow(o: TensorLike): Variable;
    maximum(o: TensorLike): Variable;
    minimum(o: TensorLike): Variable;
    eq(o: TensorLike): Variable;
    neq(o: TensorLike): Variable;
    lt(o: TensorLike): Variable;
    le(o: TensorLike): Variable;
    gt(o: TensorLike): Variable;
    ge(o: TensorLike): Variable;
    and(o: TensorLike): Variable;
    or(o: TensorLike): Variable;
    xor(o: TensorLike): Variable;
    neg(): Variable;
    abs(): Variable;
    sign(): Variable;
    exp(): Variable;
    expm1(): Variable;
    log(): Variable;
    log1p(): Variable;
    sqrt(): Variable;
    square(): Variable;
    reciprocal(): Variable;
    sin(): Variable;
    cos(): Variable;
    tanh(): Variable;
    sigmoid(): Variable;
    softplus(): Variable;
    relu(): Variable;
    erf(): Variable;
    floor(): Variable;
    ceil(): Variable;
    round(): Variable;
    not(): Variable;
    clip(lo: TensorLike, hi: TensorLike): Variable;
    cast(dtype: DType): Variable;
    astype(dtype: DType): Variable;
    sum(axis?: Axis, keepdims?: boolean): Variable;
    prod(axis?: Axis, keepdims?: boolean): Variable;
    mean(axis?: Axis, keepdims?: boolean): Variable;
    max(axis?: Axis, keepdims?: boolean): Variable;
    min(axis?: Axis, keepdims?: boolean): Variable;
    all(axis?: Axis, keepdims?: boolean): Variable;
    any(axis?: Axis, keepdims?: boolean): Variable;
    argmax(axis?: Axis, keepdims?: boolean): Variable;
    argmin(axis?: Axis, keepdims?: boolean): Variable;
    logsumexp(axis?: Axis, keepdims?: boolean): Variable;
    var(axis?: Axis, keepdims?: boolean, ddof?: number): Variable;
    std(axis?: Axis, keepdims?: boolean, ddof?: number): Variable;
    reshape(dims: readonly (number | Variable)[]): Variable;
    flatten(ndim?: number): Variable;
    dimshuffle(...pattern: (number | 'x')[]): Variable;
    transpose(axes?: readonly number[]): Variable;
    expandDims(axes: number | readonly number[]): Variable;
    squeeze(axes?: number | readonly number[]): Variable;
    /** The transpose (all axes reversed). */
    readonly T: Variable;
    /** The symbolic shape: one int32 scalar variable per axis. */
    readonly shape: Variable[];
  }
}

// The method lists come from the op table (every unary and binary elementwise op, every reduction
// with the (axis, keepdims) form); only their signatures above are written out, for the docs.
const binaryNames = BINARY_OP_NAMES;
const unaryNames = UNARY_OP_NAMES;
const reduceNames = (Object.keys(reduceOps) as (keyof typeof reduceOps)[]).filter((n): n is Exclude<keyof typeof reduceOps, 'var'> => n !== 'var');

const proto = Variable.prototype as unknown as Record<string, unknown>;
for (const name of binaryNames)
  proto[name] = function (this: Variable, o: TensorLike) {
    return B[name](this, o);
  };
for (const name of unaryNames)
  proto[name] = function (this: Variable) {
    return B[name](this);
  };
for (const name of reduceNames)
  proto[name] = function (this: Variable, axis?: Axis, keepdims?: boolean) {
    return B[name](this, axis, keepdims);
  };
Object.assign(Variable.prototype, {
  clip(this: Variable, lo: TensorLike, hi: TensorLike) {
    return B.clip(this, lo, hi);
  },
  cast(this: Variable, dtype: DType) {
    return B.cast(this, dtype);
  },
  astype(this: Variable, dtype: DType) {
    return B.cast(this, dtype);
  },
  var(this: Variable, axis?: Axis, keepdims?: boolean, ddof?: number) {
    return B.variance(this, axis, keepdims, ddof);
  },
  std(this: Variable, axis?: Axis, keepdims?: boolean, ddof?: number) {
    return B.std(this, axis, keepdims, ddof);
  },
  reshape(this: Variable, dims: readonly (number | Variable)[]) {
    return B.reshape(this, dims);
  },
  flatten(this: Variable, ndim?: number) {
    return B.flatten(this, ndim);
  },
  dimshuffle(this: Variable, ...pattern: (number | 'x')[]) {
    return B.dimshuffle(this, pattern);
  },
  transpose(this: Variable, axes?: readonly number[]) {
    return B.transpose(this, axes);
  },
  expandDims(this: Variable, axes: number | readonly number[]) {
    return B.expandDims(this, axes);
  },
  squeeze(this: Variable, axes?: number | readonly number[]) {
    return B.squeeze(this, axes);
  },
});
Object.defineProperty(Variable.prototype, 'T', {
  get(this: Variable) {
    return B.transpose(this);
  },
  configurable: true,
});
Object.defineProperty(Variable.prototype, 'shape', {
  get(this: Variable) {
    return B.shapeOf(this);
  },
  configurable: true,
});
