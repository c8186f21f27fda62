// The CUDA device's code generation and bookkeeping, on any machine: generated kernel sources for
// representative programs compile with this machine's nvcc (skipped, saying so, without nvcc),
// reduction plans, the caching allocator against a fake driver, and the op coverage table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '../../../src/tensor.js';
import type { Program } from '../../../src/compile/program.js';
import { lowerProgram } from '../../../src/devices/cuda/lower-program.js';
import { planReduce, mayTranspose } from '../../../src/devices/cuda/lower/reduce.js';
import { CachingAllocator, sizeClass } from '../../../src/devices/cuda/allocator.js';
import { CUDA_LOWERINGS, hostOps } from '../../../src/devices/cuda/lowering-table.js';
import { OPS } from '../../../src/ops/registry.js';
import { batchNormTrain } from '../../../src/extensions/layers.js';
import { resnetStyleBlock } from '../../helpers/resnet-block.js';
import { CudaOutOfMemoryError } from '../../../src/devices/cuda/ffi/errors.js';
import { fakeBackend } from '../../helpers/fake-memory.js';

const NVCC = process.env['NVCC'] ?? ['/usr/local/bin/nvcc', '/usr/local/cuda/bin/nvcc'].find((path) => existsSync(path)) ?? null;

function programOf(inputs: T.Variable[], outputs: T.Variable | T.Variable[]): Program {
  return T.fn({ inputs, outputs }).compiled.description.program;
}

/** A ResNet-style block under the 'bf16' policy: its activations and their gradients are held in bfloat16 (lower/storage-plan.ts). */
function bf16Block(): Program {
  const { inputs, r } = resnetStyleBlock();
  const loss = T.sum(T.square(T.mean(r, [2, 3])));
  return T.fn({ inputs, outputs: [loss, ...T.grad(loss, inputs)], precision: 'bf16' }).compiled.description.program;
}

