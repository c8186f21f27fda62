// The portable GEMM: a WebAssembly SIMD kernel (wasm-kernel.ts) driven from here.
// Each call copies A and B as stored into wasm memory (memcpy per row), then for each
// block of KC values of k packs them in wasm into zero-padded micro-panels (transposes,
// strides and alpha are applied by the packing), runs the kernel over blocks of MC rows
// into a padded C (holding beta * C first when beta != 0), and copies C out per row.
// Single-threaded: parallelism comes from the workers, one engine per worker.
import { checkGemmArgs, type Blas, type GemmArray, type GemmDType } from './blas-types.js';
import { wasmApi, type WasmModule } from './wasm-api.js';
import { emitGemmModule, F32_SHAPE, F64_SHAPE, type GemmExports, type KernelShape } from './wasm-kernel.js';

/** Blocking sizes: KC rows of op(B) per packed block, MC rows of op(A) per kernel call. */
const KC = 256;
const MC = 120;
/** Above this much wasm memory per call (by default), the problem is split in two along m or n. */
const MAX_BYTES = 1 << 30;
/** After a call that needed more memory than this, the instance is replaced (wasm memory never shrinks). */
const RETAIN_BYTES = 1 << 28;
const PAGE = 65536;

let compiled: WasmModule | undefined;
function moduleOnce(): WasmModule {
  compiled ??= new wasmApi.Module(emitGemmModule());
  return compiled;
}

const roundUp = (x: number, to: number): number => Math.ceil(x / to) * to;

/** Copies a rows x cols matrix stored with leading dimension ld into dst at `at`, compact. */
function copyIn(src: GemmArray, off: number, ld: number, rows: number, cols: number, dst: GemmArray, at: number): void {
  if (ld === cols) {
    dst.set(src.subarray(off, off + rows * cols), at);
    return;
  }
  for (let i = 0; i < rows; i++) dst.set(src.subarray(off + i * ld, off + i * ld + cols), at + i * cols);
}

export interface WasmGemmOptions {
  /** Wasm memory one call may use before the problem is split along m or n (default 1 GiB). */
  maxBytes?: number;
}

class WasmGemm implements Blas {
  readonly name = 'wasm-simd';
  readonly path = 'wasm';
  private instance: GemmExports | undefined;

  constructor(private readonly maxBytes: number) {}

