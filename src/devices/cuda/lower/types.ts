// What a step's lowering produces and what it sees at run time. Lowering happens once per
// compiled program (kernels are generated then); the returned Runner runs once per call.
import type { DType } from '../../../tensor/dtype.js';
import type { NDArray } from '../../../tensor/ndarray.js';
import type { IntArg } from '../../../ops/op.js';
import type { Program, ProgramStep } from '../../../compile/program.js';
import type { CudaArray } from '../cuda-array.js';
import type { Layout, Storage } from '../storage.js';
import type { CudaContext } from '../context.js';
import type { ModuleBuilder } from '../codegen/module.js';
import type { KernelArg } from '../ffi/kernel-params.js';
import type { Dim3 } from '../ffi/driver.js';

/** A slot's value during a run: on the device, on the host, or both. */
export interface Value {
  dev?: CudaArray;
  host?: NDArray;
}

export interface RunState {
  readonly ctx: CudaContext;
  /** The run is being recorded into a CUDA graph: nothing may wait for the GPU (default false). */
  readonly capturing?: boolean;
  /** float32 matrix products may use TF32 tensor cores. */
  readonly tf32: boolean;
  /** float32 matrix products may round their operands to bfloat16 (float32 accumulation). */
  readonly bf16: boolean;
  /** float32 and bfloat16 matrix products go through cuBLASLt where it has a plan (lower/gemm.ts); default false: cuBLAS. */
  readonly cublasLt?: boolean;
  dtype(slot: number): DType;
  shape(slot: number): readonly number[];
  /** The slot's device array (uploading a host-only value). */
  dev(slot: number): CudaArray;
  /** The slot's host values (downloading, which waits for the stream, when only on the device). */
  host(slot: number): NDArray;
  /** The slot's host values when known without a download (from the host, or small), else undefined. */
  hostKnown(slot: number): NDArray | undefined;
  /**
   * Registers a check that kernels of this step make on the device, so no download waits mid-run:
   * a kernel that finds a bad value writes (code, value, position) into `flag`; once the run's work
   * is done the executable reads the flag and throws `explain(value, position)` for the step.
   */
  deviceCheck(explain: (value: number, position: number) => Error): { readonly flag: bigint; readonly code: number };
  /** An integer argument: a number, or the scalar value of the step's input `arg.input`. */
  intArg(arg: IntArg, step: ProgramStep): number;
  /**
   * A new device array (freed automatically when the slot dies, unless returned), held as `storage` (default: its dtype)
   * in `layout` (default NCHW).
   */
  alloc(dtype: DType, shape: readonly number[], storage?: Storage, layout?: Layout): CudaArray;
  /**
   * The slot's values held as float32 in NCHW: its own array (temp false) or, for a value held in bfloat16 or
   * channels-last, a converted copy the caller releases (temp true). For lowerings that read such inputs only sometimes.
   */
  float32(slot: number): { readonly arr: CudaArray; readonly temp: boolean };
  /** The slot's values in `layout`, in their storage: its own array (temp false) or a converted copy the caller releases. */
  inLayout(slot: number, layout: Layout): { readonly arr: CudaArray; readonly temp: boolean };
  /** A copy of a float32 array held as `storage` in `layout` (a conversion kernel); the caller releases it. */
  converted(arr: CudaArray, storage: Storage, layout: Layout): CudaArray;
  /** A temporary freed by the caller with release(). */
  temp(dtype: DType, shape: readonly number[]): CudaArray;
  /** Enqueues a generated kernel by name. */
  launch(kernel: string, grid: Dim3, block: Dim3, args: readonly KernelArg[]): void;
}

export type Runner = (s: RunState, step: ProgramStep) => Value;

export interface LowerContext {
  readonly program: Program;
  readonly mb: ModuleBuilder;
  /** The dtype and ndim of a slot, known when compiling. */
  slotDtype(slot: number): DType;
  slotNdim(slot: number): number;
  /** How a slot's value is held at run time (lower/storage-plan.ts): its dtype, or bfloat16 for some float32 activations. */
  slotStorage(slot: number): Storage;
  /** A slot's planned layout (lower/storage-plan.ts planLayout): NHWC for some bfloat16 activations, else NCHW. */
  slotLayout(slot: number): Layout;
  /** Convolutions run through cuDNN (the device loaded cuDNN: its default where found); default false. */
  readonly cudnn?: boolean;
  /** With cudnn: each convolution's algorithm is chosen by timing them all once per shape; default false. */
  readonly cudnnBenchmark?: boolean;
}

/** Turns one step into its runner (generating the kernels it needs). */
export type Lowering = (lc: LowerContext, step: ProgramStep) => Runner;

/** Row-major element strides. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

export const i64 = (v: number | bigint): KernelArg => ({ i64: v });
export const i32 = (v: number): KernelArg => ({ i32: v });
export const f64 = (v: number): KernelArg => ({ f64: v });
export const ptr = (a: CudaArray | bigint): KernelArg => ({ ptr: typeof a === 'bigint' ? a : a.ptr });