const REPRESENTATIVE: Record<string, () => Program> = {
  'fused broadcast chain': () => {
    const x = T.matrix('x');
    const w = T.vector('w');
    const b = T.scalar('b');
    return programOf([x, w, b], T.tanh(T.add(T.mul(x, w), b)).mul(2).sub(T.sigmoid(x)).maximum(0));
  },
  'reductions (sum, mean, max over axes, argmax, var, logsumexp)': () => {
    const x = T.tensor({ dtype: 'float32', ndim: 3, name: 'x' });
    return programOf([x], [T.sum(x, 1), T.mean(x, [0, 2]), T.max(x, -1, true), T.argmax(x, 1), x.var(0), T.logsumexp(x, 2)]);
  },
  'matmul with broadcast batches (operand copies, bfloat16 rounding for medium precision)': () => {
    const a = T.tensor({ dtype: 'float32', ndim: 3, name: 'a' });
    const m = T.matrix('m');
    return programOf([a, m], [T.matmul(a, m), T.dot(m, m)]);
  },
  "precision 'bf16': matmul and conv2d with both gradients (bfloat16 rounding and widening kernels)": () => {
    const x = T.tensor4('x');
    const w = T.tensor4('w');
    const m = T.matrix('m');
    const y = T.conv2d(x, w, { padding: 1 });
    const loss = T.sum(T.mul(y, y)).add(T.sum(T.dot(m, m)));
    return T.fn({ inputs: [x, w, m], outputs: [y, ...T.grad(loss, [x, w, m])], precision: 'bf16' }).compiled.description.program;
  },
  "precision 'bf16' with activations held in bfloat16: conv, batch norm, relu, pooling, a residual add and their gradients": () => bf16Block(),
  'transpose': () => {
    const x = T.tensor({ dtype: 'float32', ndim: 3, name: 'x' });
    return programOf([x], T.dimshuffle(x, [2, 0, 1]));
  },
  'softmax and logSoftmax': () => {
    const x = T.matrix('x');
    return programOf([x], [T.softmax(x), T.logSoftmax(x), T.softmax(x, 0)]);
  },
  'random draws (Philox) with number and array parameters': () => {
    const rs = T.randomStreams(3);
    const m = T.vector('m');
    return programOf([m], [rs.uniform([4, 5]), rs.normal([3, 7], { mean: m, std: 2 }), rs.bernoulli([9], { p: 0.3, dtype: 'int32' })]);
  },
  'integer and bool elementwise, casts, comparisons': () => {
    const i = T.tensor({ dtype: 'int32', ndim: 2, name: 'i' });
    const u = T.tensor({ dtype: 'uint8', ndim: 1, name: 'u' });
    const f = T.tensor({ dtype: 'float64', ndim: 2, name: 'f' });
    return programOf([i, u, f], [T.mod(i, 3), T.intDiv(i, u), T.where(T.gt(f, 0), i, f), T.cast(f, 'int32'), T.cast(f, 'bool'), T.sum(u)]);
  },
  'int32 wrap-around arithmetic, exact integer powers, var with a fractional ddof': () => {
    const i = T.tensor({ dtype: 'int32', ndim: 2, name: 'i' });
    const u = T.tensor({ dtype: 'uint8', ndim: 1, name: 'u' });
    const f = T.matrix('f');
    return programOf(
      [i, u, f],
      [T.abs(T.square(i)), T.pow(i, 31), T.pow(i, i), T.pow(u, u), T.sub(T.neg(T.mul(i, i)), T.add(i, u)), T.variance(f, 1, false, 1.5)],
    );
  },
  'conv2d (groups, stride, dilation, padding, same) and both gradients, float32 and float64': () => {
    const x = T.tensor({ dtype: 'float32', ndim: 4, name: 'x' });
    const w = T.tensor({ dtype: 'float32', ndim: 4, name: 'w' });
    const xd = T.tensor({ dtype: 'float64', ndim: 4, name: 'xd' });
    const wd = T.tensor({ dtype: 'float64', ndim: 4, name: 'wd' });
    const y = T.conv2d(x, w, { stride: 2, padding: 1, dilation: [1, 2], groups: 2 });
    const yd = T.conv2d(xd, wd, { padding: 'same', dilation: 2 });
    const mixed = T.conv2d(x, wd, { padding: 'same' });
    const [gx, gw] = T.grad(T.add(T.sum(T.square(y)), T.sum(T.mul(T.conv2d(x, w, { padding: 'same' }), 2))), [x, w]);
    const [gxd, gwd] = T.grad(T.sum(T.square(yd)), [xd, wd]);
    return programOf([x, w, xd, wd], [y, yd, mixed, gx!, gw!, gxd!, gwd!]);
  },
  'max and average pooling, their gradients and the gradient of the max-pool gradient': () => {
    const x = T.tensor({ dtype: 'float32', ndim: 4, name: 'x' });
    const xd = T.tensor({ dtype: 'float64', ndim: 3, name: 'xd' });
    const xi = T.tensor({ dtype: 'int32', ndim: 4, name: 'xi' });
    const opts = { kernel: 3, stride: 2, padding: 1 } as const;
    const ym = T.maxPool2d(x, opts);
    const ya = T.avgPool2d(x, opts);
    const yz = T.avgPool2d(xd, { ...opts, countIncludePad: false });
    const g = T.grad(T.add(T.sum(T.mul(ym, ym)), T.sum(T.exp(ya))), x);
    const gd = T.grad(T.sum(T.square(yz)), xd);
    const gg = T.grad(T.sum(T.mul(T.grad(T.sum(T.mul(ym, ym)), x), x)), x);
    return programOf([x, xd, xi], [ym, ya, yz, g, gd, gg, T.maxPool2d(xi, { kernel: 2 }), T.avgPool2d(xi, { kernel: 2 })]);
  },
  'batch norm: statistics, normalisation and the gradient passes (float32 NCHW, float64 rows)': () => {
    const x = T.tensor4('x');
    const xd = T.matrix('xd', 'float64');
    const [gamma, beta] = [T.vector('gamma'), T.vector('beta')];
    const { y, mean, variance } = batchNormTrain(x, gamma, beta);
    const [gd, bd] = [T.vector('gd', 'float64'), T.vector('bd', 'float64')];
    const yd = batchNormTrain(xd, gd, bd).y;
    const grads = T.grad(T.add(T.sum(T.square(y)), T.sum(T.cast(T.square(yd), 'float32'))), [x, gamma, beta, xd]);
    return programOf([x, gamma, beta, xd, gd, bd], [y, mean, variance, ...grads]);
  },
  'take gradients (incTake add with repeated indices) and set/inc on a take': () => {
    const emb = T.matrix('emb');
    const ed = T.tensor({ dtype: 'float64', ndim: 3, name: 'ed' });
    const iv = T.tensor({ dtype: 'int32', ndim: 2, name: 'iv' });
    const xi = T.vector('xi', 'int32');
    const g = T.grad(T.sum(T.square(T.take(emb, iv, 0))), emb);
    const gd = T.grad(T.sum(T.take(ed, T.constant([0, 2, 0], { dtype: 'int32' }), 1)), ed);
    const set = T.setSubtensor(emb.take(T.constant([1, 1, -1], { dtype: 'int32' }), 0), T.constant(2));
    const incInt = T.incSubtensor(xi.take(T.constant([0, 0], { dtype: 'int32' })), T.constant(3, { dtype: 'int32' }));
    const setScalarIdx = T.setSubtensor(xi.take(T.constant(1, { dtype: 'int32' })), T.constant(true));
    return programOf([emb, ed, iv, xi], [g, gd, set, incInt, setScalarIdx]);
  },
};