  private get exports(): GemmExports {
    this.instance ??= new wasmApi.Instance(moduleOnce(), {}).exports as unknown as GemmExports;
    return this.instance;
  }

  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`setThreads: expected a positive integer, got ${n}`);
  }

  gemm(
    dtype: GemmDType, transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, A: GemmArray, aOffset: number, lda: number, B: GemmArray, bOffset: number, ldb: number,
    beta: number, C: GemmArray, cOffset: number, ldc: number,
  ): void {
    checkGemmArgs(dtype, transA, transB, m, n, k, A, aOffset, lda, B, bOffset, ldb, C, cOffset, ldc);
    this.run(dtype, transA, transB, m, n, k, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc);
  }

  private run(
    dtype: GemmDType, transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, A: GemmArray, aOffset: number, lda: number, B: GemmArray, bOffset: number, ldb: number,
    beta: number, C: GemmArray, cOffset: number, ldc: number,
  ): void {
    if (m === 0 || n === 0) return;
    if (k === 0 || alpha === 0) {
      scaleC(C, cOffset, ldc, m, n, beta);
      return;
    }
    const f32 = dtype === 'float32';
    const shape: KernelShape = f32 ? F32_SHAPE : F64_SHAPE;
    const es = f32 ? 4 : 8;
    const mr = shape.mr;
    const nr = shape.nrv * (16 / es);
    const mp = roundUp(m, mr);
    let np = roundUp(n, nr);
    if ((np * es) % 4096 === 0) np += nr; // a C row stride of a multiple of 4 KiB aliases in cache
    const kcMax = roundUp(Math.min(KC, k), shape.unroll);
    const bytes = (m * k + k * n + (mp + np) * kcMax + mp * np) * es;
    if (bytes > this.maxBytes && (m > mr || n > nr)) {
      // Split the larger splittable one of m and n: each half is an independent GEMM.
      if (m > mr && (m >= n || n <= nr)) {
        const h = roundUp(Math.ceil(m / 2), mr);
        const aStep = transA ? 1 : lda;
        this.run(dtype, transA, transB, h, n, k, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc);
        this.run(dtype, transA, transB, m - h, n, k, alpha, A, aOffset + h * aStep, lda, B, bOffset, ldb, beta, C, cOffset + h * ldc, ldc);
      } else {
        const h = roundUp(Math.ceil(n / 2), nr);
        const bStep = transB ? ldb : 1;
        this.run(dtype, transA, transB, m, h, k, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc);
        this.run(dtype, transA, transB, m, n - h, k, alpha, A, aOffset, lda, B, bOffset + h * bStep, ldb, beta, C, cOffset + h, ldc);
      }
      return;
    }
    const memory = this.exports.memory;
    if (memory.buffer.byteLength < bytes) {
      try {
        memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
      } catch (cause) {
        throw new RangeError(`wasm gemm: cannot grow WebAssembly memory to ${bytes} bytes for ${m}x${n}x${k}`, { cause });
      }
    }
    const heap = new (f32 ? Float32Array : Float64Array)(memory.buffer);
    const { block, pack } = f32
      ? { block: this.exports.block_f32, pack: this.exports.pack_f32 }
      : { block: this.exports.block_f64, pack: this.exports.pack_f64 };
    // Layout (elements): A as stored, B as stored, packed A block, packed B block, padded C.
    const [aRows, aCols] = transA ? [k, m] : [m, k];
    const [bRows, bCols] = transB ? [n, k] : [k, n];
    const rawA = 0;
    const rawB = rawA + m * k;
    const packA = rawB + k * n;
    const packB = packA + mp * kcMax;
    const cAt = packB + np * kcMax;
    copyIn(A, aOffset, lda, aRows, aCols, heap, rawA);
    copyIn(B, bOffset, ldb, bRows, bCols, heap, rawB);
    // op(A)(i, p) at byte (rawA + i*ars + p*acs)*es; op(B)(p, j) at byte (rawB + p*brs + j*bcs)*es
    const [ars, acs] = transA ? [1, aCols] : [aCols, 1];
    const [brs, bcs] = transB ? [1, bCols] : [bCols, 1];
    if (beta !== 0) {
      for (let i = 0; i < m; i++) heap.set(C.subarray(cOffset + i * ldc, cOffset + i * ldc + n), cAt + i * np);
      if (beta !== 1) for (let i = 0; i < mp * np; i++) heap[cAt + i] = beta * (heap[cAt + i] as number);
    }
    const mcRows = Math.max(mr, Math.floor(MC / mr) * mr);
    for (let p0 = 0; p0 < k; p0 += KC) {
      const kc = Math.min(KC, k - p0);
      const kcp = roundUp(kc, shape.unroll);
      // zero the padding the packing leaves untouched (rows past m or n, k past kc)
      if (kcp !== kc || m % mr !== 0) heap.fill(0, packA, packA + mp * kcp);
      if (kcp !== kc || n % nr !== 0) heap.fill(0, packB, packB + np * kcp);
      packPanels(pack, es, (rawA + p0 * acs) * es, ars * es, acs * es, m, mr, kc, kcp, packA * es, alpha);
      packPanels(pack, es, (rawB + p0 * brs) * es, bcs * es, brs * es, n, nr, kc, kcp, packB * es, 1);
      for (let i0 = 0; i0 < mp; i0 += mcRows) {
        const rows = Math.min(mcRows, mp - i0);
        block((packA + i0 * kcp) * es, packB * es, (cAt + i0 * np) * es, rows / mr, np / nr, kcp, np * es, beta !== 0 || p0 > 0 ? 1 : 0);
      }
    }
    for (let i = 0; i < m; i++) C.set(heap.subarray(cAt + i * np, cAt + i * np + n), cOffset + i * ldc);
    if (bytes > RETAIN_BYTES) this.instance = undefined;
  }
}

type PackFn = GemmExports['pack_f32'];

/** Packs `rows` rows (stride rs bytes, k stride cs bytes) into panels of w: full ones, then the rest. */
function packPanels(
  pack: PackFn, es: number, src: number, rs: number, cs: number, rows: number, w: number, kc: number, kcp: number, dst: number, alpha: number,
): void {
  const full = Math.floor(rows / w);
  if (full > 0) pack(src, rs, cs, full, w, w, kc, kcp, dst, alpha);
  const rest = rows - full * w;
  if (rest > 0) pack(src + full * w * rs, rs, cs, 1, w, rest, kc, kcp, dst + full * w * kcp * es, alpha);
}

/** C = beta * C (C not read when beta is 0). */
function scaleC(C: GemmArray, off: number, ldc: number, m: number, n: number, beta: number): void {
  for (let i = 0; i < m; i++) {
    const d0 = off + i * ldc;
    if (beta === 0) C.fill(0, d0, d0 + n);
    else for (let j = 0; j < n; j++) C[d0 + j] = beta * (C[d0 + j] as number);
  }
}

/** A new single-threaded WebAssembly SIMD GEMM (each instance owns its wasm memory). */
export function createWasmGemm(options: WasmGemmOptions = {}): Blas {
  return new WasmGemm(options.maxBytes ?? MAX_BYTES);
}
