// The CUDA FFI layer on a machine without a GPU: library lookup and its errors, kernel
// parameter packing, the row-major GEMM mapping, and every binding driven against
// stand-in libraries built with the C compiler. GPU runs live in ffi-gpu.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import {
  CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_DEFAULT_MATH, CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_SIGNATURES, CUBLAS_TF32_TENSOR_OP_MATH,
  CUDA_DRIVER_LIBRARY, CUDA_R_16BF, CUDA_R_32F, CudaError, CudaLibraryNotFoundError, CudaOutOfMemoryError, CUBLAS_COMPUTE_32F,
  DRIVER_SIGNATURES, NCCL_DATA_TYPE, NCCL_RED_OP, NCCL_SIGNATURES, cudaAvailable, loadCublas, loadCudaDriver, loadLibrary, loadNccl,
  packKernelParams, rowMajorGemm, rowMajorToColumnMajor, searchDirectories, type KernelArg, type RowMajorGemmSpec,
} from '../../../src/devices/cuda/ffi/index.js';
import { FAKE_CUBLAS_C, FAKE_DRIVER_C, FAKE_NCCL_C, buildFakeLibrary } from './fake-libraries.js';
import { NcclCommunicator } from '../../../src/devices/cuda/nccl-communicator.js';
import type { CudaContext } from '../../../src/devices/cuda/context.js';
import { CommAbortedError } from '../../../src/comm/communicator.js';

const isolated = { env: {}, toolkitParents: [], systemDirs: [], useLoaderPath: false } as const;

test('searchDirectories: CUDA_PATH, CUDA_HOME, toolkits newest first, then system folders', () => {
  const root = mkdtempSync(join(tmpdir(), 'synk-local-'));
  for (const d of ['cuda-12.4', 'cuda', 'cuda-13.0', 'cuda-12.10', 'not-cuda']) mkdirSync(join(root, d));
  const dirs = searchDirectories({
    dirs: ['/opt/first'],
    env: { CUDA_PATH: '/opt/cp', CUDA_HOME: '/opt/ch' },
    toolkitParents: [root],
    systemDirs: ['/usr/lib/x86_64-linux-gnu'],
  });
  assert.deepEqual(dirs, [
    '/opt/first',
    '/opt/cp/lib64', '/opt/cp/targets/x86_64-linux/lib',
    '/opt/ch/lib64', '/opt/ch/targets/x86_64-linux/lib',
    join(root, 'cuda/targets/x86_64-linux/lib'), join(root, 'cuda-13.0/targets/x86_64-linux/lib'),
    join(root, 'cuda-12.10/targets/x86_64-linux/lib'), join(root, 'cuda-12.4/targets/x86_64-linux/lib'),
    join(root, 'cuda/lib64'),
    '/usr/lib/x86_64-linux-gnu',
  ]);
});

test('a missing library throws CudaLibraryNotFoundError naming every name and place tried', () => {
  const spec = { display: 'libsynkmissing (test)', sonames: ['libsynkmissing.so.9', 'libsynkmissing.so'] };
  const err = (() => {
    try {
      loadLibrary(spec, { dirs: ['/opt/a'], env: { CUDA_PATH: '/opt/cp' }, toolkitParents: [], systemDirs: ['/usr/lib/x86_64-linux-gnu'] });
    } catch (e) {
      return e;
    }
    assert.fail('expected an error');
  })();
  assert.ok(err instanceof CudaLibraryNotFoundError);
  assert.deepEqual(err.searched, ['/opt/a', '/opt/cp/lib64', '/opt/cp/targets/x86_64-linux/lib', '/usr/lib/x86_64-linux-gnu']);
  for (const text of ['libsynkmissing (test)', 'libsynkmissing.so.9', 'libsynkmissing.so', '/opt/a', '/opt/cp/lib64', 'system loader']) {
    assert.ok(err.message.includes(text), `message names ${text}:\n${err.message}`);
  }
  assert.equal(err.attempts.length, 2); // the two bare sonames handed to the system loader
});

test('an explicit path is the only candidate, and a file that is not a library says so', () => {
  assert.throws(() => loadCudaDriver({ path: '/nonexistent/libcuda.so.1' }), (e: unknown) =>
    e instanceof CudaLibraryNotFoundError && /\/nonexistent\/libcuda\.so\.1: no such file/.test(e.message) && /explicit path/.test(e.message));
  const bogus = join(mkdtempSync(join(tmpdir(), 'synk-bogus-')), 'libcuda.so.1');
  writeFileSync(bogus, 'not an ELF file');
  assert.throws(() => loadLibrary(CUDA_DRIVER_LIBRARY, { ...isolated, dirs: [join(bogus, '..')] }), (e: unknown) =>
    e instanceof CudaLibraryNotFoundError && e.message.includes(`${bogus}: exists but could not be loaded`));
});

