// CudaArray.slice without a GPU (a fake allocator): a contiguous slice is an array on its input's block at
// an offset, it keeps the block alive after its input is released, offsets add up through views and
// slices of slices, bfloat16 storage counts two bytes an element, and what does not fit is refused; and the
// subtensor lowering makes a view exactly where the slice of an intermediate is contiguous and 256-byte aligned;
// update results that share a block are copied, so every shared variable owns its buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachingAllocator, type MemoryBackend } from '../../../src/devices/cuda/allocator.js';
import { CudaArray } from '../../../src/devices/cuda/cuda-array.js';
import { ModuleBuilder } from '../../../src/devices/cuda/codegen/module.js';
import { lowerSubtensor } from '../../../src/devices/cuda/lower/indexing.js';
import { ownUpdateResults } from '../../../src/devices/cuda/executable.js';
import type { RunState } from '../../../src/devices/cuda/lower/types.js';
import type { ProgramStep } from '../../../src/compile/program.js';

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

test('the subtensor lowering: a contiguous aligned slice is a view (no kernel); strided or unaligned ones launch the copy', () => {
  const { alloc } = allocator();
  const step = (entries: unknown[]): ProgramStep =>
    ({ op: 'subtensor', attrs: { entries }, inputs: [0], output: 1 }) as unknown as ProgramStep;
  let inputKind = 'step';
  const lc = (ndimOut: number) => ({
    program: { slots: [{ kind: inputKind }, { kind: 'step' }] } as never,
    mb: new ModuleBuilder(), slotDtype: () => 'float32' as const, slotNdim: (slot: number) => (slot === 0 ? 2 : ndimOut),
    slotStorage: () => 'float32' as const, slotLayout: () => 'nchw' as const,
  });
  const whole = { kind: 'slice', start: null, stop: null, step: null };
  const index = (i: number) => ({ kind: 'index', index: i });
  const range = (a: number, b: number) => ({ kind: 'slice', start: a, stop: b, step: null });
  const run = (shape: number[], entries: unknown[], ndimOut: number) => {
    const x = new CudaArray('float32', shape, alloc.allocate(4 * shape[0]! * shape[1]!), {});
    const launches: string[] = [];
    const s = {
      dev: () => x, intArg: (a: number) => a, ctx: { gridFor: () => 1 },
      alloc: (dt: 'float32', sh: readonly number[]) => new CudaArray(dt, sh, alloc.allocate(4 * Math.max(1, sh.reduce((p, d) => p * d, 1))), {}),
      launch: (k: string) => { launches.push(k); },
    } as unknown as RunState;
    const st = step(entries);
    const out = lowerSubtensor(lc(ndimOut), st)(s, st).dev!;
    return { x, out, launches };
  };
  const row = run([4, 64], [index(2)], 1);
  assert.deepEqual([row.out.shape, row.out.ptr - row.x.ptr, row.launches.length], [[64], 512n, 0], 'row 2 of 64 floats: a view');
  assert.equal(row.out.block, row.x.block);
  const rows = run([4, 64], [range(1, 3), whole], 2);
  assert.deepEqual([rows.out.shape, rows.out.ptr - rows.x.ptr, rows.launches.length], [[2, 64], 256n, 0], 'rows 1..3: a view');
  const col = run([4, 64], [whole, index(5)], 1);
  assert.equal(col.launches.length, 1, 'a column is strided: copied');
  assert.notEqual(col.out.block, col.x.block);
  const narrow = run([4, 3], [index(1)], 1);
  assert.equal(narrow.launches.length, 1, 'a row of 3 floats starts 12 bytes in: copied');
  inputKind = 'shared';
  const ofShared = run([4, 64], [index(2)], 1);
  // A view of an argument as a result would keep the function's graph from capture.
  assert.equal(ofShared.launches.length, 1, 'a row of a shared variable is copied');
});

test('update results that share a block (overlapping slices, a view of an argument) are copied; owned ones are kept', () => {
  const { alloc } = allocator();
  const copies: [bigint, bigint, number][] = [];
  const ctx = {
    alloc: (dt: 'float32', shape: readonly number[]) => new CudaArray(dt, shape, alloc.allocate(4 * shape.reduce((p, d) => p * d, 1)), {}),
    cu: { memcpyDtoDAsync: (dst: bigint, src: bigint, bytes: number) => { copies.push([dst, src, bytes]); } },
    stream: {},
  } as never;
  const loss = new CudaArray('float32', [], alloc.allocate(4), {});
  const fresh = new CudaArray('float32', [64], alloc.allocate(256), {});
  const m = new CudaArray('float32', [4, 64], alloc.allocate(1024), {});
  const a = m.slice(0, [2, 64]);
  const b = m.slice(64, [2, 64]);
  m.release(); // the intermediate dies; its two overlapping slices go on as update results
  const arg = new CudaArray('float32', [64], alloc.allocate(256), {});
  const ofArg = arg.view();
  const [l, f, ra, rb, rv] = ownUpdateResults(ctx, [loss.view(), fresh, a, b, ofArg], 1);
  assert.equal(l!.block, loss.block, 'outputs are left alone');
  assert.equal(f, fresh, 'a result that owns its block is kept');
  for (const [r, was] of [[ra, a], [rv, ofArg]] as const) {
    assert.notEqual(r!.block, was.block, 'a shared block: copied');
    assert.equal(was.isReleased, true, 'and the view let go');
  }
  assert.equal(rb, b, 'once the first slice is copied away, the second owns the block alone: kept');
  assert.deepEqual(copies.map((c) => c[2]), [512, 256]);
  assert.equal(copies[0]![1], m.ptr, 'copied from where the slice starts');
  assert.equal(b.block.refs, 1);
  assert.equal(arg.block.refs, 1, "the argument's block is its own again");
});
