// Numeric comparison with NumPy's allclose semantics (NaN equal to NaN, infinities equal by sign).
import assert from 'node:assert/strict';
import { NDArray } from '../../src/tensor/ndarray.js';

export interface CloseOptions { rtol?: number; atol?: number; checkDtype?: boolean }

export function assertAllClose(actual: NDArray, expected: NDArray | unknown, options: CloseOptions = {}, message = ''): void {
  const exp = expected instanceof NDArray ? expected : NDArray.from(expected, { dtype: 'float64' });
  const { rtol = 1e-5, atol = 1e-7 } = options;
  assert.deepEqual([...actual.shape], [...exp.shape], `${message} shape: got (${actual.shape}) expected (${exp.shape})`);
  if (options.checkDtype) assert.equal(actual.dtype, exp.dtype, `${message} dtype`);
  for (let i = 0; i < actual.size; i++) {
    const a = actual.data[i]!;
    const e = exp.data[i]!;
    if (Number.isNaN(e)) { assert.ok(Number.isNaN(a), `${message} element ${i}: expected NaN, got ${a}`); continue; }
    if (!Number.isFinite(e)) { assert.equal(a, e, `${message} element ${i}`); continue; }
    if (Number.isNaN(a) || !(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${message} element ${i}: got ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > atol ${atol} + rtol ${rtol} * |expected|)`);
    }
  }
}

/** Deterministic pseudo-random numbers for tests (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random array with values in [lo, hi). */
export function randomArray(
  shape: readonly number[],
  seed: number,
  options: { dtype?: 'float32' | 'float64' | 'int32'; lo?: number; hi?: number } = {},
): NDArray {
  const { dtype = 'float64', lo = -1, hi = 1 } = options;
  const r = rng(seed);
  const a = new NDArray(dtype, shape);
  for (let i = 0; i < a.size; i++) a.data[i] = dtype === 'int32' ? Math.floor(lo + (hi - lo) * r()) : lo + (hi - lo) * r();
  return a;
}

/** ‖got − want‖ / ‖want‖ over all elements (the error measure of the precision tests). */
export function relNormError(got: NDArray, want: NDArray): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.size; i++) { num += (got.data[i]! - want.data[i]!) ** 2; den += want.data[i]! ** 2; }
  return Math.sqrt(num / den);
}
