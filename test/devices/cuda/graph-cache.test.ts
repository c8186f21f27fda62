// The CUDA graph cache's decisions, without a GPU: a fake driver and allocator stand in for the
// device and the "program" is a function that allocates like a real run. Checks when a graph is
// captured and replayed, that its intermediates come from a private pool, that inputs are copied in
// and updates written back (guarded by the check flag), and when a program is left to plain runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NDArray } from '../../../src/tensor/ndarray.js';
import type { Program } from '../../../src/compile/program.js';
import type { DeviceArray } from '../../../src/devices/device.js';
import { CachingAllocator, type MemoryBackend } from '../../../src/devices/cuda/allocator.js';
import { CudaArray } from '../../../src/devices/cuda/cuda-array.js';
import type { CudaContext } from '../../../src/devices/cuda/context.js';
import type { CUfunction } from '../../../src/devices/cuda/ffi/types.js';
import { GraphCache, NotCapturable, type Capture, type DeviceCheck, type Enqueued, type GraphHost } from '../../../src/devices/cuda/graph.js';

/** x (input), p (shared) -> output sum, update p' = p + x: the slots of a real program of that shape. */
function program(op = 'add'): Program {
  const f32 = { dtype: 'float32' as const, broadcastable: [false] };
  return {
    slots: [{ ...f32, kind: 'input' }, { ...f32, kind: 'shared' }, { ...f32, kind: 'step' }, { ...f32, kind: 'step' }],
    inputs: [0],
    shareds: [{ slot: 1, sharedId: 'p' }],
    constants: [],
    steps: [{ op, attrs: {}, inputs: [0, 1], output: 2 }, { op: 'add', attrs: {}, inputs: [2, 0], output: 3 }],
    outputs: [3],
    updates: [{ sharedId: 'p', slot: 2 }],
  } as unknown as Program;
}

interface Calls { enqueues: number; captures: number; launches: number; copies: number; guarded: unknown[][]; destroyed: number }

function fakeHost(options: { failCapture?: 'notCapturable' | 'genuine'; aliasArg?: boolean; check?: boolean } = {}) {
  let next = 0x1000n;
  const memAlloc = (n: number): bigint => {
    const p = next;
    next += BigInt(n) + 512n;
    return p;
  };
  const backend: MemoryBackend = { memAlloc, memFree: () => {}, memGetInfo: () => ({ free: 1e9, total: 1e9 }) };
  const allocator = new CachingAllocator(backend);
  const calls: Calls = { enqueues: 0, captures: 0, launches: 0, copies: 0, guarded: [], destroyed: 0 };
  let capturing = false;
  const flag = new CudaArray('int32', [4], allocator.allocate(16), {});
  const ctx = {
    allocator, stream: {}, gridFor: () => 1, isClosed: false, makeCurrent: () => {},
    errorFlag: () => flag,
    launch: (_fn: CUfunction, _g: unknown, _b: unknown, args: unknown[]) => { calls.guarded.push(args); },
    staging: { upload: () => { calls.copies++; } },
    cu: {
      streamBeginCapture: () => { capturing = true; calls.captures++; },
      streamEndCapture: () => { if (!capturing) throw new Error('not capturing'); capturing = false; return {}; },
      graphInstantiate: () => ({}),
      graphLaunch: () => { calls.launches++; },
      graphExecDestroy: () => { calls.destroyed++; },
      graphDestroy: () => {},
      memcpyHtoD: () => {},
      memcpyDtoDAsync: () => { calls.copies++; },
    },
  } as unknown as CudaContext;
  const checks: DeviceCheck[] = options.check ? [{ step: 0, explain: () => new RangeError('bad index') }] : [];
  const host: GraphHost & { failNext: boolean } = {
    ctx,
    failNext: false,
    enqueue(args: readonly DeviceArray[], capture: Capture | null): Enqueued {
      calls.enqueues++;
      if (capture && options.failCapture === 'notCapturable') throw new NotCapturable('a host read');
      if (capture && options.failCapture === 'genuine') throw new RangeError('bad shapes');
      const shape = (args[0] as CudaArray | NDArray).shape;
      const mid = new CudaArray('float32', shape, allocator.allocate(4 * shape[0]!), ctx);
      const out = options.aliasArg ? (args[1] as CudaArray).view() : new CudaArray('float32', shape, allocator.allocate(4 * shape[0]!), ctx);
      return { results: [out, mid], checks };
    },
    readChecks: () => {},
  };
  return { host, calls, ctx, allocator };
}

const GUARD = {} as CUfunction;
const input = (n: number) => new NDArray('float32', [n]);

test('the second call with the same shapes captures, later calls replay; inputs are copied in, updates written back', () => {
  const { host, calls, ctx } = fakeHost({ check: true });
  const cache = new GraphCache(host, program(), GUARD, {});
  const p = new CudaArray('float32', [4], ctx.allocator.allocate(16), ctx);
  assert.equal(cache.run([input(4), p]), null, 'first call: plain');
  assert.equal(cache.state, 'warming');
  const r2 = cache.run([input(4), p]);
  assert.ok(r2, 'second call: captured and launched');
  assert.equal(cache.state, 'captured');
  assert.deepEqual([calls.captures, calls.launches, calls.enqueues], [1, 1, 1]);
  // The write-back kernel: into p's buffer, from the pool, guarded by the check flag.
  const [dst, , words, flagArg] = calls.guarded[0] as [{ ptr: bigint }, { ptr: bigint }, { i64: number }, { ptr: bigint }];
  assert.equal(dst.ptr, p.ptr);
  assert.equal(words.i64, 4);
  assert.equal(flagArg.ptr, ctx.errorFlag().ptr);
  for (let k = 0; k < 3; k++) assert.ok(cache.run([input(4), p]));
  assert.deepEqual([calls.captures, calls.launches, calls.enqueues], [1, 4, 1], 'replays run no host program');
  assert.equal(calls.copies, 4, 'the input is copied into the static buffer before every launch');
  const [output, updated] = r2 as CudaArray[];
  assert.notEqual(output!.block.pool, ctx.allocator, 'the graph\'s results live in its private pool');
  assert.ok(output!.block.pool, 'a pool block');
  assert.equal(updated!.ptr, p.ptr, 'the update result is the shared buffer itself');
  assert.equal(updated!.hostCopy, undefined, 'and carries no stale host copy');
  cache.close();
  assert.equal(calls.destroyed, 1);
});

