// Types shared by T.fn and synk.fn: the kinds of array a compiled function accepts as an input, and
// what it returns for its outputs spec, so that `const [mean, max] = f(x)` is typed by the list.
import type { NDArray, NestedArray } from '../tensor/ndarray.js';
import type { TypedArray } from '../tensor/dtype.js';
import type { ShapedArray } from '../tensor/conform.js';
import type { Variable } from '../tensor/variable.js';

/** A value for an array input: a number or nested JS array, a typed array, `{ data, shape }` or an NDArray. */
export type ArrayInput = NestedArray | TypedArray | ShapedArray | NDArray;

/** An output with the op that combines its pieces (synk.fn's [variable, 'sum'] and so on). */
export type OutputWithOp = readonly [Variable, string];

/**
 * The result for an outputs spec: nothing given gives [], one variable (or one [variable, op])
 * gives an NDArray, a list gives a tuple of NDArrays of the list's length (an array when the list's
 * length is not known to the type checker).
 */
export type OutputsOf<O> = O extends null | undefined
  ? []
  : O extends Variable | OutputWithOp
    ? NDArray
    : O extends readonly unknown[]
      ? { -readonly [K in keyof O]: NDArray }
      : NDArray | NDArray[];
