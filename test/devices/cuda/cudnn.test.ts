// The cuDNN binding and the cuDNN branch of the conv2d lowerings, without a GPU: a stand-in libcudnn
// (fake-libraries.ts) records every number that crosses the FFI, the search is run over temporary
// folders, and the lowerings run against a stand-in RunState whose context plans with the stand-in library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import {
  CUDNN_FMA_MATH, CUDNN_SIGNATURES, CUDNN_TENSOR_OP_MATH, CudaError, CudaLibraryNotFoundError, CudaLibraryVersionError, DRIVER_SIGNATURES,
  decodeCudnnVersion, loadCudaDriver, loadCudnn, searchDirectories, type Cudnn,
} from '../../../src/devices/cuda/ffi/index.js';
import { cudnnSearchOptions, findCudnn, pythonPackageDirs } from '../../../src/devices/cuda/libraries.js';
import { cudnnUnsupported, planCudnnConv, runCudnnConv, type CudnnConvProblem } from '../../../src/devices/cuda/cudnn-conv.js';
import { convGeometry, type Conv2dAttrs } from '../../../src/ops/conv.js';
import { cudaRegistration } from '../../../src/devices/cuda/register.js';
import { FAKE_CUDNN_C, FAKE_DRIVER_C, buildFakeLibrary } from './fake-libraries.js';

const fake = buildFakeLibrary('libcudnn.so.9', CUDNN_SIGNATURES, FAKE_CUDNN_C);
const raw = 'path' in fake ? koffi.load(fake.path) : null;
const record = (): number[] => {
  const r = new Float64Array(128);
  raw!.func('int fake_get_record(_Out_ double *out)')(r);
  return [...r];
};
const reset = (): void => { raw!.func('int fake_reset(void)')(); };
const setVersion = (v: number): void => { raw!.func('int fake_set_version(size_t v)')(v); };

test('decodeCudnnVersion: cuDNN 9 numbers (MAJOR*10000) and older ones (MAJOR*1000)', () => {
  assert.deepEqual(decodeCudnnVersion(90100), { major: 9, minor: 1, patch: 0 });
  assert.deepEqual(decodeCudnnVersion(91000), { major: 9, minor: 10, patch: 0 });
  assert.deepEqual(decodeCudnnVersion(92200), { major: 9, minor: 22, patch: 0 });
  assert.deepEqual(decodeCudnnVersion(8907), { major: 8, minor: 9, patch: 7 });
  assert.deepEqual(decodeCudnnVersion(7605), { major: 7, minor: 6, patch: 5 });
});

test('cuDNN binding loads a stand-in libcudnn with every declared symbol, and names its statuses', (t) => {
  if ('skip' in fake) return t.skip(fake.skip);
  const cudnn = loadCudnn({ path: fake.path });
  assert.deepEqual(cudnn.version, { major: 9, minor: 22, patch: 0 });
  assert.equal(cudnn.path, fake.path);
  const d = cudnn.describe(3002);
  assert.equal(d.name, 'CUDNN_STATUS_NOT_SUPPORTED_SHAPE');
  assert.equal(d.message, 'shape not supported (fake)');
  assert.throws(() => cudnn.check('cudnnConvolutionForward', 2000, 'algo 1'),
    (e: unknown) => e instanceof CudaError && e.library === 'cudnn' && e.status === 'CUDNN_STATUS_BAD_PARAM' && /\[algo 1\]/.test(e.message));
});

test('a cuDNN older than 9 is a CudaLibraryVersionError naming the library, its file and both versions', (t) => {
  if ('skip' in fake) return t.skip(fake.skip);
  const copy = join(mkdtempSync(join(tmpdir(), 'synk-cudnn-old-')), 'libcudnn.so.8');
  copyFileSync(fake.path, copy);
  const old = koffi.load(copy);
  old.func('int fake_set_version(size_t v)')(8907);
  assert.throws(() => loadCudnn({ path: copy }), (e: unknown) => e instanceof CudaLibraryVersionError && e.found === '8.9.7' &&
    e.required === '9.0.0' && e.path === copy && /libcudnn \(cuDNN 9\)/.test(e.message) && e.message.includes(copy));
  old.func('int fake_set_version(size_t v)')(90000);
  assert.deepEqual(loadCudnn({ path: copy }).version, { major: 9, minor: 0, patch: 0 }, 'the failed load was not cached');
});

