// Both GEMM engines (native CBLAS through koffi, WebAssembly SIMD fallback) against a
// float64 triple loop, over transposes, odd sizes, offsets, leading dimensions, alpha/beta.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { findBlas, loadBlas, type Blas, type GemmArray, type GemmDType } from '../../../src/devices/cpu/blas.js';
import { createWasmGemm } from '../../../src/devices/cpu/wasm-gemm.js';
import { BlasNotFoundError, selectGemm } from '../../../src/devices/cpu/gemm.js';

/** Deterministic non-zero values in [-1, -0.05] U [0.05, 1]. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    return (u < 0.5 ? -1 : 1) * (0.05 + 0.95 * Math.abs(2 * u - 1));
  };
}

interface Case {
  dtype: GemmDType;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  beta: number;
  /** Extra elements per stored row (ld = stored columns + pad) and before each matrix. */
  pad: number;
  offset: number;
  shared?: boolean;
}

function alloc(dtype: GemmDType, length: number, shared: boolean): GemmArray {
  if (dtype === 'float32') return shared ? new Float32Array(new SharedArrayBuffer(length * 4)) : new Float32Array(length);
  return shared ? new Float64Array(new SharedArrayBuffer(length * 8)) : new Float64Array(length);
}

/** Runs one case on `blas` and checks every element of C, including those it must not touch. */
function check(blas: Blas, c: Case, seed = 1): void {
  const { dtype, transA, transB, m, n, k, alpha, beta, pad, offset } = c;
  const next = rng(seed + m * 7 + n * 13 + k * 31);
  const [aRows, aCols] = transA ? [k, m] : [m, k];
  const [bRows, bCols] = transB ? [n, k] : [k, n];
  const lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
  const A = alloc(dtype, offset + aRows * lda + pad, c.shared ?? false);
  const B = alloc(dtype, offset + bRows * ldb + pad, c.shared ?? false);
  const C = alloc(dtype, offset + m * ldc + pad, c.shared ?? false);
  for (const X of [A, B, C]) for (let i = 0; i < X.length; i++) X[i] = next();
  // With beta = 0, C must not be read: NaN in it must not show up in the result.
  if (beta === 0) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) C[offset + i * ldc + j] = NaN;
  const C0 = Float64Array.from(C);
  const a = (i: number, p: number): number => A[offset + (transA ? p * lda + i : i * lda + p)] as number;
  const b = (p: number, j: number): number => B[offset + (transB ? j * ldb + p : p * ldb + j)] as number;
  blas.gemm(dtype, transA, transB, m, n, k, alpha, A, offset, lda, B, offset, ldb, beta, C, offset, ldc);
  const eps = dtype === 'float32' ? 1.2e-7 : 2.3e-16;
  const label = `${blas.name} ${dtype} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} m=${m} n=${n} k=${k} alpha=${alpha} beta=${beta} pad=${pad} off=${offset}`;
  for (let idx = 0; idx < C.length; idx++) {
    const rel = idx - offset;
    const i = Math.floor(rel / ldc), j = rel - i * ldc;
    const inside = rel >= 0 && i < m && j < n;
    const got = C[idx] as number;
    if (!inside) {
      assert.equal(got, C0[idx], `${label}: element ${idx} outside C changed`);
      continue;
    }
    let sum = 0, mag = 0;
    for (let p = 0; p < k; p++) {
      sum += a(i, p) * b(p, j);
      mag += Math.abs(a(i, p) * b(p, j));
    }
    const c0 = beta === 0 ? 0 : (C0[idx] as number);
    const want = alpha * sum + beta * c0;
    const tol = 4 * eps * (k + 2) * (Math.abs(alpha) * mag + Math.abs(beta * c0)) + 1e-30;
    if (!(Math.abs(got - want) <= tol)) assert.fail(`${label}: C[${i},${j}] = ${got}, want ${want} (tol ${tol})`);
  }
}

