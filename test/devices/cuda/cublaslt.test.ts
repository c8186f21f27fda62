// cuBLASLt without a GPU: the row-major mapping onto cuBLASLt problems (hand-worked layouts), the plans made
// through a stand-in libcublasLt (every number that crosses the FFI checked), the shared workspace and the plan
// cache of BlasLibraries over stand-in cuBLAS and cuBLASLt, the library search's errors and the device's choice
// of library. The products themselves are checked on the GPU (cublaslt-gpu.test.ts) and, through the lowerings
// on the CPU, in cublaslt-emulated.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import {
  CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_SIGNATURES, CUBLASLT_LIBRARY, CUBLASLT_SIGNATURES, CUDA_R_16BF,
  CUDA_R_32F, CudaError, CudaLibraryNotFoundError, DRIVER_SIGNATURES, loadCublas, loadCublasLt, loadCudaDriver, type CublasLt, type CUstream,
  type RowMajorGemmSpec,
} from '../../../src/devices/cuda/ffi/index.js';
import { alignmentOf, destroyLtDescriptors, ltPlanKey, ltProblem, planLtMatmul, runLtMatmul } from '../../../src/devices/cuda/lt-plans.js';
import { BlasLibraries, checkWorkspaceBytes, defaultCublasWorkspaceBytes, gemmLibraryChoice } from '../../../src/devices/cuda/blas.js';
import { Block } from '../../../src/devices/cuda/allocator.js';
import { readConfig } from '../../../src/devices/config.js';
import { FAKE_CUBLASLT_C, FAKE_DRIVER_C, buildFakeLibrary } from './fake-libraries.js';

const base: RowMajorGemmSpec = { m: 4, n: 3, k: 5, a: 0x10000n, b: 0x20000n, c: 0x30000n, dtype: 'float32' };

test('a row-major GEMM maps onto the column-major cuBLASLt problem C^T = op(B)^T op(A)^T', () => {
  // C[4,3] = A[4,5] B[5,3]: cuBLAS's A is B read column-major (3x5, ld 3), its B is A (5x4, ld 5), C^T is 3x4.
  const plain = ltProblem({ ...base, alpha: 2, beta: 0.5 })!;
  assert.deepEqual(plain.operands, { a: 0x20000n, b: 0x10000n, c: 0x30000n, alpha: 2, beta: 0.5 });
  const p = plain.problem;
  assert.deepEqual([p.transa, p.transb, p.computeType, p.scaleType, p.batch], [CUBLAS_OP_N, CUBLAS_OP_N, CUBLAS_COMPUTE_32F, CUDA_R_32F, 1]);
  assert.deepEqual(p.a, { type: CUDA_R_32F, rows: 3, cols: 5, ld: 3, stride: 0 });
  assert.deepEqual(p.b, { type: CUDA_R_32F, rows: 5, cols: 4, ld: 5, stride: 0 });
  assert.deepEqual(p.c, { type: CUDA_R_32F, rows: 3, cols: 4, ld: 3, stride: 0 });
  assert.deepEqual([p.alignA, p.alignB, p.alignC], [256, 256, 256]);
  // Both transposed: A stored [5,4] (ld 4), B stored [3,5] (ld 5); cuBLAS's A (the row-major B) is 5x3 read transposed.
  const t = ltProblem({ ...base, transA: true, transB: true, tf32: true })!.problem;
  assert.deepEqual([t.transa, t.transb, t.computeType], [CUBLAS_OP_T, CUBLAS_OP_T, CUBLAS_COMPUTE_32F_FAST_TF32]);
  assert.deepEqual([t.a.rows, t.a.cols, t.a.ld, t.b.rows, t.b.cols, t.b.ld, t.c.rows, t.c.cols, t.c.ld], [5, 3, 5, 4, 5, 4, 3, 4, 3]);
  // A batch: the strides swap with the operands; the alignment is the pointer's and every batch offset's.
  const b = ltProblem({ ...base, transA: true, dtype: 'bfloat16', outDtype: 'float32', batch: { strideA: 20, strideB: 15, strideC: 12, batchCount: 2 } })!;
  const q = b.problem;
  assert.deepEqual([q.a.type, q.b.type, q.c.type, q.computeType, q.batch], [CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F, 2]);
  assert.deepEqual([q.a.stride, q.b.stride, q.c.stride], [15, 20, 12]);
  assert.deepEqual([q.alignA, q.alignB, q.alignC], [2, 8, 16], '15 and 20 bfloat16 elements are 30 and 40 bytes; 12 floats 48');
  assert.equal(ltProblem({ ...base, dtype: 'bfloat16', outDtype: 'bfloat16' })!.problem.c.type, CUDA_R_16BF);
  assert.deepEqual([alignmentOf(0n, 0), alignmentOf(0x1004n, 0), alignmentOf(0x100000n, 0), alignmentOf(0x100000n, 64)], [256, 4, 256, 64]);
});