test('cuDNN search order: SYNK_CUDNN_LIB_DIRS, CUDA_PATH / CUDA_HOME, toolkits, system, Python wheels; found in site-packages', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'synk-cudnn-py-'));
  const wheel = join(root, 'python3.12', 'site-packages', 'nvidia', 'cudnn', 'lib');
  const distWheel = join(root, 'python3.11', 'dist-packages', 'nvidia', 'cudnn', 'lib');
  mkdirSync(wheel, { recursive: true });
  mkdirSync(distWheel, { recursive: true });
  mkdirSync(join(root, 'python3.10', 'site-packages'), { recursive: true }); // no cudnn wheel there
  assert.deepEqual(pythonPackageDirs(join('nvidia', 'cudnn', 'lib'), [root, '/no/such/root']), [wheel, distWheel]);
  const env = { SYNK_CUDNN_LIB_DIRS: '/opt/dnn-a:/opt/dnn-b', CUDA_PATH: '/opt/cp', CUDA_HOME: '/opt/ch' };
  const search = { env, pythonRoots: [root], toolkitParents: [], systemDirs: ['/usr/lib/x86_64-linux-gnu'], useLoaderPath: false };
  assert.deepEqual(searchDirectories(cudnnSearchOptions(search)), [
    '/opt/dnn-a', '/opt/dnn-b',
    '/opt/cp/lib64', '/opt/cp/targets/x86_64-linux/lib', '/opt/ch/lib64', '/opt/ch/targets/x86_64-linux/lib',
    '/usr/lib/x86_64-linux-gnu',
    wheel, distWheel,
  ]);
  assert.deepEqual(cudnnSearchOptions({ ...search, path: '/x/libcudnn.so.9' }), { path: '/x/libcudnn.so.9' }, 'an explicit path is the only candidate');
  if ('skip' in fake) return t.skip(fake.skip);
  copyFileSync(fake.path, join(wheel, 'libcudnn.so.9'));
  // No system folder here: on a machine with a system cuDNN (the GPU machine has one) it would be found first.
  const found = findCudnn({ ...search, systemDirs: [join(root, 'no-system-cudnn')] });
  assert.equal(found.path, join(wheel, 'libcudnn.so.9'));
});

test('cuDNN absent: the error names every file name and every place looked', () => {
  const root = mkdtempSync(join(tmpdir(), 'synk-cudnn-none-'));
  const wheel = join(root, 'python3.12', 'site-packages', 'nvidia', 'cudnn', 'lib');
  mkdirSync(wheel, { recursive: true });
  const search = { env: { SYNK_CUDNN_LIB_DIRS: '/opt/dnn', CUDA_HOME: '/opt/ch' }, pythonRoots: [root], toolkitParents: [], systemDirs: ['/opt/sys'],
    useLoaderPath: false };
  assert.throws(() => findCudnn(search), (e: unknown) => {
    if (!(e instanceof CudaLibraryNotFoundError)) return false;
    for (const place of ['/opt/dnn', '/opt/ch/lib64', '/opt/ch/targets/x86_64-linux/lib', '/opt/sys', wheel, 'libcudnn.so.9']) {
      assert.ok(e.message.includes(place), `the message names ${place}:\n${e.message}`);
    }
    return e.library === 'libcudnn (cuDNN 9)';
  });
  assert.throws(() => findCudnn({ path: join(root, 'libcudnn.so.9') }),
    (e: unknown) => e instanceof CudaLibraryNotFoundError && /no such file/.test(e.message) && /explicit path/.test(e.message));
});

const ATTRS: Conv2dAttrs = { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 };
const GEOMETRY = convGeometry('conv2d', [2, 4, 9, 10], [6, 2, 3, 3], ATTRS); // oh = 5, ow = 10

function handleOf(cudnn: Cudnn): ReturnType<Cudnn['create']> {
  const h = cudnn.create();
  const driver = buildFakeLibrary('libcuda.so.1', DRIVER_SIGNATURES, FAKE_DRIVER_C);
  if (!('skip' in driver)) cudnn.setStream(h, loadCudaDriver({ path: driver.path }).streamCreate());
  return h;
}

