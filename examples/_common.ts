// Helpers shared by the examples (not an example itself): seeded random data, row selection and a
// NumPy-style allclose assertion.
import assert from 'node:assert/strict';
import { T } from '../src/index.js';

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
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

/** A float32 (or float64) array of normal numbers times `scale` (NumPy's scale * randn(...shape)). */
export function randn(shape: readonly number[], seed: number, scale = 1, dtype: 'float32' | 'float64' = 'float32'): T.NDArray {
  const r = rng(seed);
  const a = new T.NDArray(dtype, shape);
  for (let i = 0; i < a.size; i += 2) {
    const u = 1 - r();
    const v = r();
    const rad = Math.sqrt(-2 * Math.log(u));
    a.data[i] = scale * rad * Math.cos(2 * Math.PI * v);
    if (i + 1 < a.size) a.data[i + 1] = scale * rad * Math.sin(2 * Math.PI * v);
  }
  return a;
}

/** `count` random integers in [0, high) (NumPy's randint). */
export function randint(high: number, count: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: count }, () => Math.floor(r() * high));
}

/** The listed rows of `a` (along axis 0), copied: NumPy's a[idx]. */
export function rowsOf(a: T.NDArray, idx: readonly number[]): T.NDArray {
  const rowSize = a.shape.slice(1).reduce((p, d) => p * d, 1);
  const out = new T.NDArray(a.dtype, [idx.length, ...a.shape.slice(1)]);
  idx.forEach((r, i) => out.data.set(a.data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return out;
}

/** Rows [start, stop) of `a`: NumPy's a[start:stop]. */
export function sliceRows(a: T.NDArray, start: number, stop: number): T.NDArray {
  return rowsOf(a, Array.from({ length: stop - start }, (_, i) => start + i));
}

/** Concatenates arrays along axis 0. */
export function concatRows(parts: readonly T.NDArray[]): T.NDArray {
  const first = parts[0]!;
  const total = parts.reduce((s, p) => s + p.shape[0]!, 0);
  const out = new T.NDArray(first.dtype, [total, ...first.shape.slice(1)]);
  let offset = 0;
  for (const p of parts) { out.data.set(p.data, offset); offset += p.size; }
  return out;
}

/** NumPy's allclose as an assertion (default rtol 1e-5, atol 1e-6, suited to float32). */
export function assertClose(actual: T.NDArray, expected: T.NDArray | T.NestedArray, what: string, tol: { rtol?: number; atol?: number } = {}): void {
  const exp = expected instanceof T.NDArray ? expected : T.NDArray.from(expected, { dtype: 'float64' });
  const { rtol = 1e-5, atol = 1e-6 } = tol;
  assert.deepEqual([...actual.shape], [...exp.shape], `${what}: shape (${actual.shape.join(', ')}) instead of (${exp.shape.join(', ')})`);
  for (let i = 0; i < actual.size; i++) {
    const a = actual.data[i]!;
    const e = exp.data[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) assert.fail(`${what}: element ${i} is ${a}, expected ${e}`);
  }
}

/** The single result of a one-output call or local run. */
export function one(r: T.NDArray | T.NDArray[]): T.NDArray {
  return Array.isArray(r) ? r[0]! : r;
}

/** The results of a call or local run with several outputs. */
export function many(r: T.NDArray | T.NDArray[]): T.NDArray[] {
  return Array.isArray(r) ? r : [r];
}

/** A short printable form of an array: nested values rounded to 4 significant digits. */
export function show(a: T.NDArray): string {
  const round = (v: T.NestedArray): unknown => (Array.isArray(v) ? v.map(round) : typeof v === 'number' ? Number(v.toPrecision(4)) : v);
  return JSON.stringify(round(a.toArray()));
}
