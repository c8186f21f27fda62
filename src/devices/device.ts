// The one small interface every device implements (reference, cpu, cuda). Beyond the basics a
// device states what it can do (optional members): generic code asks these, never the kind.
// Buffers live on the device; transfers are explicit; `run` may only enqueue work,
// and `download` waits for it, so an asynchronous device (CUDA) fits the same shape.
import type { DType } from '../tensor/dtype.js';
import type { NDArray } from '../tensor/ndarray.js';
import type { Program } from '../compile/program.js';
import type { Precision } from '../compile/precision.js';
import type { Rows } from './rows.js';
import type { Blas } from './cpu/blas-types.js';

/** A device's kind: the name it registers under ('reference', 'cpu', 'cuda', ...). */
export type DeviceKind = string;

/** A value resident on a device. Host devices use NDArray itself. */
export interface DeviceArray {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** How a run may treat its arguments. */
export interface RunOptions {
  /**
   * The caller applies the update results at once and reads no shared argument's old value
   * afterwards (a plain call; not the slices of numSlices, not one rank of several that must
   * all succeed first), so updates may be written into the shared variables' arguments.
   */
  readonly updatesInPlace?: boolean;
}

/** A program compiled for one device. */
export interface Executable {
  /**
   * Runs the program. `args` are the program's inputs followed by its shared values, in the
   * program's order; the result is its outputs followed by its update values. Arguments are
   * never modified, unless `options.updatesInPlace` allows it: then a device may write an update
   * into its shared variable's own argument (a replayed CUDA graph does) and return that array.
   */
  run(args: readonly DeviceArray[], options?: RunOptions): DeviceArray[];
  /**
   * Takes back result arrays of earlier runs that nobody holds any more, so later runs write into
   * them instead of allocating (optional: devices without it just let them be collected).
   */
  recycle?(arrays: readonly DeviceArray[]): void;
}

/**
 * What runs compiled programs: the float64 {@link ReferenceDevice}, the fast CPU device, or a `CudaDevice`
 * (`synkhronos/cuda`). Give one to {@link fn} as `device`, or set it with {@link setDefaultDevice}.
 */
export interface Device {
  readonly kind: DeviceKind;
  /** Human-readable, e.g. 'reference', 'cpu (OpenBLAS)', 'cuda:0 NVIDIA H200'. */
  readonly name: string;
  /** Copies a host array to the device (host devices use it as it is). */
  upload(value: NDArray): DeviceArray;
  /** Copies a device value to the host, waiting for pending work that produces it. */
  download(value: DeviceArray): NDArray;
  /** Releases a value's memory early (optional for garbage-collected host values). */
  free(value: DeviceArray): void;
  /** Compiles an optimised program for this device. */
  compile(program: Program): Executable;
  /** Waits for all enqueued work. */
  synchronize(): void;
  /** Releases every resource the device holds; idempotent. */
  close(): void;
  /**
   * A row-major GEMM on host typed arrays, where the device computes on the host (the CPU device's
   * BLAS); a shared-state training step's column split runs its weight-gradient products on it.
   */
  readonly hostGemm?: Blas;
  /**
   * Shared variables live on this device between calls: uploaded once, replaced in place by the
   * updates computed here, downloaded only when read; and device memory of a call is freed as soon
   * as the call is done with it. Absent or false: the host value is the device value (host devices).
   */
  readonly keepsSharedResident?: boolean;
  /**
   * Selects rows along axis 0 of an array on this device, on the device, as a new array the caller
   * frees (so a data set kept in a shared variable crosses the bus once). Absent: rows are read on the host.
   */
  takeRows?(value: DeviceArray, rows: Rows, what: string): DeviceArray;
  /**
   * Whether this device runs programs compiled under a precision policy other than 'fp32' (see
   * src/compile/precision.ts): true, or the reason it does not. Absent: 'fp32' only.
   */
  supportsPrecision?(precision: Precision): true | string;
}