test('a conv2d plan carries shapes, attributes, algorithm and workspace across the FFI', (t) => {
  if ('skip' in fake) return t.skip(fake.skip);
  const cudnn = loadCudnn({ path: fake.path });
  reset();
  const h = handleOf(cudnn);
  const problem: CudnnConvProblem = { direction: 'forward', g: GEOMETRY, groups: 2, dtype: 'float32', tf32: true };
  assert.deepEqual([GEOMETRY.oh, GEOMETRY.ow], [5, 10]);
  const plan = planCudnnConv(cudnn, h, problem, 256 * 2 ** 20);
  assert.ok(plan);
  const r = record();
  assert.deepEqual(r.slice(10, 19), [0, 2, 4, 9, 10, 360, 90, 10, 1], 'x: float32 NCHW, contiguous strides');
  assert.deepEqual(r.slice(20, 29), [0, 2, 6, 5, 10, 300, 50, 10, 1], 'y: float32 NCHW');
  assert.deepEqual(r.slice(50, 56), [0, 0, 6, 2, 3, 3], 'w: float32, NCHW (KCRS), 6 filters of 2 channels');
  assert.deepEqual(r.slice(60, 68), [1, 2, 2, 1, 1, 2, 1, 0], 'pads, strides, dilations, cross-correlation, float32 compute');
  assert.equal(r[68], 2, 'group count');
  assert.deepEqual(r.slice(70, 77), [1, 1, 0x1000, 0x2000, 0x3000, 0x1010, 8], 'forward heuristics: (x, w, conv, y), all 8 algorithms asked');
  assert.deepEqual(r.slice(80, 83), [2, 1, 2], 'workspace asked for algorithm 1 (2^40 bytes: over the limit), then 2');
  assert.equal(plan.algo, 2);
  assert.equal(plan.workspaceBytes, 2048);
  assert.equal(plan.mathType, CUDNN_TENSOR_OP_MATH);
  assert.equal(r[69], CUDNN_TENSOR_OP_MATH);
  runCudnnConv(cudnn, h, plan, { x: 0xa000n, w: 0xb000n, y: 0xc000n, workspace: 0xe000n, workspaceBytes: 2048 });
  assert.deepEqual(record().slice(90, 103), [1, 1, 0, 0x1000, 0xa000, 0x2000, 0xb000, 0x3000, 2, 0xe000, 2048, 0x1010, 0xc000]);
  cudnn.destroyDescriptors(plan.descriptors);
  assert.deepEqual(record().slice(110, 113), [2, 1, 1], 'two tensors, one filter, one convolution destroyed');
  assert.equal(record()[0], 1, 'the handle is on the fake driver stream');
});

test('cudnnBenchmark: the algorithm is the fastest of cuDNN\'s timing whose workspace fits, with its math type', (t) => {
  if ('skip' in fake) return t.skip(fake.skip);
  const cudnn = loadCudnn({ path: fake.path });
  const h = handleOf(cudnn);
  const directions = [['forward', 4, [0x1000, 0x2000, 0x3000, 0x1010]], ['backwardData', 5, [0x2000, 0x1010, 0x3000, 0x1000]],
    ['backwardFilter', 6, [0x1000, 0x1010, 0x3000, 0x2000]]] as const;
  for (const [direction, code, order] of directions) {
    reset();
    const plan = planCudnnConv(cudnn, h, { direction, g: GEOMETRY, groups: 2, dtype: 'float32', tf32: true, benchmark: true }, 1 << 20);
    assert.ok(plan);
    const r = record();
    assert.deepEqual(r.slice(70, 76), [code, 1, ...order], `${direction}: cudnnFind* with its descriptors in cuDNN's order`);
    assert.equal(plan.algo, 0, 'algorithm 1 was fastest but wants 2^40 bytes of workspace; algorithm 0 is next');
    assert.equal(plan.mathType, 0, 'the math type it was timed with');
    assert.notEqual(plan.key, planCudnnConv(cudnn, h, { direction, g: GEOMETRY, groups: 2, dtype: 'float32', tf32: true }, 1 << 20)!.key,
      'timed and heuristic plans are kept apart');
  }
});

