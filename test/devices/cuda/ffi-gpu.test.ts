// The CUDA bindings on a real GPU. Every test skips, saying why, where cudaAvailable()
// finds no usable device (or a library it needs is missing).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  CudaError, CudaLibraryNotFoundError, CudaOutOfMemoryError, CU_STREAM_NON_BLOCKING, compileCuda, cudaAvailable, loadCublas,
  loadCudaDriver, loadNccl, loadNvrtc, rowMajorGemm, type CudaDriver, type RowMajorGemmSpec,
} from '../../../src/devices/cuda/ffi/index.js';

const available = cudaAvailable();

let gpu: { cu: CudaDriver; cc: { major: number; minor: number } } | undefined;

/** Device 0's primary context, retained once and current on this thread; null (skipped) without a GPU. */
function withGpu(t: TestContext): { cu: CudaDriver; cc: { major: number; minor: number } } | null {
  if (!available.ok) {
    t.skip(`no usable CUDA device: ${available.reason.split('\n')[0]}`);
    return null;
  }
  if (!gpu) {
    const cu = loadCudaDriver();
    cu.init(0);
    const dev = cu.deviceGet(0);
    cu.ctxSetCurrent(cu.primaryCtxRetain(dev)); // released when the process exits
    gpu = { cu, cc: cu.computeCapability(dev) };
  }
  return gpu;
}

function skipIfMissing<T>(t: TestContext, load: () => T): T | null {
  try {
    return load();
  } catch (e) {
    if (e instanceof CudaLibraryNotFoundError) {
      t.skip(`${e.library} not installed`);
      return null;
    }
    throw e;
  }
}

test('device facts', (t) => {
  const g = withGpu(t);
  if (!g) return;
  const { cu, cc } = g;
  const name = cu.deviceName(0);
  const info = cu.memGetInfo();
  t.diagnostic(`${name}: sm_${cc.major}${cc.minor}, ${cu.multiprocessorCount(0)} SMs, ${cu.deviceTotalMem(0)} bytes, driver ${cu.driverVersion()}`);
  assert.ok(name.length > 0 && cc.major >= 3 && cu.multiprocessorCount(0) > 0);
  assert.ok(info.free > 0 && info.free <= info.total && info.total <= cu.deviceTotalMem(0));
});

test('memory: allocate, copy both ways, device to device, memset, pinned and registered host memory', async (t) => {
  const g = withGpu(t);
  if (!g) return;
  const { cu } = g;
  const n = 1024;
  const a = cu.memAlloc(n * 4);
  const b = cu.memAlloc(n * 4);
  const x = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 7);
  cu.memcpyHtoD(a, x);
  cu.memcpyDtoD(b, a, n * 4);
  const y = new Float32Array(n);
  cu.memcpyDtoH(y, b);
  assert.deepEqual(y, x);
  cu.memsetD32(b + 16n, new Uint32Array(Float32Array.of(3.25).buffer)[0] ?? 0, 2);
  cu.memsetD8(b, 0, 8);
  cu.memcpyDtoH(y, b, 32);
  assert.deepEqual([...y.subarray(0, 8)], [0, 0, x[2], x[3], 3.25, 3.25, x[6], x[7]]);

  const stream = cu.streamCreate(CU_STREAM_NON_BLOCKING);
  const shared = new Float32Array(new SharedArrayBuffer(n * 4)).map((_, i) => i);
  cu.memHostRegister(shared);
  cu.memcpyHtoDAsync(a, shared, stream);
  cu.memsetD32(b, 0, n, stream);
  cu.memcpyDtoDAsync(b, a, n * 4, stream);
  const pinned = cu.memAllocHost(n * 4);
  cu.memcpyDtoHAsync(new Float32Array(pinned.buffer), b, stream);
  await cu.streamSynchronizeAsync(stream);
  assert.deepEqual(new Float32Array(pinned.buffer), Float32Array.from(shared));
  cu.memHostUnregister(shared);
  cu.memFreeHost(pinned.ptr);
  cu.streamDestroy(stream);
  cu.memFree(a);
  cu.memFree(b);
});