test('cudaAvailable never throws and gives a reason when CUDA is absent', (t) => {
  const absent = cudaAvailable({ path: '/nonexistent/libcuda.so.1' });
  assert.equal(absent.ok, false);
  if (!absent.ok) assert.match(absent.reason, /libcuda.*not found[\s\S]*\/nonexistent\/libcuda\.so\.1/);
  const here = cudaAvailable();
  t.diagnostic(here.ok ? `CUDA here: ${here.deviceCount} device(s), driver ${here.driverVersion}` : `no CUDA here: ${here.reason.split('\n')[0]}`);
  if (!here.ok) assert.ok(here.reason.length > 0);
});

test('packKernelParams lays each argument in its own little-endian 8-byte slot', () => {
  const args: KernelArg[] = [
    { ptr: 0x7f1234567890n }, { i32: -2 }, { u32: 0xffffffff }, { f32: 1.5 }, { f64: -0.25 }, { i64: -3n }, { u64: 2n ** 64n - 1n },
  ];
  const p = packKernelParams(args);
  assert.deepEqual(p.offsets, [0, 8, 16, 24, 32, 40, 48]);
  assert.deepEqual(p.sizes, [8, 4, 4, 4, 8, 8, 8]);
  const hex = (o: number, n: number) => p.bytes.subarray(o, o + n).toString('hex');
  assert.equal(hex(0, 8), '90785634127f0000');
  assert.equal(hex(8, 4), 'feffffff');
  assert.equal(hex(16, 4), 'ffffffff');
  assert.equal(hex(24, 4), '0000c03f'); // 1.5f
  assert.equal(hex(32, 8), '000000000000d0bf'); // -0.25
  assert.equal(hex(40, 8), 'fdffffffffffffff');
  assert.equal(hex(48, 8), 'ffffffffffffffff');
  assert.equal(p.views.length, 7);
  assert.equal(p.views[3]?.byteOffset, p.bytes.byteOffset + 24);
  assert.throws(() => packKernelParams([{ i32: 2 ** 31 }]), RangeError);
  assert.throws(() => packKernelParams([{ u32: 1.5 }]), RangeError);
  assert.throws(() => packKernelParams([{ ptr: 5 as unknown as bigint }]), TypeError);
  assert.throws(() => packKernelParams([{} as KernelArg]), TypeError);
});

/** cuBLAS's column-major GEMM, element by element (the oracle for the mapping). */
function colMajorGemm(
  ta: number,
  tb: number,
  m: number,
  n: number,
  k: number,
  A: Float64Array,
  lda: number,
  B: Float64Array,
  ldb: number,
  C: Float64Array,
  ldc: number,
): void {
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const a = ta === CUBLAS_OP_N ? A[i + p * lda] : A[p + i * lda];
        const b = tb === CUBLAS_OP_N ? B[p + j * ldb] : B[j + p * ldb];
        s += (a ?? NaN) * (b ?? NaN);
      }
      C[i + j * ldc] = s;
    }
  }
}

test('rowMajorToColumnMajor: cuBLAS column-major arithmetic on row-major storage gives C = op(A).op(B)', () => {
  const [m, n, k] = [3, 4, 5];
  const rand = (len: number) => Float64Array.from({ length: len }, (_, i) => ((i * 37) % 11) - 5);
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const pad of [0, 2]) {
        const lda = (transA ? m : k) + pad;
        const ldb = (transB ? k : n) + pad;
        const ldc = n + pad;
        const A = rand((transA ? k : m) * lda);
        const B = rand((transB ? n : k) * ldb);
        const want = new Float64Array(m * n);
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) {
          const a = transA ? A[p * lda + i] : A[i * lda + p];
          const b = transB ? B[j * ldb + p] : B[p * ldb + j];
          want[i * n + j] = (want[i * n + j] ?? 0) + (a ?? NaN) * (b ?? NaN);
        }
        const spec: RowMajorGemmSpec = { m, n, k, a: 1n, b: 2n, c: 3n, transA, transB, lda, ldb, ldc, dtype: 'float64' };
        const g = rowMajorToColumnMajor(spec);
        assert.equal(g.a, 2n); // operands swapped
        const C = new Float64Array(m * ldc);
        colMajorGemm(g.transa, g.transb, g.m, g.n, g.k, B, g.lda, A, g.ldb, C, g.ldc);
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) assert.equal(
          C[i * ldc + j],
          want[i * n + j],
          `transA=${transA} transB=${transB} pad=${pad} (${i},${j})`,
        );
      }
    }
  }
});