test('exact float32 stays FMA, float64 passes double scalars, the gradients put each buffer in its place', (t) => {
  if ('skip' in fake) return t.skip(fake.skip);
  const cudnn = loadCudnn({ path: fake.path });
  const h = cudnn.create();
  reset();
  const exact = planCudnnConv(cudnn, h, { direction: 'backwardData', g: GEOMETRY, groups: 2, dtype: 'float32', tf32: false }, 1 << 20)!;
  let r = record();
  assert.equal(exact.mathType, CUDNN_FMA_MATH);
  assert.equal(r[69], CUDNN_FMA_MATH, 'the FMA request is kept whatever the heuristics ranked under');
  assert.deepEqual(r.slice(70, 77), [2, 1, 0x2000, 0x1010, 0x3000, 0x1000, 6], 'backward-data heuristics: (w, dy, conv, dx), 6 algorithms');
  runCudnnConv(cudnn, h, exact, { x: 0xa000n, w: 0xb000n, y: 0xc000n, workspace: 0xe000n, workspaceBytes: 2048 });
  assert.deepEqual(record().slice(90, 103), [2, 1, 0, 0x2000, 0xb000, 0x1010, 0xc000, 0x3000, 2, 0xe000, 2048, 0x1000, 0xa000]);
  reset();
  const dbl = planCudnnConv(cudnn, h, { direction: 'backwardFilter', g: GEOMETRY, groups: 2, dtype: 'float64', tf32: true }, 1 << 20)!;
  r = record();
  assert.equal(r[10], 1, 'float64 tensors');
  assert.equal(r[67], 1, 'float64 compute');
  assert.deepEqual(r.slice(70, 77), [3, 1, 0x1000, 0x1010, 0x3000, 0x2000, 7], 'backward-filter heuristics: (x, dy, conv, dw), 7 algorithms');
  runCudnnConv(cudnn, h, dbl, { x: 0xa000n, w: 0xb000n, y: 0xc000n, workspace: 0xe000n, workspaceBytes: 2048 });
  assert.deepEqual(record().slice(90, 103), [3, 1, 0, 0x1000, 0xa000, 0x1010, 0xc000, 0x3000, 2, 0xe000, 2048, 0x2000, 0xb000]);
});

test('no algorithm within the workspace limit: no plan, and its descriptors are destroyed', (t) => {
  if ('skip' in fake) return t.skip(fake.skip);
  const cudnn = loadCudnn({ path: fake.path });
  const h = cudnn.create();
  reset();
  assert.equal(planCudnnConv(cudnn, h, { direction: 'forward', g: GEOMETRY, groups: 2, dtype: 'float32', tf32: false }, 1000), null);
  assert.deepEqual(record().slice(110, 113), [2, 1, 1]);
});

test('cudnnUnsupported: asymmetric same padding, other dtypes, zero sizes go to im2col', () => {
  assert.equal(cudnnUnsupported(GEOMETRY, ATTRS, 'float32'), null);
  assert.equal(cudnnUnsupported(GEOMETRY, ATTRS, 'float64'), null);
  assert.match(cudnnUnsupported(GEOMETRY, ATTRS, 'int32') ?? '', /dtype int32/);
  const same: Conv2dAttrs = { stride: [1, 1], padding: 'same', dilation: [1, 1], groups: 1 };
  assert.equal(cudnnUnsupported(convGeometry('conv2d', [1, 1, 5, 5], [1, 1, 3, 3], same), same, 'float32'), null, '3x3 same: one row each side');
  assert.match(cudnnUnsupported(convGeometry('conv2d', [1, 1, 5, 5], [1, 1, 2, 2], same), same, 'float32') ?? '', /asymmetric/);
});

test('a cuda spec carries cudnn and cudnnPath to fork, checked', () => {
  assert.ok(cudaRegistration.specKeys.includes('cudnn') && cudaRegistration.specKeys.includes('cudnnPath'));
  cudaRegistration.checkSpec({ kind: 'cuda', index: 0, cudnn: true, cudnnPath: '/x/libcudnn.so.9' }, 'devices[0]');
  assert.throws(() => cudaRegistration.checkSpec({ kind: 'cuda', index: 0, cudnn: 'yes' }, 'devices[0]'), /devices\[0\]\.cudnn: expected a boolean/);
  assert.throws(() => cudaRegistration.checkSpec({ kind: 'cuda', index: 0, cudnnPath: 9 }, 'devices[0]'), /devices\[0\]\.cudnnPath: a path/);
});