const SIZES: readonly [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [3, 1, 5], [3, 17, 5], [17, 3, 65], [5, 16, 2], [16, 16, 16],
  [65, 130, 17], [130, 65, 257], [33, 47, 300], [1, 200, 1],
];
const TRANSPOSES: readonly [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

function engineSuite(name: string, make: () => Blas | string): void {
  describe(name, () => {
    const made = make();
    const skip = typeof made === 'string' ? made : false;
    const blas = typeof made === 'string' ? null : made;
    if (skip !== false) console.log(`# ${name}: skipped (${skip})`);
    const run = (title: string, body: (b: Blas) => void): void => {
      test(title, { skip }, () => {
        if (blas !== null) body(blas);
      });
    };
    for (const dtype of ['float32', 'float64'] as const) {
      run(`${dtype}: all transposes, odd sizes, alpha = 1, beta = 0`, (b) => {
        for (const [transA, transB] of TRANSPOSES) {
          for (const [m, n, k] of SIZES) check(b, { dtype, transA, transB, m, n, k, alpha: 1, beta: 0, pad: 0, offset: 0 });
        }
      });
      run(`${dtype}: offsets, ld > columns, alpha and beta`, (b) => {
        for (const [transA, transB] of TRANSPOSES) {
          for (const [m, n, k] of SIZES) {
            check(b, { dtype, transA, transB, m, n, k, alpha: 1.5, beta: -0.75, pad: 3, offset: 5 });
            check(b, { dtype, transA, transB, m, n, k, alpha: -0.5, beta: 1, pad: 1, offset: 2 });
          }
        }
      });
    }
    run('float32: larger than the blocking (k over two KC blocks, m over MC)', (b) => {
      for (const [transA, transB] of TRANSPOSES) {
        check(b, { dtype: 'float32', transA, transB, m: 131, n: 97, k: 523, alpha: 1, beta: 0.5, pad: 2, offset: 1 });
      }
    });
    run('row stride of C a multiple of 4 KiB (1024 float32 columns)', (b) => {
      check(b, { dtype: 'float32', transA: false, transB: false, m: 9, n: 1024, k: 20, alpha: 1, beta: 0, pad: 0, offset: 0 });
    });
    run('arrays on a SharedArrayBuffer', (b) => {
      check(b, { dtype: 'float32', transA: false, transB: true, m: 20, n: 30, k: 40, alpha: 1, beta: 1, pad: 2, offset: 3, shared: true });
      check(b, { dtype: 'float64', transA: true, transB: false, m: 20, n: 30, k: 40, alpha: 2, beta: 0, pad: 0, offset: 7, shared: true });
    });
    run('batched slices: each matmul of a batch at its own offset', (b) => {
      const [batch, m, n, k] = [3, 6, 5, 4];
      const next = rng(9);
      const A = Float32Array.from({ length: batch * m * k }, next);
      const B = Float32Array.from({ length: batch * k * n }, next);
      const C = new Float32Array(batch * m * n);
      for (let t = 0; t < batch; t++) b.gemm('float32', false, false, m, n, k, 1, A, t * m * k, k, B, t * k * n, n, 0, C, t * m * n, n);
      for (let t = 0; t < batch; t++) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let p = 0; p < k; p++) s += (A[t * m * k + i * k + p] as number) * (B[t * k * n + p * n + j] as number);
            assert.ok(Math.abs((C[t * m * n + i * n + j] as number) - s) < 1e-5);
          }
        }
      }
    });
    run('k = 0 and alpha = 0 give beta * C; m = 0 or n = 0 touch nothing', (b) => {
      for (const alpha of [1, 0]) {
        const C = new Float64Array([1, 2, 3, 4]);
        const k = alpha === 0 ? 2 : 0;
        b.gemm('float64', false, false, 2, 2, k, alpha, new Float64Array(4).fill(NaN), 0, Math.max(1, k), new Float64Array(4), 0, 2, 0.5, C, 0, 2);
        assert.deepEqual([...C], [0.5, 1, 1.5, 2]);
        const D = new Float64Array([NaN, NaN]);
        b.gemm('float64', false, false, 1, 2, k, alpha, new Float64Array(2), 0, Math.max(1, k), new Float64Array(4), 0, 2, 0, D, 0, 2);
        assert.deepEqual([...D], [0, 0]);
      }
      const C = new Float32Array([7]);
      b.gemm('float32', false, false, 0, 1, 1, 1, new Float32Array(1), 0, 1, new Float32Array(1), 0, 1, 0, C, 0, 1);
      assert.equal(C[0], 7);
    });
    run('bad arguments throw before any native call', (b) => {
      const f = new Float32Array(16);
      assert.throws(() => b.gemm('float64', false, false, 2, 2, 2, 1, f, 0, 2, f, 0, 2, 0, f, 0, 2), TypeError);
      assert.throws(() => b.gemm('float32', false, false, 4, 4, 4, 1, f, 1, 4, f, 0, 4, 0, f, 0, 4), /runs past/);
      assert.throws(() => b.gemm('float32', false, false, 2, 2, 2, 1, f, 0, 1, f, 0, 2, 0, f, 0, 2), /lda=1/);
      assert.throws(() => b.gemm('float32', false, false, -1, 2, 2, 1, f, 0, 2, f, 0, 2, 0, f, 0, 2), RangeError);
      assert.throws(() => b.setThreads(0), RangeError);
    });
  });
}

