// The CUDA lowerings run on the CPU (tests on machines without a GPU): the generated kernels compiled with
// the host C++ compiler through a shim (every kernel is a grid-stride loop, so a few emulated threads, run one
// after the other in reverse order, cover the whole grid), cuBLAS replaced by a naive column-major GEMM with the
// same arguments, cuBLASLt (CudaContext.ltMatmul) by the same GEMM read from the problem's layouts, and the
// runners given a RunState over host memory.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { NDArray } from '../../src/tensor/ndarray.js';
import { bytesPerElement, type DType } from '../../src/tensor/dtype.js';
import type { Program } from '../../src/compile/program.js';
import type { LoweredProgram } from '../../src/devices/cuda/lower-program.js';
import { COMMON } from '../../src/devices/cuda/codegen/prelude.js';
import { CudaArray } from '../../src/devices/cuda/cuda-array.js';
import type { Block } from '../../src/devices/cuda/allocator.js';
import type { CudaContext } from '../../src/devices/cuda/context.js';
import { kernelArgKind, type KernelArg, type KernelArgKind } from '../../src/devices/cuda/ffi/kernel-params.js';
import { CUBLAS_OP_N, CUDA_R_16BF, CUDA_R_32F, type GemmArgs, type StridedBatch } from '../../src/devices/cuda/ffi/cublas.js';
import type { LtOperands, LtProblem } from '../../src/devices/cuda/lt-plans.js';
import type { RunState, Value } from '../../src/devices/cuda/lower/types.js';
import { HOST_CXX, cudaHostShim } from './cuda-host.js';

const SHIM = cudaHostShim({ emulatedThreads: true }) + String.raw`template<class T> static inline T atomicAdd(T* p, T v) {
  T old = *p; *p = old + v; return old; }
static inline int atomicCAS(int* p, int cmp, int v) { int old = *p; if (old == cmp) *p = v; return old; }
using std::exp; using std::log; using std::fmod;
extern "C" {
void emu_thread(unsigned int tid, unsigned int n) { threadIdx.x = tid; blockDim.x = n; }
uint64_t emu_alloc(uint64_t n) { return (uint64_t)calloc(n ? n : 1, 1); }
void emu_free(uint64_t p) { free((void*)p); }
void emu_copy(uint64_t dst, uint64_t src, uint64_t n) { memmove((void*)dst, (const void*)src, n); }
void emu_upload(uint64_t dst, const void* src, uint64_t n) { memcpy((void*)dst, src, n); }
void emu_download(void* dst, uint64_t src, uint64_t n) { memcpy(dst, (const void*)src, n); }
static double emu_elem(int kind, uint64_t p, int64_t i) {
  if (kind == 1) return ((double*)p)[i];
  if (kind == 2) { uint32_t u = (uint32_t)((uint16_t*)p)[i] << 16; float f; memcpy(&f, &u, 4); return f; }
  return ((float*)p)[i];
}
// kind: 0 float, 1 double, 2 bfloat16 operands (cublasGemmEx with CUDA_R_16BF) and a float result.
void emu_gemm(int kind, int ta, int tb, int m, int n, int k, double alpha, uint64_t A, int lda, int64_t sA,
              uint64_t B, int ldb, int64_t sB, double beta, uint64_t C, int ldc, int64_t sC, int batch) {
  const int dbl = kind == 1;
  for (int q = 0; q < batch; q++) for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
    double acc = 0;
    for (int l = 0; l < k; l++) {
      const int64_t a = (ta ? l + (int64_t)i * lda : i + (int64_t)l * lda) + q * sA;
      const int64_t b = (tb ? j + (int64_t)l * ldb : l + (int64_t)j * ldb) + q * sB;
      acc += emu_elem(kind, A, a) * emu_elem(kind, B, b);
    }
    const int64_t c = i + (int64_t)j * ldc + q * sC;
    if (dbl) ((double*)C)[c] = alpha * acc + (beta == 0 ? 0 : beta * ((double*)C)[c]);
    else ((float*)C)[c] = (float)(alpha * acc + (beta == 0 ? 0 : beta * ((float*)C)[c]));
  }
}
}`;

type Fn = (...args: unknown[]) => unknown;

/** Emulated threads per launch, each running its share of the grid-stride loop. */
const THREADS = 5;

const C_TYPES: Record<KernelArgKind, string> = {
  ptr: 'uint64_t',
  i32: 'int32_t',
  u32: 'uint32_t',
  i64: 'int64_t',
  u64: 'uint64_t',
  f32: 'float',
  f64: 'double',
};

/** A kernel argument as koffi takes it (64-bit integers as BigInt). */
function argValue(a: KernelArg): unknown {
  const kind = kernelArgKind(a);
  const v = (a as Readonly<Record<string, number | bigint>>)[kind]!;
  return kind === 'ptr' || kind === 'i64' || kind === 'u64' ? BigInt(v) : v;
}

