// T.dot, T.matmul, T.outer and their method forms. Everything here lowers to the primitive
// `matmul` op (last two axes, optional transposes) plus dimshuffle/reshape, so gradients of
// gradients work and a fast device sees one GEMM per product.
import { Variable, asVariable } from '../tensor/variable.js';
import type { DType } from '../tensor/dtype.js';
import * as B from './build.js';
import type { TensorLike } from './build.js';
import { applyOp } from '../ops/apply.js';

function wrapPair(op: string, a: TensorLike, b: TensorLike): [Variable, Variable] {
  const like: DType | undefined = a instanceof Variable ? a.dtype : b instanceof Variable ? b.dtype : undefined;
  return [asVariable(a, `${op}: a`, like), asVariable(b, `${op}: b`, like)];
}

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Transpose the last two axes of `a` first (no copy: the op reads it transposed). */
  transA?: boolean;
  /** Transpose the last two axes of `b` first. */
  transB?: boolean;
}

/**
 * NumPy's matmul: the last two axes are matrices, leading axes are batch axes that broadcast.
 * A 1-d operand is a row (first) or column (second) vector whose added axis is removed again.
 * Scalars are refused (as in NumPy); use `dot` or `mul`.
 */
export function matmul(a: TensorLike, b: TensorLike, options: MatmulOptions = {}): Variable {
  const [x, y] = wrapPair('matmul', a, b);
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  if (x.ndim === 0 || y.ndim === 0) {
    throw new TypeError(`matmul: operands must have ndim >= 1, got ${x.label()} and ${y.label()} (use dot or mul for scalars)`);
  }
  if ((x.ndim === 1 && transA) || (y.ndim === 1 && transB)) throw new TypeError('matmul: transA/transB need a matrix operand (ndim >= 2)');
  const xm = x.ndim === 1 ? B.dimshuffle(x, ['x', 0]) : x;
  const ym = y.ndim === 1 ? B.dimshuffle(y, [0, 'x']) : y;
  const out = applyOp('matmul', [xm, ym], { transA, transB });
  // Drop the axes added for vector operands (they are broadcastable in the result).
  const keep: number[] = [];
  for (let i = 0; i < out.ndim; i++) {
    if (x.ndim === 1 && i === out.ndim - 2) continue;
    if (y.ndim === 1 && i === out.ndim - 1) continue;
    keep.push(i);
  }
  return keep.length === out.ndim ? out : B.dimshuffle(out, keep);
}

/**
 * NumPy's dot: scalars multiply elementwise; vector·vector is the inner product (a scalar);
 * matrix·vector, vector·matrix and matrix·matrix are the usual products. For ndim > 2,
 * dot(a, b)[i..., j..., m] = sum_k a[i..., k] * b[j..., k, m] (a lowered to one matmul).
 */
export function dot(a: TensorLike, b: TensorLike): Variable {
  const [x, y] = wrapPair('dot', a, b);
  if (x.ndim === 0 || y.ndim === 0) return B.mul(x, y);
  if (x.ndim <= 2 && y.ndim <= 2) return matmul(x, y);
  // General case: contract the last axis of x with the second-to-last axis of y (the last axis when y is 1-d).
  // Sizes are explicit products (not -1) so a zero-size contracted axis keeps the other sizes.
  const xs = B.shapeOf(x);
  const ys = B.shapeOf(y);
  const x2 = x.ndim === 2 ? x : B.reshape(x, [product(xs.slice(0, -1)), xs[x.ndim - 1]!]);
  if (y.ndim === 1) {
    const r = matmul(x2, y);
    return x.ndim === 2 ? r : B.reshape(r, xs.slice(0, -1));
  }
  const kAxis = y.ndim - 2;
  const rest = y.type.broadcastable.map((_, i) => i).filter((i) => i !== kAxis);
  const y2 = y.ndim === 2 ? y : B.reshape(B.dimshuffle(y, [kAxis, ...rest]), [ys[kAxis]!, product(rest.map((i) => ys[i]!))]);
  return B.reshape(matmul(x2, y2), [...xs.slice(0, -1), ...ys.filter((_, i) => i !== kAxis)]);
}

function product(dims: readonly Variable[]): Variable | number {
  return dims.length === 0 ? 1 : dims.reduce((a, b) => B.mul(a, b));
}

/** Outer product of two vectors (other shapes are flattened first, as NumPy's outer). */
export function outer(a: TensorLike, b: TensorLike): Variable {
  const [x, y] = wrapPair('outer', a, b);
  const xv = x.ndim === 1 ? x : B.flatten(x);
  const yv = y.ndim === 1 ? y : B.flatten(y);
  return B.mul(B.dimshuffle(xv, [0, 'x']), B.dimshuffle(yv, ['x', 0]));
}

declare module '../tensor/variable.js' {
  interface Variable {
    /** NumPy's dot (see T.dot). */
    dot(o: TensorLike): Variable;
    /** NumPy's matmul with optional transposes (see T.matmul). */
    matmul(o: TensorLike, options?: MatmulOptions): Variable;
    /** Outer product (see T.outer). */
    outer(o: TensorLike): Variable;
  }
}

Object.assign(Variable.prototype, {
  dot(this: Variable, o: TensorLike) { return dot(this, o); },
  matmul(this: Variable, o: TensorLike, options?: MatmulOptions) { return matmul(this, o, options); },
  outer(this: Variable, o: TensorLike) { return outer(this, o); },
});