test('cuBLAS keeps float64, empty products and batches with a broadcast operand', () => {
  assert.equal(ltProblem({ ...base, dtype: 'float64' }), null);
  for (const d of [{ m: 0 }, { n: 0 }, { k: 0 }]) assert.equal(ltProblem({ ...base, ...d }), null, JSON.stringify(d));
  assert.equal(ltProblem({ ...base, batch: { strideA: 0, strideB: 15, strideC: 12, batchCount: 3 } }), null);
  assert.equal(ltProblem({ ...base, batch: { strideA: 20, strideB: 0, strideC: 12, batchCount: 3 } }), null);
  assert.notEqual(ltProblem({ ...base, batch: { strideA: 0, strideB: 0, strideC: 0, batchCount: 1 } }), null, 'a batch of one is no batch');
});

test('a plan is keyed by everything its algorithm depends on', () => {
  const key = (s: RowMajorGemmSpec, ws = 1 << 20) => ltPlanKey(ltProblem(s)!.problem, ws);
  const k = key(base);
  assert.equal(key({ ...base, a: 0x50000n, b: 0x60000n, c: 0x70000n }), k, 'other pointers of the same alignment share a plan');
  for (const other of [key(base, 0), key({ ...base, a: 0x10004n }), key({ ...base, tf32: true }), key({ ...base, transA: true }), key({ ...base, m: 5 }),
    key({ ...base, batch: { strideA: 20, strideB: 15, strideC: 12, batchCount: 2 } }), key({ ...base, dtype: 'bfloat16' })]) {
    assert.notEqual(other, k);
  }
});

function fakeLt(): { lt: CublasLt; log: () => number[]; lib: ReturnType<typeof koffi.load> } | { skip: string } {
  const fake = buildFakeLibrary('libcublasLt.so.13', CUBLASLT_SIGNATURES, FAKE_CUBLASLT_C);
  if ('skip' in fake) return fake;
  const lib = koffi.load(fake.path);
  const read = lib.func('int fake_log(void *out, int max)');
  const log = () => {
    const out = new BigInt64Array(4096);
    const k = read(out, 4096) as number;
    return [...out.subarray(0, k)].map(Number);
  };
  return { lt: loadCublasLt({ path: fake.path }), log, lib };
}

function fakeStream(): CUstream | null {
  const driver = buildFakeLibrary('libcuda.so.1', DRIVER_SIGNATURES, FAKE_DRIVER_C);
  return 'skip' in driver ? null : loadCudaDriver({ path: driver.path }).streamCreate();
}

test('plans through a stand-in libcublasLt: descriptors, layouts, preferences, heuristic and the call', (t) => {
  const f = fakeLt();
  if ('skip' in f) return t.skip(f.skip);
  const { lt, log, lib } = f;
  const live = lib.func('int fake_live(void)');
  const mode = lib.func('int fake_set_mode(int m)');
  assert.equal(lt.version(), 130001);
  assert.equal(lt.describe(13).name, 'CUBLAS_STATUS_EXECUTION_FAILED', 'without cublasLtGetStatusName the binding names statuses');
  const handle = lt.create();
  const spec: RowMajorGemmSpec = { ...base, transA: true, tf32: true, alpha: 2, beta: 0.5, batch: { strideA: 20, strideB: 15, strideC: 12, batchCount: 2 } };
  const { problem, operands } = ltProblem(spec)!;
  log();
  const plan = planLtMatmul(lt, handle, problem, 1 << 20)!;
  const made = log();
  assert.equal(live(), 4, 'the descriptor and three layouts live on; the preference was destroyed');
  assert.deepEqual(made.slice(0, 12), [300, 100, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, 101, 3, 4, CUBLAS_OP_N, 101, 4, 4, CUBLAS_OP_T]);
  assert.deepEqual(made.slice(12, 39), [200, CUDA_R_32F, 3, 5, 3, 201, 5, 4, 2, 201, 6, 8, 15, 200, CUDA_R_32F, 4, 5, 4, 201, 5, 4, 2, 201, 6, 8, 20, 200]);
  assert.deepEqual(made.slice(39, 52), [CUDA_R_32F, 3, 4, 3, 201, 5, 4, 2, 201, 6, 8, 12, 301]);
  assert.deepEqual(made.slice(52), [1, 8, 1 << 20, 301, 5, 4, 4, 301, 6, 4, 16, 301, 7, 4, 16, 301, 8, 4, 16, 400, 1],
    'the workspace limit, then the alignments of A, B, C and D (D is C), then one algorithm asked for');
  assert.equal(plan.workspaceBytes, 4096);
  assert.deepEqual([plan.algo.length, plan.algo[0], plan.algo[63]], [64, 1, 64]);

  runLtMatmul(lt, handle, plan, operands, { ptr: 0xabc000n, bytes: 1 << 20 }, fakeStream());
  const call = log();
  assert.equal(call[0], 500);
  assert.deepEqual([call[1], call[2], call[3], call[5], call[7], call[9]], [2000, 500, 0x20000, 0x10000, 0x30000, 0x30000]);
  const [a, b, c, d] = [call[4]!, call[6]!, call[8]!, call[10]!];
  assert.deepEqual([b - a, c - a, d], [1, 2, c], 'A, B and C take their own layouts; D is C');
  assert.deepEqual(call.slice(11, 15), [1, 64, 0xabc000, 1 << 20], 'the algorithm bytes and the workspace arrive');
  if (call[15] !== 0) assert.equal(call[15], 0x5000, "the stand-in driver's stream");

  destroyLtDescriptors(lt, plan);
  assert.equal(live(), 0);
  for (const [m, why] of [[1, 'NOT_SUPPORTED'], [2, 'no algorithm'], [3, 'an algorithm whose state failed']] as const) {
    mode(m);
    assert.equal(planLtMatmul(lt, handle, problem, 1 << 20), null, why);
    assert.equal(live(), 0, `${why}: nothing is left allocated`);
  }
  mode(0);
  assert.equal(planLtMatmul(lt, handle, problem, 1024), null, 'an algorithm needing more workspace than the limit is not taken');
  assert.equal(live(), 0);
});

