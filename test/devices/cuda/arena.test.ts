// The split fit of the CUDA caching allocator without a GPU (a fake driver): the arena's best fit, split and
// merge, checked by hand and as a property (random takes and puts never overlap, stay inside their segments,
// and leave every segment whole once all is put back); then the allocator on top of it: memory freed by one
// size serves others without the driver, trim gives back only whole segments, a graph's pool borrows from its
// donor and gives back what it borrowed when it closes (also for blocks released after that), and
// out-of-memory trims and retries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Arena, MIN_SPLIT_BYTES } from '../../../src/devices/cuda/arena.js';
import { CachingAllocator, SEGMENT_ROUND_BYTES } from '../../../src/devices/cuda/allocator.js';
import { CudaOutOfMemoryError } from '../../../src/devices/cuda/ffi/errors.js';
import { fakeBackend } from '../../helpers/fake-memory.js';

const MiB = 2 ** 20;

test('arena: best fit, the rest split off when worth it, freed neighbours merged, whole segments reported', () => {
  const a = new Arena();
  a.addSegment(0x100000n, 10 * MiB, 'driver');
  a.addSegment(0x10000000n, 4 * MiB, 'driver');
  const x = a.take(3 * MiB)!;
  assert.equal(x.ptr, 0x10000000n, 'the 4 MiB segment is the best fit for 3 MiB');
  assert.equal(x.size, 3 * MiB, 'its 1 MiB rest is split off');
  const y = a.take(MiB)!;
  assert.equal(y.ptr, 0x10000000n + BigInt(3 * MiB), 'the split-off rest serves the next request that fits');
  const z = a.take(9 * MiB + 512 * 1024)!;
  assert.equal(z.size, 10 * MiB, 'a rest under MIN_SPLIT_BYTES stays with the chunk');
  assert.equal(a.take(512), undefined, 'nothing free is left');
  assert.equal(a.cached, 0);
  assert.equal(a.put(x.ptr), null, 'x has a neighbour in use');
  const whole = a.put(y.ptr);
  assert.deepEqual(whole && [whole.base, whole.size], [0x10000000n, 4 * MiB], 'x and y merge into their whole segment');
  assert.equal(a.cached, 4 * MiB);
  assert.equal(a.put(z.ptr)?.size, 10 * MiB);
  assert.deepEqual(a.wholeFreeSegments().map((s) => s.size).sort(), [10 * MiB, 4 * MiB].sort());
  assert.throws(() => a.put(z.ptr), /not in use/);
  const [first] = a.wholeFreeSegments();
  a.removeSegment(first!);
  assert.equal(a.segments().length, 1);
  const w = a.take(2 * MiB)!;
  assert.throws(() => a.removeSegment(a.segments()[0]!), /not free as a whole/);
  a.put(w.ptr);
});

test('arena: random takes and puts never overlap, stay in their segments, and leave every segment whole', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 24 }), { minLength: 1, maxLength: 4 }),
      fc.array(fc.record({ take: fc.boolean(), size: fc.integer({ min: 1, max: 12 * 1024 }), which: fc.nat() }), { maxLength: 80 }),
      (segmentMiB, ops) => {
        const a = new Arena();
        const segments = segmentMiB.map((m, i) => ({ base: BigInt(i + 1) * 0x100000000n, size: m * MiB }));
        for (const s of segments) a.addSegment(s.base, s.size, 'driver');
        const live: { ptr: bigint; size: number }[] = [];
        const total = segments.reduce((n, s) => n + s.size, 0);
        for (const op of ops) {
          if (op.take || live.length === 0) {
            const got = a.take(Arena.sizeOf(op.size * 1024));
            if (got) live.push(got);
          } else {
            a.put(live.splice(op.which % live.length, 1)[0]!.ptr);
          }
          const used = live.reduce((n, c) => n + c.size, 0);
          assert.equal(a.cached + used, total, 'free and used bytes add up to the segments');
          const sorted = [...live].sort((p, q) => (p.ptr < q.ptr ? -1 : 1));
          sorted.forEach((c, i) => {
            const seg = segments.find((s) => c.ptr >= s.base && c.ptr + BigInt(c.size) <= s.base + BigInt(s.size));
            assert.ok(seg, `chunk at ${c.ptr} lies inside one segment`);
            const next = sorted[i + 1];
            if (next) assert.ok(c.ptr + BigInt(c.size) <= next.ptr, 'chunks never overlap');
          });
        }
        for (const c of live) a.put(c.ptr);
        assert.equal(a.wholeFreeSegments().length, segments.length, 'all put back: every segment is whole again');
      },
    ),
    { numRuns: 200 },
  );
  assert.ok(MIN_SPLIT_BYTES >= 512);
});

