// A fake driver for the CUDA caching allocator's tests: addresses handed out in order, a capacity
// past which cuMemAlloc fails with the driver's out-of-memory error, and counts of the calls.
import { CudaOutOfMemoryError } from '../../src/devices/cuda/ffi/errors.js';

export function fakeBackend(capacity: number) {
  let next = 0x1000n;
  const live = new Map<bigint, number>();
  const calls = { alloc: 0, free: 0 };
  return {
    calls,
    live,
    memAlloc(bytes: number): bigint {
      const used = [...live.values()].reduce((a, b) => a + b, 0);
      if (used + bytes > capacity) throw new CudaOutOfMemoryError('cuda', 'cuMemAlloc_v2', 2, 'CUDA_ERROR_OUT_OF_MEMORY', 'out of memory', `${bytes} bytes`);
      calls.alloc++;
      const p = next;
      next += BigInt(bytes);
      live.set(p, bytes);
      return p;
    },
    memFree(ptr: bigint): void {
      calls.free++;
      live.delete(ptr);
    },
    memGetInfo: () => ({ free: capacity - [...live.values()].reduce((a, b) => a + b, 0), total: capacity }),
  };
}
