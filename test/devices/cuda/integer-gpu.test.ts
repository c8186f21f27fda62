// Integer semantics on a real GPU (skipped, saying why, without one): int32 arithmetic wraps as
// two's complement (NVRTC must not be handed signed overflow, which it assumes away), integer
// powers are exact, and float-to-integer casts wrap as the reference's. The same kernels run on
// the CPU under UndefinedBehaviorSanitizer in integer-semantics.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { gpu } from '../../helpers/gpu.js';

const ints = (values: readonly number[], dtype: 'int32' | 'uint8' = 'int32') => NDArray.from([...values], { dtype });
const i32 = (name: string) => T.tensor({ dtype: 'int32', ndim: 1, name });

test('int32 abs(square(x)) wraps as NumPy does (the GPU gave -1794967296)', (t) => {
  const device = gpu(t);
  if (!device) return;
  const x = i32('x');
  const got = T.fn({ inputs: [x], outputs: T.abs(T.square(x)), device })(ints([50000, -46341])) as NDArray;
  assert.deepEqual([...got.data], [1794967296, 2147479015]);
});

test('int32 pow wraps exactly, with a constant and with a vector exponent', (t) => {
  const device = gpu(t);
  if (!device) return;
  const x = i32('x'), y = i32('y');
  const constant = T.fn({ inputs: [x], outputs: T.pow(x, 31), device })(ints([2, -2])) as NDArray;
  assert.deepEqual([...constant.data], [-(2 ** 31), -(2 ** 31)]);
  const vector = T.fn({ inputs: [x, y], outputs: T.pow(x, y), device })(ints([2, 2, 3, -3, 1, -1, -1, 0, 5]),
    ints([31, 32, 40, 21, -5, -3, -4, -1, -2])) as NDArray;
  // 3^40 mod 2^32 and (-3)^21 mod 2^32, as int32; negative exponents as the reference (truncated float power).
  const pow = (b: bigint, e: bigint) => Number(BigInt.asIntN(32, b ** e));
  assert.deepEqual([...vector.data], [-(2 ** 31), 0, pow(3n, 40n), pow(-3n, 21n), 1, -1, 1, 0, 0]);
  const u = T.tensor({ dtype: 'uint8', ndim: 1, name: 'u' }), v = T.tensor({ dtype: 'uint8', ndim: 1, name: 'v' });
  const bytes = T.fn({ inputs: [u, v], outputs: T.pow(u, v), device })(ints([3, 255, 2], 'uint8'), ints([5, 255, 8], 'uint8')) as NDArray;
  assert.deepEqual([...bytes.data], [243, 255, 0]);
});

test('int32 add, sub, mul, neg, incSubtensor and out-of-range casts match the reference', (t) => {
  const device = gpu(t);
  if (!device) return;
  const x = i32('x'), y = i32('y'), f = T.tensor({ dtype: 'float64', ndim: 1, name: 'f' });
  const outputs = [T.add(x, y), T.sub(x, y), T.mul(x, y), T.neg(x),
    T.incSubtensor(x.take(T.constant([0, 0], { dtype: 'int32' })), T.constant(2 ** 30, { dtype: 'int32' })), T.cast(f, 'int32')];
  const values = [
    ints([2 ** 31 - 1, -(2 ** 31), 65536]),
    ints([1, 1, 65536]),
    NDArray.from([1e30, -4294967297.5, NaN, 2 ** 31], { dtype: 'float64' }),
  ] as const;
  const got = T.fn({ inputs: [x, y, f], outputs, device })(...values) as NDArray[];
  const want = T.fn({ inputs: [x, y, f], outputs, device: new T.ReferenceDevice() })(...values) as NDArray[];
  got.forEach((g, k) => assert.deepEqual([...g.data], [...want[k]!.data], `output ${k}`));
  assert.deepEqual([...got[0]!.data], [-(2 ** 31), -(2 ** 31) + 1, 131072]);
});
