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