test('new shapes or new shared buffers capture again; buffers that change every call end in plain runs', () => {
  const { host, calls, ctx } = fakeHost();
  const cache = new GraphCache(host, program(), GUARD, {});
  const buf = () => new CudaArray('float32', [4], ctx.allocator.allocate(16), ctx);
  const p = buf();
  cache.run([input(4), p]);
  cache.run([input(4), p]);
  assert.equal(calls.captures, 1);
  cache.run([input(4), buf()]);
  assert.equal(calls.captures, 2, 'another shared buffer: captured again');
  assert.equal(cache.run([input(8), new CudaArray('float32', [8], ctx.allocator.allocate(32), ctx)]), null, 'new shapes warm up first');
  for (let k = 0; k < 4; k++) cache.run([input(4), buf()]);
  assert.equal(cache.state, 'plain');
  assert.equal(cache.run([input(4), p]), null);
});

test('a replay needs every argument of the captured shape and dtype and the same shared buffer', () => {
  const { host, calls, ctx } = fakeHost();
  const cache = new GraphCache(host, program(), GUARD, {});
  const p = new CudaArray('float32', [4], ctx.allocator.allocate(16), ctx);
  cache.run([input(4), p]);
  assert.ok(cache.run([input(4), p]), 'captured');
  assert.ok(cache.run([input(4), p]), 'the same arguments replay');
  assert.deepEqual([calls.captures, calls.launches], [1, 2]);
  assert.equal(cache.run([new NDArray('float32', [2, 2]), p]), null, 'as many elements in another shape: a new shape warms up');
  assert.equal(cache.run([new NDArray('float64', [4]), p]), null, 'another dtype runs plainly');
  const view = p.view();
  assert.ok(cache.run([input(4), view]), 'another array on the same buffer replays');
  assert.deepEqual([calls.captures, calls.launches], [1, 3]);
  const elsewhere = new CudaArray('float32', [4], ctx.allocator.allocate(16), ctx);
  assert.ok(cache.run([input(4), elsewhere]));
  assert.equal(calls.captures, 2, 'another buffer: captured again');
  assert.ok(cache.run([input(4), elsewhere]));
  assert.deepEqual([calls.captures, calls.launches], [2, 5]);
  cache.close();
});

test('what cannot be captured runs plainly: host reads, results that alias arguments, random draws; genuine errors are left to the plain run', () => {
  for (const [what, made, want] of [
    ['a host read', fakeHost({ failCapture: 'notCapturable' }), 'plain'],
    ['an aliased result', fakeHost({ aliasArg: true }), 'plain'],
    ['a genuine error', fakeHost({ failCapture: 'genuine' }), 'warming'],
  ] as const) {
    const cache = new GraphCache(made.host, program(), GUARD, {});
    const p = new CudaArray('float32', [4], made.ctx.allocator.allocate(16), made.ctx);
    cache.run([input(4), p]);
    assert.equal(cache.run([input(4), p]), null, `${what}: the call runs plainly`);
    assert.equal(cache.state, want, what);
  }
  const { host } = fakeHost();
  assert.equal(new GraphCache(host, program('randomUniform'), GUARD, {}).state, 'plain', 'random draws are never replayed');
  assert.equal(new GraphCache(host, program(), undefined, {}).state, 'plain', 'no write-back kernel: no graph for a program with updates');
});

test('no graph writes back into a buffer that another shared variable views (a slice or reshape kept as a value)', () => {
  const { host, calls, ctx } = fakeHost();
  // x, p, q -> x + p + x; p' = x + p (q only rides along as an argument).
  const prog = program();
  const two = {
    ...prog,
    slots: [...prog.slots.slice(0, 2), { dtype: 'float32', broadcastable: [false], kind: 'shared' }, ...prog.slots.slice(2)],
    shareds: [{ slot: 1, sharedId: 'p' }, { slot: 2, sharedId: 'q' }],
    steps: [{ op: 'add', attrs: {}, inputs: [0, 1], output: 3 }, { op: 'add', attrs: {}, inputs: [3, 0], output: 4 }],
    outputs: [4],
    updates: [{ sharedId: 'p', slot: 3 }],
  } as unknown as Program;
  const cache = new GraphCache(host, two, GUARD, {});
  const q = new CudaArray('float32', [8], ctx.allocator.allocate(32), ctx);
  const p = q.slice(4, [4]);
  assert.equal(p.ptr, q.ptr + 16n, 'the slice starts 4 floats into q');
  cache.run([input(4), p, q]);
  assert.equal(cache.run([input(4), p, q]), null, 'p is part of q: the call runs plainly');
  assert.equal(calls.captures, 0, 'nothing was captured');
  const own = new CudaArray('float32', [4], ctx.allocator.allocate(16), ctx);
  assert.ok(cache.run([input(4), own, q]), 'p in a buffer of its own: captured and replayed');
  assert.equal(calls.captures, 1);
  cache.close();
});