test('an impossible allocation is CudaOutOfMemoryError', (t) => {
  const g = withGpu(t);
  if (!g) return;
  assert.throws(() => g.cu.memAlloc(2 ** 50), (e: unknown) => e instanceof CudaOutOfMemoryError && e.code === 2 && e.call === 'cuMemAlloc_v2');
});

const AXPB = `
extern "C" __global__ void axpb(float *y, const float *x, int n, float a, double b, long long off, unsigned int mask) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + (float)b + (float)off + (float)(mask & 1u);
}`;

test('NVRTC CUBIN and PTX load, launch with every argument kind, timed by events', async (t) => {
  const g = withGpu(t);
  if (!g) return;
  const { cu, cc } = g;
  if (!skipIfMissing(t, () => loadNvrtc())) return;
  const n = 1000;
  const x = cu.memAlloc(n * 4);
  const y = cu.memAlloc(n * 4);
  cu.memcpyHtoD(x, Float32Array.from({ length: n }, (_, i) => i));
  const stream = cu.streamCreate();
  const [start, end] = [cu.eventCreate(), cu.eventCreate()];
  for (const arch of [`sm_${cc.major}${cc.minor}`, `compute_${cc.major}${cc.minor}`]) {
    const compiled = compileCuda(AXPB, { arch, name: 'axpb.cu' });
    let mod;
    try {
      mod = cu.moduleLoadData(compiled.image);
    } catch (e) {
      if (e instanceof CudaError && /PTX|JIT/.test(e.status)) {
        t.diagnostic(`${arch}: the driver cannot load this NVRTC's output (${e.status}); skipped`);
        continue;
      }
      throw e;
    }
    const fn = cu.moduleGetFunction(mod, 'axpb');
    cu.memsetD8(y, 0, n * 4);
    cu.eventRecord(start, stream);
    cu.launchKernel(fn, Math.ceil(n / 128), 128, [{ ptr: y }, { ptr: x }, { i32: n }, { f32: 2 }, { f64: 0.5 }, { i64: 1000n }, { u32: 3 }], { stream });
    cu.eventRecord(end, stream);
    await cu.eventSynchronizeAsync(end);
    assert.ok(cu.eventElapsedTime(start, end) >= 0);
    const out = new Float32Array(n);
    cu.memcpyDtoH(out, y);
    for (let i = 0; i < n; i++) assert.equal(out[i], 2 * i + 1001.5, `${arch} y[${i}]`);
    cu.moduleUnload(mod);
  }
  cu.eventDestroy(start);
  cu.eventDestroy(end);
  cu.streamDestroy(stream);
  cu.memFree(x);
  cu.memFree(y);
});

/** float32 -> bfloat16 bits (exact for the small integers used here). */
function bf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer.slice(0));
  return Uint16Array.from(bits, (b) => b >>> 16);
}

