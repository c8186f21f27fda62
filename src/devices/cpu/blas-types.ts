// The GEMM engine interface shared by the native BLAS binding and the WebAssembly fallback.

export type GemmDType = 'float32' | 'float64';
export type GemmArray = Float32Array | Float64Array;

/**
 * A row-major GEMM: C = alpha * op(A) * op(B) + beta * C, where op(A) is m x k, op(B) is
 * k x n and C is m x n. Each matrix starts at element `offset` of its array and has
 * leading dimension `ld` (elements between the starts of consecutive rows, as stored):
 * A is stored m x k (k x m when transA), B is stored k x n (n x k when transB).
 * When beta is 0, C is not read (NaN/garbage in C does not propagate), as in BLAS.
 * The arrays' element type must match `dtype`.
 */
export interface Blas {
  /** 'openblas', 'blis', 'mkl', 'cblas' (an unknown CBLAS) or 'wasm-simd'. */
  readonly name: string;
  /** The shared library loaded, or 'wasm' for the fallback. */
  readonly path: string;
  /** Set when the library chose its kernels on our advice, e.g. the OpenBLAS core type (for the notice). */
  readonly tuning?: string;
  gemm(
    dtype: GemmDType,
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    A: GemmArray,
    aOffset: number,
    lda: number,
    B: GemmArray,
    bOffset: number,
    ldb: number,
    beta: number,
    C: GemmArray,
    cOffset: number,
    ldc: number,
  ): void;
  /** Threads the library may use per call (the fallback is always single-threaded). */
  setThreads(n: number): void;
}

/** Throws a RangeError unless the arguments describe matrices inside their arrays. */
export function checkGemmArgs(
  dtype: GemmDType,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  A: GemmArray,
  aOffset: number,
  lda: number,
  B: GemmArray,
  bOffset: number,
  ldb: number,
  C: GemmArray,
  cOffset: number,
  ldc: number,
): void {
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  for (const [name, arr] of [['A', A], ['B', B], ['C', C]] as const) {
    if (!(arr instanceof Ctor)) throw new TypeError(`gemm: ${name} must be a ${Ctor.name} for dtype ${dtype}`);
  }
  for (const [name, v] of [['m', m], ['n', n], ['k', k], ['aOffset', aOffset], ['bOffset', bOffset], ['cOffset', cOffset]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`gemm: ${name} must be a non-negative integer, got ${v}`);
  }
  const span = (name: string, arr: GemmArray, off: number, rows: number, cols: number, ld: number): void => {
    if (!Number.isInteger(ld) || ld < Math.max(1, cols)) {
      throw new RangeError(`gemm: ld${name.toLowerCase()}=${ld} is less than the ${cols} stored columns of ${name}`);
    }
    if (rows > 0 && cols > 0 && off + (rows - 1) * ld + cols > arr.length) {
      throw new RangeError(`gemm: ${name} (${rows}x${cols}, offset ${off}, ld ${ld}) runs past its array of ${arr.length}`);
    }
  };
  span('A', A, aOffset, transA ? k : m, transA ? m : k, lda);
  span('B', B, bOffset, transB ? n : k, transB ? k : n, ldb);
  span('C', C, cOffset, m, n, ldc);
}
