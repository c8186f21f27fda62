// CudaArray.slice without a GPU (a fake allocator): a contiguous slice is an array on its input's block at
// an offset, it keeps the block alive after its input is released, offsets add up through views and
// slices of slices, bfloat16 storage counts two bytes an element, and what does not fit is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachingAllocator, type MemoryBackend } from '../../../src/devices/cuda/allocator.js';
import { CudaArray } from '../../../src/devices/cuda/cuda-array.js';

function allocator(): { alloc: CachingAllocator; freed: bigint[] } {
  let next = 0x10000n;
  const freed: bigint[] = [];
  const backend: MemoryBackend = {
    memAlloc: (n) => { const p = next; next += BigInt(n) + 4096n; return p; },
    memFree: (p) => { freed.push(p); },
    memGetInfo: () => ({ free: 1e9, total: 1e9 }),
  };
  return { alloc: new CachingAllocator(backend), freed };
}

test('a slice shares its input\'s block at an offset and keeps it alive', () => {
  const { alloc } = allocator();
  const x = new CudaArray('float32', [4, 64], alloc.allocate(4 * 256), {});
  const row = x.slice(128, [64]);
  assert.equal(row.ptr, x.ptr + 512n);
  assert.equal(row.bytes, 256);
  assert.equal(row.block, x.block);
  assert.equal(row.hostCopy, undefined);
  const before = alloc.stats.inUse;
  x.release();
  assert.equal(alloc.stats.inUse, before, 'the block stays in use while the slice holds it');
  const again = row.view([8, 8]);
  assert.equal(again.ptr, row.ptr, 'a reshape of a slice keeps its offset');
  const inner = again.slice(8, [8]);
  assert.equal(inner.ptr, x.ptr + 512n + 32n, 'a slice of a slice adds the offsets');
  const rewritten = inner.rewritten();
  assert.equal(rewritten.ptr, inner.ptr);
  for (const a of [row, again, inner]) a.release();
  assert.equal(alloc.stats.inUse, before, 'one array still holds the block');
  rewritten.release();
  assert.ok(alloc.stats.inUse < before, 'the last array returns the block');
});

test('bfloat16 storage counts two bytes an element; out-of-range, freed and channels-last slices are refused', () => {
  const { alloc } = allocator();
  const h = new CudaArray('float32', [2, 128], alloc.allocate(512), {}, undefined, 'bfloat16');
  assert.equal(h.slice(128, [128]).ptr, h.ptr + 256n);
  assert.equal(h.slice(128, [128]).storage, 'bfloat16');
  assert.throws(() => h.slice(200, [128]), /a slice of 128 elements at 200 of an array of 256/);
  assert.throws(() => h.slice(-1, [1]), /a slice/);
  const nhwc = new CudaArray('float32', [1, 2, 2, 2], alloc.allocate(32), {}, undefined, 'float32', 'nhwc');
  assert.throws(() => nhwc.slice(0, [2]), /channels-last/);
  h.release();
  assert.throws(() => h.slice(0, [1]), /freed/);
});