test('split fit: freed memory serves other sizes without the driver; small requests keep their size classes', () => {
  const fake = fakeBackend(1000 * MiB);
  const a = new CachingAllocator(fake, false, undefined, null, 'split');
  const big = a.allocate(10 * MiB);
  assert.equal(fake.calls.alloc, 1);
  assert.equal(a.stats.driverHeld, 10 * MiB, 'a 10 MiB request asks the driver for a 10 MiB segment');
  big.release();
  const four = a.allocate(4 * MiB);
  const six = a.allocate(6 * MiB - 4096);
  assert.equal(fake.calls.alloc, 1, 'both come out of the freed 10 MiB');
  assert.equal(four.ptr, big.ptr);
  assert.equal(six.ptr, big.ptr + BigInt(4 * MiB));
  assert.equal(a.stats.inUse, 10 * MiB, 'the rest under 1 MiB stays with the second block');
  const odd = a.allocate(3 * MiB + 100);
  assert.equal(a.stats.driverHeld, 10 * MiB + 4 * MiB, `a new segment is the request rounded up to ${SEGMENT_ROUND_BYTES / MiB} MiB`);
  const small = a.allocate(3000);
  small.release();
  assert.equal(a.allocate(2900).ptr, small.ptr, 'small requests: exact size classes as before');
  four.release();
  six.release();
  odd.release();
  assert.equal(a.stats.cached, 14 * MiB, 'the small block is in use again');
  assert.equal(a.trim(), 14 * MiB, 'whole free segments go back');
  assert.equal(a.stats.driverHeld, 3072, 'only the small block still in use is held');
  a.close();
});

test('split fit: a partly used segment stays; out of memory trims whole segments and retries', () => {
  const fake = fakeBackend(20 * MiB);
  const a = new CachingAllocator(fake, false, undefined, null, 'split');
  const x = a.allocate(8 * MiB);
  const y = a.allocate(8 * MiB);
  x.release();
  const keep = a.allocate(2 * MiB);
  assert.equal(keep.ptr, x.ptr, 'taken from the freed segment');
  y.release();
  assert.equal(a.trim(), 8 * MiB, "y's segment goes back; x's, partly in use, stays");
  const z = a.allocate(4 * MiB);
  assert.equal(z.ptr, x.ptr + BigInt(2 * MiB), "served by the rest of x's segment");
  z.release();
  a.allocate(10 * MiB).release(); // from the driver: 2 + 8 (trimmed) would not fit otherwise
  assert.equal(fake.calls.alloc, 3);
  assert.throws(() => a.allocate(19 * MiB), (e: unknown) => e instanceof CudaOutOfMemoryError && /out of GPU memory allocating/.test(e.message));
  assert.equal(a.stats.driverHeld, 8 * MiB, 'the failed retry trimmed the free 10 MiB segment; the one in use stays');
  keep.release();
  a.close();
});

test("split fit: a graph's pool borrows freed memory from its donor and gives it back when it closes", () => {
  const fake = fakeBackend(1000 * MiB);
  const a = new CachingAllocator(fake, false, undefined, null, 'split');
  const run = [a.allocate(16 * MiB), a.allocate(8 * MiB)];
  for (const b of run) b.release();
  const held = a.stats.driverHeld;
  const pool = a.makePool();
  const p1 = pool.allocate(5 * MiB);
  const p2 = pool.allocate(12 * MiB);
  assert.equal(fake.calls.alloc, 2, 'the capture is served by the plain run\'s freed memory');
  assert.equal(a.stats.driverHeld, held);
  const mine = a.allocate(20 * MiB);
  assert.ok(mine.ptr !== p1.ptr && mine.ptr !== p2.ptr, 'the donor never hands out what it lent');
  assert.equal(fake.calls.alloc, 3, 'what is lent is not the donor\'s to serve');
  p1.release();
  const p3 = pool.allocate(4 * MiB);
  assert.equal(p3.ptr, p1.ptr, 'the pool reuses its own freed memory');
  p3.release();
  pool.close();
  assert.equal(a.stats.driverHeld, held + 20 * MiB, 'nothing went to the driver: borrowed chunks go back to the donor');
  p2.release(); // a graph block released after its pool closed
  mine.release();
  assert.equal(a.trim(), held + 20 * MiB, 'everything is whole in the donor again');
  assert.equal(fake.live.size, 0);
  a.close();
});

test('split fit: freeAll returns every segment, the pools\' too, and later releases free nothing twice', () => {
  const fake = fakeBackend(1000 * MiB);
  const a = new CachingAllocator(fake, false, undefined, null, 'split');
  const held = a.allocate(3 * MiB);
  const pool = a.makePool();
  const inGraph = pool.allocate(5 * MiB);
  a.allocate(2 * MiB).release();
  a.freeAll();
  assert.equal(fake.live.size, 0);
  const frees = fake.calls.free;
  held.release();
  inGraph.release();
  pool.close();
  assert.equal(fake.calls.free, frees, 'no second free');
  assert.throws(() => a.allocate(2 * MiB), /closed/);
});
