// The arrays a host executable returns belong to the caller, who may write into them. A step may
// return its input or a view of it (reshape, rebroadcast, a no-op cast or sumToLike), so a result
// can share storage with an argument (the caller's input, a shared variable's value), a constant
// of the program, or another result. Only those are copied; a result computed into fresh storage
// is handed over as it is.
import type { NDArray } from '../../tensor/ndarray.js';

/** The storage identity of an array (views share it with the array they view). */
export type Storage = ArrayBufferLike;

export function storageOf(a: NDArray): Storage {
  return a.data.buffer;
}

/**
 * Replaces, in place, each result that shares storage with `foreign` or with an earlier result by
 * a copy. Returns the number of copies made.
 */
export function detachResults(results: NDArray[], foreign: ReadonlySet<Storage>): number {
  let copies = 0;
  const seen = new Set<Storage>();
  for (let k = 0; k < results.length; k++) {
    const r = results[k]!;
    const storage = storageOf(r);
    if (r.size > 0 && (foreign.has(storage) || seen.has(storage))) {
      results[k] = r.copy();
      copies++;
    }
    seen.add(storage);
  }
  return copies;
}