test('cuBLAS: row-major GEMM in float32, float64, TF32, bfloat16, single and strided-batched', (t) => {
  const g = withGpu(t);
  if (!g) return;
  const { cu } = g;
  const cublas = skipIfMissing(t, () => loadCublas());
  if (!cublas) return;
  const handle = cublas.create();
  const stream = cu.streamCreate();
  cublas.setStream(handle, stream);
  const [m, n, k, batch] = [3, 4, 5, 2];
  const A = Float64Array.from({ length: batch * m * k }, (_, i) => (i % 7) - 3);
  const B = Float64Array.from({ length: batch * k * n }, (_, i) => (i % 5) - 2);
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const want = new Float64Array(batch * m * n);
      for (let q = 0; q < batch; q++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) {
        const a = A[q * m * k + (transA ? p * m + i : i * k + p)] ?? NaN;
        const b = B[q * k * n + (transB ? j * k + p : p * n + j)] ?? NaN;
        want[q * m * n + i * n + j] = (want[q * m * n + i * n + j] ?? 0) + a * b;
      }
      const cases: [RowMajorGemmSpec['dtype'], boolean, ArrayBufferView, ArrayBufferView, 4 | 8, 2 | 4 | 8][] = [
        ['float32', false, Float32Array.from(A), Float32Array.from(B), 4, 4],
        ['float32', true, Float32Array.from(A), Float32Array.from(B), 4, 4],
        ['float64', false, A, B, 8, 8],
        ['bfloat16', false, bf16(Float32Array.from(A)), bf16(Float32Array.from(B)), 4, 2],
      ];
      for (const [dtype, tf32, hostA, hostB, outSize, inSize] of cases) {
        const [a, b, c] = [cu.memAlloc(hostA.byteLength), cu.memAlloc(hostB.byteLength), cu.memAlloc(batch * m * n * outSize)];
        cu.memcpyHtoD(a, hostA);
        cu.memcpyHtoD(b, hostB);
        const spec: RowMajorGemmSpec = { m, n, k, a, b, c, transA, transB, dtype, tf32 };
        const out = outSize === 8 ? new Float64Array(batch * m * n) : new Float32Array(batch * m * n);
        const label = `${dtype}${tf32 ? '/tf32' : ''} transA=${transA} transB=${transB} (input ${inSize} bytes)`;
        cu.memsetD8(c, 0, out.byteLength);
        rowMajorGemm(cublas, handle, spec); // the first matrices only
        cu.streamSynchronize(stream);
        cu.memcpyDtoH(out, c);
        assert.deepEqual([...out.subarray(0, m * n)], [...want.subarray(0, m * n)], `${label} single`); // small integers: exact even in TF32 / bf16
        rowMajorGemm(cublas, handle, { ...spec, batch: { strideA: m * k, strideB: k * n, strideC: m * n, batchCount: batch } });
        cu.streamSynchronize(stream);
        cu.memcpyDtoH(out, c);
        assert.deepEqual([...out], [...want], `${label} batched`);
        cu.memFree(a);
        cu.memFree(b);
        cu.memFree(c);
      }
    }
  }
  cublas.destroy(handle);
  cu.streamDestroy(stream);
});

test('NCCL single rank: the unique id passes by value into ncclCommInitRank', (t) => {
  const g = withGpu(t);
  if (!g) return;
  const { cu } = g;
  const nccl = skipIfMissing(t, () => loadNccl());
  if (!nccl) return;
  const comm = nccl.commInitRank(1, nccl.getUniqueId(), 0);
  const stream = cu.streamCreate();
  const buf = cu.memAlloc(64 * 8);
  cu.memcpyHtoD(buf, Float64Array.from({ length: 64 }, (_, i) => i));
  nccl.allReduce(buf, buf, 64, 'float64', 'sum', comm, stream);
  cu.streamSynchronize(stream);
  const out = new Float64Array(64);
  cu.memcpyDtoH(out, buf);
  assert.deepEqual(out, Float64Array.from({ length: 64 }, (_, i) => i));
  assert.equal(nccl.commGetAsyncError(comm), 0);
  assert.deepEqual([nccl.commCount(comm), nccl.commUserRank(comm)], [1, 0]);
  nccl.commDestroy(comm);
  cu.memFree(buf);
  cu.streamDestroy(stream);
});

test('NCCL across GPUs: one worker thread per rank, the id shared through a SharedArrayBuffer', async (t) => {
  if (!available.ok || available.deviceCount < 2) {
    return t.skip(available.ok ? `needs 2+ GPUs, found ${available.deviceCount}` : `no usable CUDA device: ${available.reason.split('\n')[0]}`);
  }
  const nccl = skipIfMissing(t, () => loadNccl());
  if (!nccl) return;
  const nranks = Math.min(available.deviceCount, 4);
  const id = new SharedArrayBuffer(128);
  nccl.getUniqueId(new Uint8Array(id));
  const count = 4096;
  interface RankResult { rank: number; reduced: number[]; gathered: number[]; asyncError: number; ranks: number[] }
  const results = await Promise.all(Array.from({ length: nranks }, (_, rank) => new Promise<RankResult>((resolve, reject) => {
    const w = new Worker(new URL('./nccl-rank-worker.js', import.meta.url), { workerData: { rank, nranks, id, count } });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`rank ${rank} exited with ${code}`)));
  })));
  const total = (nranks * (nranks + 1)) / 2;
  for (const r of results) {
    assert.deepEqual(r.reduced, [total], `rank ${r.rank} all-reduce`);
    assert.deepEqual(r.gathered, [total], `rank ${r.rank} all-gather`);
    assert.equal(r.asyncError, 0);
    assert.deepEqual(r.ranks, [nranks, r.rank, r.rank]);
  }
});