engineSuite('wasm-simd engine', () => createWasmGemm());

engineSuite('wasm-simd engine split along m and n (tiny memory cap)', () => createWasmGemm({ maxBytes: 16384 }));

engineSuite('native BLAS engine (koffi)', () => {
  const found = findBlas(); // honours SYNK_BLAS; without a BLAS the suite is skipped with the reason
  return found.blas ?? found.reason;
});

describe('engine selection', () => {
  test('forced fallback selects the wasm engine and says so', () => {
    const { blas, notice } = selectGemm({ forceFallback: true });
    assert.equal(blas.name, 'wasm-simd');
    assert.match(notice, /WebAssembly SIMD fallback \(forced\)/);
  });
  test('no BLAS on the machine: fallback with a notice on how to get one', () => {
    const { blas, notice } = selectGemm({ env: {}, candidates: ['libsynk-no-such-blas.so'] });
    assert.equal(blas.name, 'wasm-simd');
    assert.match(notice, /no BLAS found/);
    assert.match(notice, /SYNK_BLAS=/);
    if (process.platform === 'linux') assert.match(notice, /apt-get install libopenblas0/);
    assert.doesNotMatch(notice, /\n/);
  });
  test('a missing explicit path (option or SYNK_BLAS) is an error naming it', () => {
    assert.throws(() => selectGemm({ blasPath: '/nonexistent/libopenblas.so', env: {} }), (e: unknown) => {
      assert.ok(e instanceof BlasNotFoundError);
      assert.equal(e.path, '/nonexistent/libopenblas.so');
      assert.match(e.message, /BLAS path given could not be loaded: \/nonexistent\/libopenblas\.so/);
      return true;
    });
    assert.throws(() => selectGemm({ env: { SYNK_BLAS: '/nonexistent/libblas.so' } }), /SYNK_BLAS could not be loaded/);
    // a library that is not a CBLAS
    const libm = process.platform === 'darwin' ? '/usr/lib/libSystem.B.dylib' : 'libm.so.6';
    assert.throws(() => selectGemm({ blasPath: libm, env: {} }), /exports no cblas_sgemm/);
  });
  test('loadBlas never throws; the reason is in findBlas', () => {
    assert.equal(loadBlas({ path: '/nonexistent/libopenblas.so' }), null);
    const found = findBlas({ env: {}, candidates: ['libsynk-no-such-blas.so'] });
    assert.equal(found.blas, null);
    assert.match(found.reason, /no CBLAS found \(tried libsynk-no-such-blas\.so\)/);
  });
  test('a BLAS on the machine is preferred, and names itself in the notice', (t) => {
    const found = findBlas({ env: {} });
    if (found.blas === null) {
      t.skip(found.reason);
      return;
    }
    const { blas, notice } = selectGemm({ env: {} });
    assert.equal(blas.name, found.blas.name);
    assert.match(notice, /GEMM on (OpenBLAS|BLIS|MKL|CBLAS) \(/);
    blas.setThreads(2);
    blas.setThreads(1);
  });
});
