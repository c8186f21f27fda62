// The fast CPU device: generated fused elementwise loops, fast reductions and softmax, matmul and
// conv2d through GEMM (the system BLAS through koffi, else the WebAssembly SIMD fallback), and
// per-executable buffer pools. Every op without a fast kernel runs its reference perform.
import { isMainThread } from 'node:worker_threads';
import { NDArray, describe } from '../../tensor/ndarray.js';
import type { Program } from '../../compile/program.js';
import type { Device, DeviceArray } from '../device.js';
import type { Blas } from './blas-types.js';
import { selectGemm } from './gemm.js';
import { CpuExecutable } from './executable.js';

/** Options of the CPU device: which BLAS, how many BLAS threads, notices and profiling. */
export interface CpuDeviceOptions {
  /** Load exactly this CBLAS (else $SYNK_BLAS, else the usual library names). */
  blasPath?: string;
  /** Use the WebAssembly GEMM even when a BLAS is available. */
  forceFallback?: boolean;
  /** BLAS threads per call (default 1: parallelism comes from one worker per core). */
  threads?: number;
  /** Print the notice about a missing BLAS (default: in the main thread, once per process). */
  notice?: boolean;
  /** Time every step by op (see CpuExecutable.stats().profile); off by default. */
  profile?: boolean;
  /** Elementwise chains and column sums in WebAssembly SIMD where they apply (default true; false: JavaScript loops only). */
  simd?: boolean;
  /** Run groups of steps as one (bias add with ReLU, ReLU mask with the bias gradient, concatenated parts; default true). */
  groups?: boolean;
}

let noticePrinted = false;

/** Prints a GEMM notice once per thread (the fallback's says how to get a BLAS). */
export function printNoticeOnce(notice: string): void {
  if (noticePrinted) return;
  noticePrinted = true;
  console.warn(notice);
}

export class CpuDevice implements Device {
  readonly kind = 'cpu' as const;
  readonly name: string;
  /** One line: which GEMM engine is in use and, for the fallback, how to get a BLAS. */
  readonly notice: string;
  readonly blas: Blas;
  private closed = false;
  private readonly profile: boolean;
  private readonly simd: boolean;
  private readonly groups: boolean;

  constructor(options: CpuDeviceOptions = {}) {
    const { blas, notice } = selectGemm({
      ...(options.blasPath !== undefined ? { blasPath: options.blasPath } : {}),
      ...(options.forceFallback !== undefined ? { forceFallback: options.forceFallback } : {}),
    });
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`cpu device: threads must be a positive integer, got ${threads}`);
    blas.setThreads(threads);
    this.blas = blas;
    this.notice = notice;
    this.profile = options.profile === true;
    for (const key of ['simd', 'groups'] as const) {
      const v: unknown = options[key];
      if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`cpu device: option ${key} must be a boolean, got ${describe(v)}`);
    }
    this.simd = options.simd !== false;
    this.groups = options.groups !== false;
    this.name = `cpu (${blas.name === 'wasm-simd' ? 'WebAssembly SIMD GEMM' : `${blas.name} ${blas.path}`})`;
    const loud = options.notice ?? isMainThread;
    if (loud && ((blas.name === 'wasm-simd' && options.forceFallback !== true) || blas.tuning !== undefined)) printNoticeOnce(notice);
  }

  /** The BLAS (or the WebAssembly fallback) as a host GEMM, for the shared-state step's column split. */
  get hostGemm(): Blas {
    return this.blas;
  }

  upload(value: NDArray): DeviceArray {
    return value;
  }

  download(value: DeviceArray): NDArray {
    if (!(value instanceof NDArray)) throw new TypeError('cpu device: not a host array');
    return value;
  }

  free(): void {}

  /**
   * Every policy, 'bf16' emulated honestly: the operands of each marked product are rounded to bfloat16
   * copies and multiplied by the float32 GEMM (a product of two bfloat16 values is exact in float32, so
   * this is the GPU's arithmetic up to the order of the sums). It is no faster than 'fp32' (the rounding
   * is an extra pass): it exists so a function written for a GPU's bf16 runs, and is tested, here.
   */
  supportsPrecision(): true {
    return true;
  }

  compile(program: Program): CpuExecutable {
    if (this.closed) throw new Error('cpu device: compile after close()');
    return new CpuExecutable(program, { blas: this.blas, simd: this.simd }, { profile: this.profile, groups: this.groups });
  }

  synchronize(): void {}

  close(): void {
    this.closed = true;
  }
}