const FAKE_CUBLAS_LOG_C = `
static long long L[64]; static int nl;
static void put(long long v) { if (nl < 64) L[nl++] = v; }
int fake_log(long long *out, int max) { int k = nl < max ? nl : max; memcpy(out, L, k * sizeof(long long)); nl = 0; return k; }
int cublasCreate_v2(void **h) { put(1); *h = (void *)0xb1a5; return 0; }
int cublasSetStream_v2(void *h, void *s) { put(2); put((long long)s); return 0; }
int cublasSetWorkspace_v2(void *h, unsigned long long p, size_t n) { put(3); put(p); put(n); return 0; }
int cublasDestroy_v2(void *h) { put(4); return 0; }
`;

test('one workspace per context: set on cuBLAS after its stream, passed to cuBLASLt, kept when replaced; plans cached per size', (t) => {
  const f = fakeLt();
  const fb = buildFakeLibrary('libcublas.so.13', CUBLAS_SIGNATURES, FAKE_CUBLAS_LOG_C);
  if ('skip' in f) return t.skip(f.skip);
  if ('skip' in fb) return t.skip(fb.skip);
  const cublas = loadCublas({ path: fb.path });
  const readBlas = koffi.load(fb.path).func('int fake_log(void *out, int max)');
  const blasLog = () => { const o = new BigInt64Array(64); return [...o.subarray(0, readBlas(o, 64) as number)].map(Number); };
  const stream = fakeStream();
  if (!stream) return t.skip('no stand-in driver for a stream');
  const allocations: number[] = [];
  const host = { stream, allocateOutsideGraphs: (bytes: number) => new Block(BigInt(0x1000000 * (allocations.push(bytes))), bytes, null) };
  const MiB = 1 << 20;
  const blas = new BlasLibraries(host, 'sm_90', { cublas: () => cublas, cublasLt: () => f.lt }, MiB);
  const { problem, operands } = ltProblem(base)!;
  assert.equal(blas.ltMatmul(problem, operands), false, 'without cuBLASLt loaded, cuBLAS runs it');
  blasLog();
  blas.cublas();
  blas.cublas();
  assert.deepEqual(blasLog(), [1, 2, 0x5000, 3, 0x1000000, MiB], 'created, bound to the stream, then given the workspace, once');
  assert.deepEqual(allocations, [MiB]);
  blas.loadCublasLt();
  f.log();
  assert.equal(blas.ltMatmul(problem, operands) && blas.ltMatmul(problem, operands), true);
  let log = f.log();
  assert.equal(log.filter((v) => v === 400).length, 1, 'one heuristic for two calls of one problem');
  assert.equal(blas.ltPlanCount, 1);
  assert.equal(log.join(',').split(`,${0x1000000},${MiB},${0x5000}`).length - 1, 2, 'both calls get the same workspace and the stream');

  blas.setWorkspaceBytes(2 * MiB);
  assert.deepEqual(blasLog(), [2, 0x5000, 3, 0x2000000, 2 * MiB], 'the stream is set again (back to the pool), then the new workspace');
  assert.deepEqual(allocations, [MiB, 2 * MiB], 'the old workspace is not freed: a captured graph may use it');
  assert.equal(blas.ltMatmul(problem, operands), true);
  log = f.log();
  assert.equal(log.filter((v) => v === 400).length, 1, 'a new plan for the new limit');
  assert.ok(log.join(',').includes(`${0x2000000},${2 * MiB},${0x5000}`));

  blas.setWorkspaceBytes(0);
  assert.deepEqual(blasLog(), [2, 0x5000], "size 0: cuBLAS's own pool, no buffer");
  assert.equal(blas.ltMatmul(problem, operands), false, "the stand-in's algorithm needs 4096 bytes, more than none");
  assert.equal(blas.workspaceBytes, 0);

  blas.setWorkspaceBytes(MiB);
  assert.deepEqual(blasLog(), [2, 0x5000, 3, 0x3000000, MiB], 'a fresh buffer: the first one may still be baked into a graph');
  const status = f.lib.func('int fake_set_matmul_status(int s)');
  status(15);
  assert.equal(blas.ltMatmul(problem, operands), false, 'an algorithm that will not run is dropped: cuBLAS from then on');
  f.log();
  assert.equal(blas.ltMatmul(problem, operands), false);
  assert.equal(f.log().filter((v) => v === 400).length, 0, 'not planned again');
  status(13);
  const other = ltProblem({ ...base, m: 6 })!;
  assert.throws(() => blas.ltMatmul(other.problem, other.operands),
    (e: unknown) => e instanceof CudaError && e.library === 'cublasLt' && e.call === 'cublasLtMatmul' && e.status === 'CUBLAS_STATUS_EXECUTION_FAILED');
  status(0);
  blas.close();
  assert.equal(f.lib.func('int fake_live(void)')(), 0, 'every plan destroyed');
  assert.deepEqual(blasLog(), [4]);
  assert.throws(() => checkWorkspaceBytes(-1, 'x'), /whole number of bytes >= 0, got -1/);
  assert.throws(() => blas.setWorkspaceBytes(1.5), /setCublasWorkspace: .* got 1.5/);
});