/** All kernels of the given programs in one host library (one compiler run); needs HOST_CXX. */
export function buildHost(lowered: readonly LoweredProgram[]) {
  const bodies = new Map<string, string>();
  for (const l of lowered) {
    for (const u of l.units) {
      assert.deepEqual(u.parts, [], `${u.name} needs prelude parts the shim does not emulate`);
      bodies.set(u.name, u.body);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'synk-emu-'));
  writeFileSync(join(dir, 'k.cpp'), [SHIM, COMMON, ...bodies.values()].join('\n'));
  const r = spawnSync(HOST_CXX!, ['-std=c++17', '-O1', '-shared', '-fPIC', '-w', join(dir, 'k.cpp'), '-o', join(dir, 'k.so')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lib = koffi.load(join(dir, 'k.so'));
  rmSync(dir, { recursive: true, force: true }); // the loaded library stays mapped
  const fn = (proto: string) => lib.func(proto) as Fn;
  const kernels = new Map<string, Fn>();
  return {
    thread: fn('void emu_thread(unsigned int tid, unsigned int n)'),
    alloc: fn('uint64_t emu_alloc(uint64_t n)'),
    copy: fn('void emu_copy(uint64_t dst, uint64_t src, uint64_t n)'),
    upload: fn('void emu_upload(uint64_t dst, const void* src, uint64_t n)'),
    download: fn('void emu_download(_Out_ uint8_t* dst, uint64_t src, uint64_t n)'),
    gemm: fn(
      'void emu_gemm(int dbl, int ta, int tb, int m, int n, int k, double alpha, uint64_t A, int lda, int64_t sA, ' +
        'uint64_t B, int ldb, int64_t sB, double beta, uint64_t C, int ldc, int64_t sC, int batch)',
    ),
    kernel(name: string, args: readonly KernelArg[]): Fn {
      const types = args.map((a) => C_TYPES[kernelArgKind(a)]);
      const key = `${name}(${types.join()})`;
      let k = kernels.get(key);
      if (!k) kernels.set(key, k = lib.func(name, 'void', types) as Fn);
      return k;
    },
  };
}
export type Host = ReturnType<typeof buildHost>;

/** How a run is emulated: the RunState's precision flags and GEMM library, and a record of the products cuBLASLt ran. */
export interface EmulatedRun {
  readonly tf32?: boolean;
  readonly bf16?: boolean;
  /** Products go to CudaContext.ltMatmul (RunState.cublasLt); each problem it ran is pushed onto `ltCalls`. */
  readonly cublasLt?: boolean;
  readonly ltCalls?: LtProblem[];
}

/**
 * cuBLASLt's product read from the problem alone (layouts, transposes, batch strides): the layouts must describe
 * op(A) m x k, op(B) k x n and C m x n with leading dimensions that keep columns apart, as cuBLASLt requires.
 */
function ltGemm(host: Host, p: LtProblem, o: LtOperands): void {
  const m = p.c.rows, n = p.c.cols;
  const an = p.transa === CUBLAS_OP_N, bn = p.transb === CUBLAS_OP_N;
  const k = an ? p.a.cols : p.a.rows;
  assert.equal(an ? p.a.rows : p.a.cols, m, 'op(A) has m rows');
  assert.deepEqual(bn ? [p.b.rows, p.b.cols] : [p.b.cols, p.b.rows], [k, n], 'op(B) is k x n');
  for (const x of [p.a, p.b, p.c]) assert.ok(x.ld >= x.rows, `ld ${x.ld} >= rows ${x.rows}`);
  assert.equal(p.c.type, CUDA_R_32F, 'the emulator writes float results');
  assert.equal(p.a.type, p.b.type);
  const kind = p.a.type === CUDA_R_16BF ? 2 : 0;
  host.gemm(kind, p.transa, p.transb, m, n, k, o.alpha, o.a, p.a.ld, BigInt(p.a.stride), o.b, p.b.ld, BigInt(p.b.stride), o.beta, o.c, p.c.ld,
    BigInt(p.c.stride), p.batch);
}

/** Runs a lowered program's steps over host memory; returns its outputs. */
export function runOnHost(host: Host, program: Program, lowered: LoweredProgram, values: readonly NDArray[], run: EmulatedRun = {}): NDArray[] {
  const gemm = (dbl: number, g: GemmArgs, b?: StridedBatch) => host.gemm(dbl, g.transa, g.transb, g.m, g.n, g.k, g.alpha, g.a, g.lda,
    BigInt(b?.strideA ?? 0), g.b, g.ldb, BigInt(b?.strideB ?? 0), g.beta, g.c, g.ldc, BigInt(b?.strideC ?? 0), b?.batchCount ?? 1);
  // cudaDataType_t of the operands: CUDA_R_64F = 1, CUDA_R_16BF = 14 (bfloat16 operands, float32 result), else float.
  const isDouble = (g: { aType: number }) => (g.aType === 1 ? 1 : g.aType === 14 ? 2 : 0);
  const cublas = {
    sgemm: (_h: unknown, g: GemmArgs) => gemm(0, g),
    dgemm: (_h: unknown, g: GemmArgs) => gemm(1, g),
    sgemmStridedBatched: (_h: unknown, g: GemmArgs & StridedBatch) => gemm(0, g, g),
    dgemmStridedBatched: (_h: unknown, g: GemmArgs & StridedBatch) => gemm(1, g, g),
    gemmEx: (_h: unknown, g: GemmArgs & { aType: number }) => gemm(isDouble(g), g),
    gemmStridedBatchedEx: (_h: unknown, g: GemmArgs & StridedBatch & { aType: number }) => gemm(isDouble(g), g, g),
  };
  const ctx = {
    cublas: () => ({ lib: cublas, handle: null }),
    ltMatmul: (p: LtProblem, o: LtOperands) => {
      ltGemm(host, p, o);
      run.ltCalls?.push(p);
      return true;
    },
    gridFor: () => 1,
    multiprocessors: 1,
    stream: null,
    cu: { memcpyDtoDAsync: (dst: bigint, src: bigint, bytes: number) => host.copy(dst, src, BigInt(bytes)) },
    staging: { upload: (dst: bigint, view: ArrayBufferView) => host.upload(dst, view, BigInt(view.byteLength)) },
  } as unknown as CudaContext;
  const alloc = (dtype: DType, shape: readonly number[]): CudaArray => {
    const ptr = BigInt(host.alloc(BigInt(shape.reduce((a, b) => a * b, 1) * bytesPerElement(dtype))) as number | bigint);
    return new CudaArray(dtype, shape, { ptr, retain() {}, release() {} } as unknown as Block, ctx);
  };
  const vals: Value[] = [];
  // Device checks (RunState.deviceCheck) write into one flag of four int32 words, read after the run.
  let flag: CudaArray | null = null;
  const checks: { step: number; explain: (value: number, position: number) => Error }[] = [];
  let current = 0;
  program.inputs.forEach((slot, i) => { vals[slot] = { host: values[i]! }; });
  for (const c of program.constants) vals[c.slot] = { host: NDArray.from(c.value.values.map(Number), { dtype: c.value.dtype }).reshape(c.value.shape) };
  const s: RunState = {
    ctx,
    tf32: run.tf32 === true,
    bf16: run.bf16 === true,
    cublasLt: run.cublasLt === true,
    dtype: (slot) => program.slots[slot]!.dtype,
    shape: (slot) => vals[slot]!.dev?.shape ?? vals[slot]!.host!.shape,
    dev: (slot) => {
      const v = vals[slot]!;
      if (!v.dev) {
        v.dev = alloc(v.host!.dtype, v.host!.shape);
        host.upload(v.dev.ptr, v.host!.data, BigInt(v.host!.data.byteLength));
      }
      return v.dev;
    },
    host: (slot) => {
      const v = vals[slot]!;
      if (!v.host) {
        const out = new NDArray(v.dev!.dtype, v.dev!.shape);
        if (out.size > 0) host.download(new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength), v.dev!.ptr, BigInt(out.data.byteLength));
        v.host = out;
      }
      return v.host;
    },
    // Every index is checked by the kernels here, as for values that live only on the GPU.
    hostKnown: () => undefined,
    deviceCheck: (explain) => {
      flag ??= alloc('int32', [4]);
      checks.push({ step: current, explain });
      return { flag: flag.ptr, code: checks.length };
    },
    intArg: (a, st) => (typeof a === 'number' ? a : Math.trunc(s.host(st.inputs[a.input]!).data[0]!)),
    alloc,
    temp: alloc,
    float32: (slot) => ({ arr: s.dev(slot), temp: false }),
    launch: (kernel, _grid, _block, args) => {
      // A few "threads", the last first: results that depend on the order of a sequential loop show up.
      const fn = host.kernel(kernel, args);
      const values = args.map(argValue);
      for (let tid = THREADS - 1; tid >= 0; tid--) {
        host.thread(tid, THREADS);
        fn(...values);
      }
    },
  };
  program.steps.forEach((st, i) => { current = i; vals[st.output] = lowered.runners[i]!(s, st); });
  if (flag) {
    const words = new Int32Array(4);
    host.download(new Uint8Array(words.buffer), (flag as CudaArray).ptr, 16n);
    if (words[0] !== 0) throw checks[words[0]! - 1]!.explain(words[1]!, words[2]!);
  }
  return program.outputs.map((o) => s.host(o));
}