const NVCC_SKIP = NVCC === null ? 'nvcc not found (set NVCC or install the CUDA toolkit)' : false;
test('generated kernel sources of representative programs compile with nvcc for sm_90', { skip: NVCC_SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'synk-cuda-codegen-'));
  for (const [name, make] of Object.entries(REPRESENTATIVE)) {
    const lowered = lowerProgram(make());
    assert.ok(lowered.units.length > 0, `${name}: no kernels generated`);
    const file = join(dir, `${name.replace(/[^a-z]+/gi, '-')}.cu`);
    writeFileSync(file, lowered.source);
    const r = spawnSync(NVCC!, ['-std=c++17', '-arch=sm_90', '-c', '-x', 'cu', file, '-o', '/dev/null'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${name}: nvcc failed on ${file}\n${r.stderr}`);
    for (const k of lowered.units.flatMap((u) => u.kernels)) assert.match(
      lowered.source,
      new RegExp(`extern "C" __global__ void (__launch_bounds__\\(256\\) )?${k}\\(`),
    );
  }
});

test('every op of the table has a CUDA rule; only scalarFromNumber runs on the host', () => {
  assert.deepEqual(Object.keys(CUDA_LOWERINGS).sort(), Object.keys(OPS).sort());
  assert.deepEqual(hostOps(), ['scalarFromNumber']);
});

test('reduction plans: rows, columns, transposes, size-1 and empty axes', () => {
  assert.deepEqual(planReduce([4, 5], [1]), { kind: 'rows', rows: 4, n: 5, perm: null });
  assert.deepEqual(planReduce([4, 5], [0]), { kind: 'cols', outer: 1, n: 4, inner: 5 });
  assert.deepEqual(planReduce([2, 3, 4], [1]), { kind: 'cols', outer: 2, n: 3, inner: 4 });
  assert.deepEqual(planReduce([2, 3, 4], [0, 1]), { kind: 'cols', outer: 1, n: 6, inner: 4 });
  assert.deepEqual(planReduce([2, 3, 4], [0, 1, 2]), { kind: 'rows', rows: 1, n: 24, perm: null });
  assert.deepEqual(planReduce([2, 3, 4], [0, 2]), { kind: 'rows', rows: 3, n: 8, perm: [1, 0, 2] });
  assert.deepEqual(planReduce([2, 1, 4], [0, 2]), { kind: 'rows', rows: 1, n: 8, perm: null });
  assert.deepEqual(planReduce([3, 1], [1]), { kind: 'rows', rows: 3, n: 1, perm: null });
  assert.deepEqual(planReduce([3, 0], [1]), { kind: 'rows', rows: 3, n: 0, perm: null });
  assert.deepEqual(planReduce([0, 3], [1]), { kind: 'rows', rows: 0, n: 0, perm: null });
  // Batch norm's axes: two passes where partials combine and the first pass has rows enough (2 per multiprocessor).
  assert.deepEqual(planReduce([8, 48, 5, 7], [0, 2, 3], true, 132), { kind: 'twoStage', outer: 8, keep: 48, inner: 35 });
  assert.deepEqual(planReduce([2, 3, 4, 5], [0, 2, 3], true, 132), { kind: 'rows', rows: 3, n: 40, perm: [1, 0, 2, 3] });
  assert.deepEqual(planReduce([8, 48, 5, 7], [0, 2, 3]), { kind: 'rows', rows: 48, n: 280, perm: [1, 0, 2, 3] });
  assert.equal(mayTranspose(3, [0, 2]), true);
  assert.equal(mayTranspose(3, [1]), false);
  assert.equal(mayTranspose(2, null), true);
});

test('caching allocator: size classes, reuse without the driver, trim and retry on out-of-memory', () => {
  assert.equal(sizeClass(1), 512);
  assert.equal(sizeClass(513), 1024);
  assert.equal(sizeClass(4096), 4096);
  assert.equal(sizeClass(4097), 5120);
  assert.equal(sizeClass(2 ** 30), 2 ** 30);
  for (let b = 1; b < 1e7; b = Math.ceil(b * 1.37)) assert.ok(sizeClass(b) >= b && sizeClass(b) <= Math.max(b + 511, b * 1.25), `class of ${b}`);

  const fake = fakeBackend(10_000);
  const a = new CachingAllocator(fake);
  const b1 = a.allocate(3000);
  b1.release();
  const b2 = a.allocate(2900);
  assert.equal(b2.ptr, b1.ptr, 'a freed block of the same class is reused');
  assert.equal(fake.calls.alloc, 1);
  b2.retain();
  b2.release();
  assert.equal(a.stats.inUse, 3072, 'a retained block stays in use until its last release');
  b2.release();
  assert.deepEqual({ inUse: a.stats.inUse, cached: a.stats.cached }, { inUse: 0, cached: 3072 });
  // 8000 bytes do not fit beside the cached 3072: the cache is trimmed and the allocation retried.
  const big = a.allocate(8000);
  assert.equal(fake.calls.free, 1);
  assert.equal(a.stats.cached, 0);
  assert.throws(() => a.allocate(5000), (e: unknown) => e instanceof CudaOutOfMemoryError && /out of GPU memory allocating 5000 bytes/.test(e.message));
  big.release();
  assert.equal(a.allocate(0).ptr, 0n);
  a.close();
  assert.throws(() => a.allocate(10), /closed/);
});

test('caching allocator, loose fit: a large request takes the smallest cached block up to twice its class; small ones and exact fit do not', () => {
  const MiB = 2 ** 20;
  for (const fit of ['exact', 'loose'] as const) {
    const fake = fakeBackend(100 * MiB);
    const a = new CachingAllocator(fake, false, undefined, null, fit);
    const blocks = [a.allocate(8 * MiB), a.allocate(3 * MiB), a.allocate(5 * MiB), a.allocate(4096)];
    const [b8, b3, b5] = blocks;
    for (const b of blocks) b.release();
    const four = a.allocate(4 * MiB);
    const small = a.allocate(2048);
    if (fit === 'exact') {
      assert.equal(fake.calls.alloc, 6, 'exact fit: a 4 MiB request and a 2 KiB one come from the driver');
    } else {
      assert.equal(four.ptr, b5!.ptr, 'the smallest cached class within twice the request (5 MiB, not 8 MiB; 3 MiB is too small)');
      assert.equal(four.size, b5!.size, 'the block keeps its own size');
      assert.equal(fake.calls.alloc, 5, 'only the small request reaches the driver');
      assert.equal(a.stats.inUse, b5!.size + small.size);
      four.release();
      assert.equal(a.allocate(5 * MiB).ptr, b5!.ptr, 'a loosely used block goes back to its own class');
      const nine = a.allocate(9 * MiB);
      assert.notEqual(nine.ptr, b8!.ptr, 'a block of less than the request is never taken');
      assert.equal(a.allocate(2 * MiB).ptr, b3!.ptr, '3 MiB is within twice 2 MiB');
      const pool = a.makePool();
      assert.equal(pool.allocate(6 * MiB).ptr, b8!.ptr, "a graph's pool takes its donor's larger cached block too");
    }
    a.close();
  }
});

test("caching allocator: a graph's private pool takes over cached blocks of its size; peaks count the pools", () => {
  const fake = fakeBackend(100_000);
  const a = new CachingAllocator(fake);
  const x = a.allocate(3000);
  const y = a.allocate(6000);
  x.release();
  y.release();
  assert.deepEqual([a.stats.cached, a.stats.driverHeld, a.stats.peakInUse], [3072 + 6144, 3072 + 6144, 3072 + 6144]);
  const pool = a.makePool();
  const p1 = pool.allocate(2900);
  assert.equal(p1.ptr, x.ptr, 'the cached block of the same class moves to the pool');
  const p2 = pool.allocate(20_000);
  assert.equal(fake.calls.alloc, 3, 'a size the cache lacks comes from the driver');
  assert.equal(a.stats.cached, 6144, 'the donated block left the cache for good');
  assert.equal(a.stats.driverHeld, 3072 + 6144 + sizeClass(20_000), 'the pool\'s bytes count as held');
  p1.release();
  p2.release();
  const again = a.allocate(3000);
  assert.notEqual(again.ptr, x.ptr, 'a block the pool owns never returns to the parent');
  again.release();
  pool.close();
  assert.equal(a.stats.driverHeld, 6144 + 3072, 'a closed pool gives its blocks back to the driver');
  a.resetPeak();
  assert.equal(a.stats.peakDriverHeld, a.stats.driverHeld);
  a.close();
});

test('caching allocator: freeAll returns blocks still in use, the pools\' too, and a later release frees nothing twice', () => {
  const fake = fakeBackend(100_000);
  const a = new CachingAllocator(fake);
  const held = a.allocate(4000);
  const pool = a.makePool();
  const inGraph = pool.allocate(8000);
  a.allocate(1000).release();
  assert.equal(fake.live.size, 3);
  a.freeAll();
  assert.equal(fake.live.size, 0, 'nothing stays allocated once the device is gone');
  assert.equal(a.stats.driverHeld, 0);
  const frees = fake.calls.free;
  held.release();
  inGraph.release();
  pool.close();
  assert.equal(fake.calls.free, frees, 'releasing after freeAll frees nothing again');
  assert.throws(() => a.allocate(10), /closed/);
});
