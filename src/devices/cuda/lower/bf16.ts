// bfloat16 copies on the GPU for the products of the 'bf16' precision policy (and matmulPrecision
// 'medium'): float32 -> bfloat16 bits (round to nearest even) and back. bfloat16 data lives in uint8
// arrays of twice the element count: the device keeps no bfloat16 dtype of its own.
import type { CudaArray } from '../cuda-array.js';
import { i64, ptr, type RunState } from './types.js';

/** Bytes of one bfloat16 element. */
export const BF16_BYTES = 2;

/** A temporary of `count` bfloat16 elements (the caller releases it). */
export function bf16Temp(s: RunState, count: number): CudaArray {
  return s.temp('uint8', [BF16_BYTES * count]);
}

/** Rounds `count` float32 elements at `src` into bfloat16 at `dst` (device pointers). */
export function roundIntoBf16(s: RunState, kernel: string, dst: bigint, src: bigint, count: number): void {
  if (count > 0) s.launch(kernel, s.ctx.gridFor(count), 256, [ptr(dst), ptr(src), i64(count)]);
}

/** A bfloat16 copy of a float32 array (a temporary the caller releases). */
export function bf16Copy(s: RunState, kernel: string, x: CudaArray): CudaArray {
  const out = bf16Temp(s, x.size);
  roundIntoBf16(s, kernel, out.ptr, x.ptr, x.size);
  return out;
}

/** Widens the bfloat16 elements of `src` into the float32 array `out` (exact). */
export function widenBf16(s: RunState, kernel: string, out: CudaArray, src: CudaArray): void {
  if (out.size > 0) s.launch(kernel, s.ctx.gridFor(out.size), 256, [ptr(out), ptr(src), i64(out.size)]);
}