test('driver binding against a stand-in libcuda: values, errors, handles, kernel params', async (t) => {
  const fake = buildFakeLibrary('libcuda.so.1', DRIVER_SIGNATURES, FAKE_DRIVER_C);
  if ('skip' in fake) return t.skip(fake.skip);
  const cu = loadCudaDriver({ path: fake.path });
  assert.deepEqual(cudaAvailable({ path: fake.path }), { ok: true, deviceCount: 2, driverVersion: 13000, path: fake.path });
  assert.equal(cu.deviceName(cu.deviceGet(1)), 'Fake GPU 1');
  assert.deepEqual(cu.computeCapability(0), { major: 9, minor: 0 });
  assert.equal(cu.multiprocessorCount(0), 132);
  assert.equal(cu.deviceTotalMem(0), 150012345678);
  assert.deepEqual(cu.memGetInfo(), { free: 1000, total: 150012345678 });
  assert.throws(() => cu.deviceAttribute(12345, 0), (e: unknown) => e instanceof CudaError && !(e instanceof CudaOutOfMemoryError) &&
    e.call === 'cuDeviceGetAttribute' && e.status === 'CUDA_ERROR_INVALID_VALUE' && e.code === 1 && /invalid argument/.test(e.message));

  const ptr = cu.memAlloc(64);
  assert.equal(typeof ptr, 'bigint');
  assert.equal(ptr, 0x7f0000000000n);
  const src = new Float32Array(new SharedArrayBuffer(64)).map((_, i) => i + 0.5);
  cu.memcpyHtoD(ptr, src);
  const back = new Float32Array(16);
  cu.memcpyDtoH(back, ptr);
  assert.deepEqual(back, Float32Array.from(src));
  cu.memsetD32(ptr + 8n, 0xdeadbeef, 2);
  const words = new Uint32Array(4);
  cu.memcpyDtoH(words, ptr, 16);
  assert.deepEqual([...words.subarray(2)], [0xdeadbeef, 0xdeadbeef]);
  assert.throws(() => cu.memAlloc(1 << 20), (e: unknown) => e instanceof CudaOutOfMemoryError && e.call === 'cuMemAlloc_v2' &&
    e.status === 'CUDA_ERROR_OUT_OF_MEMORY' && /1048576 bytes/.test(e.message));

  const mod = cu.moduleLoadData(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46));
  const fn = cu.moduleGetFunction(mod, 'scale');
  const stream = cu.streamCreate();
  const lib = koffi.load(fake.path);
  lib.func('int fake_set_param_count(int n)')(4);
  cu.launchKernel(fn, [7, 2], 128, [{ ptr }, { i32: -9 }, { f32: 0.5 }, { i64: 2n ** 40n }], { stream, sharedMemBytes: 1024 });
  const dims = new Uint32Array(9);
  const params = Buffer.alloc(64);
  lib.func('int fake_get_launch(_Out_ uint32_t *d, _Out_ uint8_t *p)')(dims, params);
  assert.deepEqual([...dims], [7, 2, 1, 128, 1, 1, 1024, 1, 1]);
  assert.equal(params.readBigUInt64LE(0), ptr);
  assert.equal(params.readInt32LE(8), -9);
  assert.equal(params.readFloatLE(16), 0.5);
  assert.equal(params.readBigInt64LE(24), 2n ** 40n);
  cu.streamSynchronize(stream);
  await cu.streamSynchronizeAsync(stream);
  assert.equal(cu.eventElapsedTime(cu.eventCreate(), cu.eventCreate()), 1.25);
});

test('NCCL binding against a stand-in libnccl: the 128-byte unique id crosses by value', (t) => {
  const fake = buildFakeLibrary('libnccl.so.2', NCCL_SIGNATURES, FAKE_NCCL_C);
  if ('skip' in fake) return t.skip(fake.skip);
  const nccl = loadNccl({ path: fake.path });
  assert.equal(nccl.version(), 23007);
  const shared = new Uint8Array(new SharedArrayBuffer(256), 64, 128); // as a worker would see it
  nccl.getUniqueId(shared);
  assert.deepEqual([...shared.subarray(0, 4)], [1, 8, 15, 22]);
  let sum = 0n;
  for (const b of shared) sum = (sum * 31n + BigInt(b)) & (2n ** 64n - 1n);
  const comm = nccl.commInitRank(4, shared, 3);
  assert.equal(BigInt(koffi.load(fake.path).func('uint64_t fake_last_sum(void)')()), sum);
  assert.equal(nccl.commUserRank(comm), 3);
  assert.deepEqual(nccl.commInitAll(2, [5, 6]).map((c) => nccl.commUserRank(c)), [5, 6]);
  assert.throws(() => nccl.commInitRank(2, shared, 2), (e: unknown) =>
    e instanceof CudaError && e.library === 'nccl' && e.status === 'ncclInvalidArgument' && /invalid argument \(fake\)/.test(e.message));

  const driver = buildFakeLibrary('libcuda.so.1', DRIVER_SIGNATURES, FAKE_DRIVER_C);
  if ('skip' in driver) return;
  const stream = loadCudaDriver({ path: driver.path }).streamCreate(); // a driver stream is accepted as cudaStream_t
  nccl.allReduce(0x1000n, 0x2000n, 1000, 'bfloat16', 'avg', comm, stream);
  const out = new BigUint64Array(7);
  koffi.load(fake.path).func('int fake_last_collective(_Out_ uint64_t *out)')(out);
  assert.deepEqual([...out], [0x1000n, 0x2000n, 1000n, BigInt(NCCL_DATA_TYPE.bfloat16), BigInt(NCCL_RED_OP.avg), 0x7703n, 0x5000n]);
  assert.throws(() => nccl.groupEnd(), (e: unknown) => e instanceof CudaError && e.call === 'ncclGroupEnd' && e.status === 'ncclInvalidUsage');
});

