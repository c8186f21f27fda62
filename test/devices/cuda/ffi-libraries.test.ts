// The bindings against the real NVRTC, cuBLAS, NCCL and cuDNN libraries, where they are installed
// (found by the normal search: CUDA_PATH, /usr/local/cuda*, system folders, loader path).
// None of this needs a GPU: loading binds every declared symbol (so a misspelt or missing
// export fails here), NVRTC compiles, and the status-name functions answer.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { findCublasLt, findCudnn } from '../../../src/devices/cuda/libraries.js';
import {
  CudaCompileError, CudaError, CudaLibraryNotFoundError, compileCuda, cudaAvailable, decodeNcclVersion, loadCublas, loadNccl, loadNvrtc,
  type Cublas, type CublasLt, type Cudnn, type Nccl, type Nvrtc,
} from '../../../src/devices/cuda/ffi/index.js';

function loadOrSkip<T>(t: TestContext, load: () => T): T | null {
  try {
    return load();
  } catch (e) {
    if (!(e instanceof CudaLibraryNotFoundError)) throw e;
    t.skip(`${e.library} not installed here (searched ${e.searched.join(', ')})`);
    return null;
  }
}

const KERNEL = `
extern "C" __global__ void scale(float *y, const float *x, int n, float a) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i];
}`;

test('NVRTC compiles a kernel to CUBIN (sm_80) and PTX', (t) => {
  const nvrtc = loadOrSkip<Nvrtc>(t, () => loadNvrtc());
  if (!nvrtc) return;
  const { major, minor } = nvrtc.version();
  t.diagnostic(`${nvrtc.path}: NVRTC ${major}.${minor}`);
  assert.ok(major >= 11);
  const real = compileCuda(KERNEL, { arch: 'sm_80', name: 'scale.cu', options: ['-default-device'], fastMath: true });
  assert.ok(real.cubin && real.cubin.length > 100, 'a CUBIN comes back');
  assert.deepEqual([...real.cubin.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]); // ELF
  assert.equal(real.image, real.cubin);
  assert.ok(real.options.includes('--gpu-architecture=sm_80') && real.options.includes('--use_fast_math'));
  const virt = compileCuda(KERNEL, { arch: 'compute_80' });
  assert.equal(virt.cubin, null);
  assert.ok(virt.ptx?.includes('.entry scale'), 'the PTX names the kernel');
  assert.equal(virt.image[virt.image.length - 1], 0, 'a PTX image is NUL-terminated for cuModuleLoadData');
  const header = compileCuda('#include "twice.h"\nextern "C" __global__ void k(float *x) { x[0] = twice(x[0]); }', {
    arch: 'compute_80', headers: [{ name: 'twice.h', source: '__device__ float twice(float v) { return 2 * v; }' }],
  });
  assert.ok(header.ptx?.includes('.entry k'));
});

test('NVRTC reports a syntax error as CudaCompileError carrying the log', (t) => {
  const nvrtc = loadOrSkip<Nvrtc>(t, () => loadNvrtc());
  if (!nvrtc) return;
  assert.throws(() => compileCuda('extern "C" __global__ void broken(float *x) { x[0] = ; }', { arch: 'sm_80', name: 'broken.cu' }),
    (e: unknown) => e instanceof CudaCompileError && e.code === 6 && e.status === 'NVRTC_ERROR_COMPILATION' &&
      e.programName === 'broken.cu' && /broken\.cu\(1\): error/.test(e.log) && e.message.includes(e.log.trim()));
  assert.throws(() => compileCuda(KERNEL, { options: ['--no-such-option'] }),
    (e: unknown) => e instanceof CudaCompileError && e.status === 'NVRTC_ERROR_INVALID_OPTION');
});

test('cuBLAS loads with every GEMM symbol and names its statuses', (t) => {
  const cublas = loadOrSkip<Cublas>(t, () => loadCublas());
  if (!cublas) return;
  t.diagnostic(cublas.path);
  assert.equal(cublas.describe(3).name, 'CUBLAS_STATUS_ALLOC_FAILED');
  assert.equal(cublas.describe(15).name, 'CUBLAS_STATUS_NOT_SUPPORTED');
  if (!cudaAvailable().ok) {
    // Without a driver cuBLAS cannot start; the failure arrives as a typed error.
    assert.throws(() => cublas.create(), (e: unknown) => e instanceof CudaError && e.library === 'cublas' && e.call === 'cublasCreate_v2');
  }
});

test('cuBLASLt loads (beside cuBLAS where that is found) with every symbol bound, and names its statuses', (t) => {
  const lt = loadOrSkip<CublasLt>(t, () => findCublasLt());
  if (!lt) return;
  t.diagnostic(`${lt.path}: cublasLtGetVersion ${lt.version()}`);
  assert.ok(lt.version() >= 110000, 'cuBLASLt 11 or later');
  assert.equal(lt.describe(15).name, 'CUBLAS_STATUS_NOT_SUPPORTED');
});

test('NCCL loads with every symbol, reports its version and makes a unique id', (t) => {
  const nccl = loadOrSkip<Nccl>(t, () => loadNccl());
  if (!nccl) return;
  const v = decodeNcclVersion(nccl.version());
  t.diagnostic(`${nccl.path}: NCCL ${v.major}.${v.minor}.${v.patch}`);
  assert.equal(v.major, 2);
  assert.match(nccl.describe(5).message, /invalid usage/i);
  const id = nccl.getUniqueId(new Uint8Array(new SharedArrayBuffer(128)));
  assert.ok(id.some((b) => b !== 0), 'the id has content');
});

test('cuDNN 9 loads with every declared symbol and reports its version', (t) => {
  const cudnn = loadOrSkip<Cudnn>(t, () => findCudnn());
  if (!cudnn) return;
  t.diagnostic(`${cudnn.path}: cuDNN ${cudnn.version.major}.${cudnn.version.minor}.${cudnn.version.patch}`);
  assert.ok(cudnn.version.major >= 9);
  assert.equal(cudnn.describe(2000).name, 'CUDNN_STATUS_BAD_PARAM');
  assert.ok(cudnn.describe(2000).message.length > 0, 'cudnnGetErrorString answers');
});
