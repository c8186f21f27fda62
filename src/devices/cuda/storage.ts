// How the CUDA device holds an array's elements. Every array has its dtype's own type, except that
// a float32 array may be held in bfloat16 (the top half of each float32, rounded to nearest even):
// the device's choice for activations under the 'bf16' precision policy (lower/storage-plan.ts).
// Users never see bfloat16: downloads widen, and results are always held in their dtype.
import { bytesPerElement, type DType } from '../../tensor/dtype.js';

/** How an array's elements are held: its dtype's own type, or bfloat16 for a float32 array. */
export type Storage = DType | 'bfloat16';

/** Bytes of one element held as `storage`. */
export function storageBytes(storage: Storage): number {
  return storage === 'bfloat16' ? 2 : bytesPerElement(storage);
}

/**
 * How a rank-4 array's elements are ordered in memory. Its shape is always the user's (N, C, H, W);
 * 'nhwc' keeps the channels innermost (physical order N, H, W, C), as cuDNN's tensor-core kernels and
 * PyTorch's channels_last want it: the device's choice for activations under the 'bf16' policy
 * (lower/storage-plan.ts). Every other array, and every result, is 'nchw' (row-major in its shape).
 */
export type Layout = 'nchw' | 'nhwc';

/** Element strides of the logical axes (n, c, h, w) of an array of `shape` held in `layout`. */
export function layoutStrides(shape: readonly number[], layout: Layout): number[] {
  if (layout === 'nchw' || shape.length !== 4) {
    const out = new Array<number>(shape.length);
    let s = 1;
    for (let i = shape.length - 1; i >= 0; i--) { out[i] = s; s *= shape[i]!; }
    return out;
  }
  const [, c, h, w] = shape as [number, number, number, number];
  return [h * w * c, 1, w * c, c];
}