test('a job abort reaches ncclCommAbort once (a stand-in libnccl), and the communicator refuses collectives after it', async (t) => {
  const fake = buildFakeLibrary('libnccl.so.2', NCCL_SIGNATURES, FAKE_NCCL_C);
  if ('skip' in fake) return t.skip(fake.skip);
  const nccl = loadNccl({ path: fake.path });
  const comm = nccl.commInitRank(4, new Uint8Array(128), 2);
  // abort() touches neither the GPU nor its context: what the worker's interrupt handler calls when the job ends.
  const ctx = { isClosed: false, index: 0 } as unknown as CudaContext;
  const group = new NcclCommunicator(nccl, comm, ctx, 2, 4);
  group.abort('the job is being aborted');
  group.abort('again'); // idempotent: NCCL frees the communicator in the first call
  group.close();
  const out = new BigUint64Array(4);
  const calls = koffi.load(fake.path).func('int fake_aborts(_Out_ uint64_t *out)')(out) as number;
  assert.equal(calls, 1);
  assert.equal(out[0], 0x7702n, 'the rank\'s own communicator');
  await assert.rejects(group.allReduce(new Float32Array(4)), (e: unknown) =>
    e instanceof CommAbortedError && /aborted \(the job is being aborted\)/.test(e.message));
});

test('cuBLAS binding against a stand-in libcublas: status table, scalars, int64 strides, dispatch', (t) => {
  const fake = buildFakeLibrary('libcublas.so.13', CUBLAS_SIGNATURES, FAKE_CUBLAS_C);
  if ('skip' in fake) return t.skip(fake.skip);
  const cublas = loadCublas({ path: fake.path });
  const lib = koffi.load(fake.path);
  const record = () => {
    const r = new Float64Array(24);
    lib.func('int fake_get_record(_Out_ double *out)')(r);
    return [...r];
  };
  lib.func('int fake_set_fail(int c)')(3);
  assert.throws(() => cublas.create(), (e: unknown) => e instanceof CudaOutOfMemoryError && e.status === 'CUBLAS_STATUS_ALLOC_FAILED');
  const h = cublas.create();
  const driver = buildFakeLibrary('libcuda.so.1', DRIVER_SIGNATURES, FAKE_DRIVER_C);
  if (!('skip' in driver)) {
    cublas.setStream(h, loadCudaDriver({ path: driver.path }).streamCreate());
    assert.deepEqual(record().slice(0, 2), [99, 1]);
  }
  cublas.setMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH);
  cublas.setMathMode(h, CUBLAS_DEFAULT_MATH);

  const base: RowMajorGemmSpec = { m: 3, n: 4, k: 5, a: 0x1000n, b: 0x2000n, c: 0x3000n, alpha: 2, beta: 0.5, dtype: 'float32' };
  rowMajorGemm(cublas, h, base);
  assert.deepEqual(record().slice(0, 14), [1, CUBLAS_OP_N, CUBLAS_OP_N, 4, 3, 5, 2, 0x2000, 4, 0x1000, 5, 0.5, 0x3000, 4]);

  rowMajorGemm(cublas, h, { ...base, dtype: 'bfloat16', transA: true, batch: { strideA: 15, strideB: 2 ** 33, strideC: 12, batchCount: 7 } });
  assert.deepEqual(record().slice(0, 23), [2, CUBLAS_OP_N, CUBLAS_OP_T, 4, 3, 5, 2, 0x2000, CUDA_R_16BF, 4, 2 ** 33, 0x1000, CUDA_R_16BF, 3, 15,
    0.5, 0x3000, CUDA_R_32F, 4, 12, 7, CUBLAS_COMPUTE_32F, -1]);

  rowMajorGemm(cublas, h, { ...base, tf32: true, batch: { strideA: 1, strideB: 1, strideC: 1, batchCount: 2 } });
  assert.equal(record()[21], CUBLAS_COMPUTE_32F_FAST_TF32);
});