test('a missing libcublasLt is reported with every name tried and every place looked', () => {
  assert.throws(() => loadCublasLt({ path: '/nonexistent/libcublasLt.so.13' }), (e: unknown) =>
    e instanceof CudaLibraryNotFoundError && e.library === 'libcublasLt (cuBLASLt)' && /explicit path option was given/.test(e.message));
  const empty = mkdtempSync(join(tmpdir(), 'synk-nolt-'));
  assert.throws(() => loadCublasLt({ dirs: [empty], toolkitParents: [empty], systemDirs: [], useLoaderPath: false, env: {} }), (e: unknown) =>
    e instanceof CudaLibraryNotFoundError && e.searched.includes(empty) &&
    CUBLASLT_LIBRARY.sonames.every((s) => e.message.includes(s)) && e.sonames[0] === 'libcublasLt.so.13');
});

test("the device's library: the option, else SYNK_CUDA_GEMM, else cuBLASLt; workspace 32 MiB from sm_90, 4 MiB before", () => {
  assert.deepEqual(gemmLibraryChoice(undefined, undefined), { library: 'cublaslt', explicit: false });
  assert.deepEqual(gemmLibraryChoice(undefined, 'cublas'), { library: 'cublas', explicit: true });
  assert.deepEqual(gemmLibraryChoice('cublaslt', 'cublas'), { library: 'cublaslt', explicit: true });
  assert.throws(() => gemmLibraryChoice('lt', undefined), /CudaDevice: gemm must be one of 'cublaslt', 'cublas', got "lt"/);
  assert.equal(readConfig({}).cudaGemm, undefined);
  assert.equal(readConfig({ SYNK_CUDA_GEMM: 'cuBLAS' }).cudaGemm, 'cublas');
  assert.throws(() => readConfig({ SYNK_CUDA_GEMM: 'mkl' }), /SYNK_CUDA_GEMM="mkl": expected 'cublaslt' or 'cublas'/);
  assert.equal(readConfig({}).cublasWorkspaceBytes, undefined);
  assert.equal(readConfig({ SYNK_CUBLAS_WORKSPACE_BYTES: '0' }).cublasWorkspaceBytes, 0);
  assert.equal(readConfig({ SYNK_CUBLAS_WORKSPACE_BYTES: '8388608' }).cublasWorkspaceBytes, 8 << 20);
  assert.throws(() => readConfig({ SYNK_CUBLAS_WORKSPACE_BYTES: '4MB' }), /SYNK_CUBLAS_WORKSPACE_BYTES="4MB": expected a whole number/);
  assert.deepEqual(['sm_90', 'sm_100', 'sm_80', 'sm_75'].map(defaultCublasWorkspaceBytes), [32 << 20, 32 << 20, 4 << 20, 4 << 20]);
});
