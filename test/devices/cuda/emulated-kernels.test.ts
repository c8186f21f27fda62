// The CUDA lowerings of conv2d (and its gradients), pooling (and its gradients) and incTake, run
// on the CPU on machines without a GPU: the generated kernels are compiled with the host C++
// compiler through a shim (every kernel is a grid-stride loop, so a few emulated threads, run one
// after the other in reverse order, cover the whole grid),
// cuBLAS is replaced by a naive column-major GEMM with the same arguments, and the runners see a
// RunState over host memory. This checks the kernels' index arithmetic, the GEMM plans (operand
// order, transposes, leading dimensions, batch strides, beta) and the run-time checks against
// the reference device; only the real GPU's parallelism, NVRTC and cuBLAS are left to the GPU tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { bytesPerElement, type DType } from '../../../src/tensor/dtype.js';
import { applyOp } from '../../../src/ops/apply.js';
import type { Program } from '../../../src/compile/program.js';
import { lowerProgram, type LoweredProgram } from '../../../src/devices/cuda/lower-program.js';
import { COMMON } from '../../../src/devices/cuda/codegen/prelude.js';
import { CudaArray } from '../../../src/devices/cuda/cuda-array.js';
import type { Block } from '../../../src/devices/cuda/allocator.js';
import type { CudaContext } from '../../../src/devices/cuda/context.js';
import { kernelArgKind, type KernelArg, type KernelArgKind } from '../../../src/devices/cuda/ffi/kernel-params.js';
import type { GemmArgs, StridedBatch } from '../../../src/devices/cuda/ffi/cublas.js';
import type { RunState, Value } from '../../../src/devices/cuda/lower/types.js';
import { convColumnLimit } from '../../../src/devices/cuda/lower/conv.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';
import { HOST_CXX, cudaHostShim } from '../../helpers/cuda-host.js';

const CXX = HOST_CXX;

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

/** All kernels of the given programs in one host library (one compiler run). */
function buildHost(lowered: readonly LoweredProgram[]) {
  const bodies = new Map<string, string>();
  for (const l of lowered) {
    for (const u of l.units) {
      assert.deepEqual(u.parts, [], `${u.name} needs prelude parts the shim does not emulate`);
      bodies.set(u.name, u.body);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'synk-emu-'));
  writeFileSync(join(dir, 'k.cpp'), [SHIM, COMMON, ...bodies.values()].join('\n'));
  const r = spawnSync(CXX!, ['-std=c++17', '-O1', '-shared', '-fPIC', '-w', join(dir, 'k.cpp'), '-o', join(dir, 'k.so')], { encoding: 'utf8' });
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
type Host = ReturnType<typeof buildHost>;

/** Runs a lowered program's steps over host memory; returns its outputs. */
function runOnHost(host: Host, program: Program, lowered: LoweredProgram, values: readonly NDArray[]): NDArray[] {
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
    tf32: false,
      bf16: false,
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

interface Case { name: string; inputs: T.Variable[]; outputs: T.Variable[]; values: NDArray[]; before?: () => void; after?: () => void }

const sym = (a: NDArray, name: string) => T.tensor({ dtype: a.dtype, ndim: a.ndim, name });
const two = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

function convCases(): Case[] {
  const out: Case[] = [];
  const geometries: [
    string,
    number[],
    number[],
    { stride?: number | [number, number]; padding?: [number, number] | 'same'; dilation?: number | [number, number]; groups?: number },
  ][] = [
    ['groups 3, 5 images', [5, 6, 5, 4], [9, 2, 3, 2], { groups: 3, padding: [1, 0], dilation: [2, 1] }],
    ['groups 4, 2 images, stride', [2, 8, 5, 6], [8, 2, 3, 3], { groups: 4, stride: [2, 1], padding: [1, 1] }],
    ["'same', even kernel", [2, 3, 4, 5], [2, 3, 2, 2], { padding: 'same' }],
    ['1x1, groups 2 (no column buffer)', [3, 4, 3, 5], [6, 2, 1, 1], { groups: 2 }],
    ['1x1 stride 2', [2, 4, 5, 5], [3, 4, 1, 1], { stride: 2 }],
    ['kernel larger than the input, padded', [1, 1, 2, 2], [1, 1, 3, 3], { padding: [1, 1] }],
  ];
  let seed = 100;
  for (const dtype of ['float32', 'float64'] as const) {
    for (const chunked of [false, true]) {
      for (const [title, xs, ws, o] of geometries) {
        const attrs = { stride: two(o.stride ?? 1), padding: o.padding ?? [0, 0], dilation: two(o.dilation ?? 1), groups: o.groups ?? 1 };
        const x = randomArray(xs, seed++, { dtype }), w = randomArray(ws, seed++, { dtype });
        const y = T.fn({ inputs: [], outputs: T.conv2d(T.constant(x), T.constant(w), attrs) })() as NDArray;
        const gy = randomArray(y.shape, seed++, { dtype });
        const xv = sym(x, 'x'), wv = sym(w, 'w'), gv = sym(gy, 'gy');
        const limit = convColumnLimit.bytes;
        out.push({
          name: `conv2d ${dtype}${chunked ? ' one image per chunk' : ''}: ${title}`,
          inputs: [xv, wv, gv],
          outputs: [applyOp('conv2d', [xv, wv], attrs), applyOp('conv2dInputGrad', [gv, wv, xv], attrs), applyOp('conv2dFilterGrad', [xv, gv, wv], attrs)],
          values: [x, w, gy],
          ...(chunked ? { before: () => { convColumnLimit.bytes = 1; }, after: () => { convColumnLimit.bytes = limit; } } : {}),
        });
      }
    }
  }
  return out;
}

function poolCases(): Case[] {
  const out: Case[] = [];
  const geometries: [number[], [number, number], [number, number], [number, number]][] = [
    [[2, 3, 6, 8], [2, 2], [2, 2], [0, 0]],
    [[2, 2, 7, 6], [3, 3], [2, 2], [1, 1]],
    [[2, 1, 6, 7], [4, 3], [1, 1], [3, 2]],
    [[3, 7, 5], [2, 2], [3, 3], [0, 0]],
    [[1, 0, 3], [2, 2], [1, 1], [1, 1]],
  ];
  let seed = 200;
  for (const dtype of ['float32', 'float64', 'int32'] as const) {
    for (const [shape, kernel, stride, padding] of geometries) {
      const attrs = { kernel, stride, padding };
      const ties = randomArray(shape, seed++, { dtype: 'int32', lo: -8, hi: 9 });
      const x = NDArray.from(Array.from(ties.data, (v) => (dtype === 'int32' ? v : v / 4)), { dtype, shape });
      if (dtype !== 'int32' && x.size > 7) { x.data[1] = NaN; x.data[7] = NaN; }
      const pooled = (T.fn({ inputs: [], outputs: T.maxPool2d(T.constant(x), { kernel, stride, padding }) })() as NDArray).shape;
      const gy = randomArray(
        pooled,
        seed++,
        { dtype: dtype === 'int32' ? 'float32' : dtype },
      ), g = randomArray(shape, seed++, { dtype: dtype === 'int32' ? 'float32' : dtype });
      const xv = sym(x, 'x'), gyv = sym(gy, 'gy'), gv = sym(g, 'g');
      out.push({
        name: `pooling ${dtype} ${JSON.stringify(attrs)} over ${JSON.stringify(shape)}`,
        inputs: [xv, gyv, gv],
        outputs: [
          applyOp('maxPool2d', [xv], attrs), applyOp(
            'avgPool2d',
            [xv],
            { ...attrs, countIncludePad: true },
          ), applyOp('avgPool2d', [xv], { ...attrs, countIncludePad: false }),
          applyOp('maxPool2dGrad', [xv, gyv], attrs), applyOp('maxPool2dGradGrad', [xv, gv], attrs),
          applyOp('avgPool2dGrad', [gyv, xv], { ...attrs, countIncludePad: true }), applyOp('avgPool2dGrad', [gyv, xv], { ...attrs, countIncludePad: false }),
        ],
        values: [x, gy, g],
      });
    }
  }
  return out;
}

function incTakeCases(): Case[] {
  const out: Case[] = [];
  const layouts: [number[], number[], number[], number][] = [
    [[5, 3], [0, 2, 0, -1, 2, 2], [6], 0],
    [[2, 5, 3], [4, 4, 0, 1, -5, 3], [2, 3], 1],
    [[2, 3, 4], [3, 3, 3], [3], 2],
    [[4, 2], [-2], [], 0],
    [[4, 2], [], [0], 0],
  ];
  let seed = 300;
  for (const dtype of ['float32', 'float64', 'int32', 'uint8'] as const) {
    for (const [xs, iv, is, axis] of layouts) {
      const region = [...xs.slice(0, axis), ...is, ...xs.slice(axis + 1)];
      const x = randomArray(xs, seed++, { dtype: dtype === 'uint8' ? 'int32' : dtype, lo: 0, hi: 50 }).astype(dtype);
      const idx = NDArray.from(iv, { dtype: 'int32' }).reshape(is);
      for (const yShape of [region, region.slice(1)]) {
        const y = randomArray(yShape, seed++, { dtype: dtype === 'uint8' ? 'int32' : dtype, lo: 0, hi: 50 }).astype(dtype);
        const xv = sym(x, 'x'), yv = sym(y, 'y'), iv2 = sym(idx, 'i');
        out.push({
          name: `incTake ${dtype} x ${JSON.stringify(xs)} indices ${JSON.stringify(iv)} on axis ${axis}, y ${JSON.stringify(yShape)}`,
          inputs: [xv, yv, iv2],
          outputs: [applyOp('incTake', [xv, yv, iv2], { axis, set: false }), applyOp('incTake', [xv, yv, iv2], { axis, set: true })],
          values: [x, y, idx],
        });
      }
    }
  }
  return out;
}

function rowwiseCases(): Case[] {
  const out: Case[] = [];
  let seed = 400;
  for (const dtype of ['float32', 'float64'] as const) {
    for (const [rows, classes] of [[7, 3], [1, 5], [0, 4]] as const) {
      const x = randomArray([rows, classes], seed++, { dtype });
      const t = NDArray.from(Array.from({ length: rows }, (_, r) => (r * 2 + 1) % classes), { dtype: 'int32' });
      const g = randomArray([rows], seed++, { dtype });
      const xv = sym(x, 'x'), tv = sym(t, 't'), gv = sym(g, 'g');
      out.push({
        name: `takeRowwise / scatterRowwise ${dtype} ${rows}x${classes} (indices checked on the device)`,
        inputs: [xv, tv, gv],
        outputs: [applyOp('takeRowwise', [xv, tv], {}), applyOp('scatterRowwise', [gv, tv, xv], {})],
        values: [x, t, g],
      });
    }
  }
  return out;
}

const CXX_SKIP = CXX === null ? 'no host C++ compiler (g++, c++ or clang++)' : false;
test('conv2d, pooling, incTake and per-row gather lowerings run on the CPU through the kernel shim and match the reference', { skip: CXX_SKIP }, () => {
  const cases = [...convCases(), ...poolCases(), ...incTakeCases(), ...rowwiseCases()];
  const programs = cases.map((c) => T.fn({ inputs: c.inputs, outputs: c.outputs }).compiled.description.program);
  const lowered = programs.map((p) => lowerProgram(p));
  const host = buildHost(lowered);
  const reference = new T.ReferenceDevice();
  cases.forEach((c, i) => {
    c.before?.();
    try {
      const got = runOnHost(host, programs[i]!, lowered[i]!, c.values);
      const want = T.fn({ inputs: c.inputs, outputs: c.outputs, device: reference })(...c.values) as NDArray[];
      got.forEach((g, k) => {
        assert.equal(g.dtype, want[k]!.dtype, `${c.name} output ${k} dtype`);
        assertAllClose(g, want[k]!, g.dtype === 'float32' ? { rtol: 1e-5, atol: 1e-5 } : { rtol: 1e-12, atol: 1e-12 }, `${c.name} output ${k}`);
      });
    } finally {
      c.after?.();
    }
  });
});

/** The conv cases' programs under the 'bf16' policy, and one matmul with broadcast batches and transposes. */
function bf16Cases(): Case[] {
  const f32 = { dtype: 'float32' } as const;
  const a = randomArray([2, 5, 7], 500, f32), b = randomArray([7, 6], 501, f32), c = randomArray([3, 7], 502, f32);
  const av = sym(a, 'a'), bv = sym(b, 'b'), cv = sym(c, 'c');
  const matmuls: Case = {
    name: 'matmul bfloat16: broadcast batch, transposed operands',
    inputs: [av, bv, cv],
    outputs: [T.matmul(av, bv), applyOp('matmul', [cv, av], { transA: false, transB: true }), applyOp('matmul', [bv, cv], { transA: true, transB: true })],
    values: [a, b, c],
  };
  return [...convCases().filter((k) => k.name.startsWith('conv2d float32')), matmuls].map((k) => ({ ...k, name: `${k.name} (precision bf16)` }));
}

test("the 'bf16' policy's conv2d, conv gradients and matmul lowerings (im2col + bfloat16 GEMM) match the reference's rounding", { skip: CXX_SKIP }, () => {
  const cases = bf16Cases();
  const programs = cases.map((c) => T.fn({ inputs: c.inputs, outputs: c.outputs, precision: 'bf16' }).compiled.description.program);
  for (const p of programs) assert.ok(p.steps.some((st) => st.attrs['precision'] === 'bf16'), 'the pass marked the products');
  const lowered = programs.map((p) => lowerProgram(p));
  const host = buildHost(lowered);
  const reference = new T.ReferenceDevice();
  let roundingShows = 0;
  cases.forEach((c, i) => {
    c.before?.();
    try {
      const got = runOnHost(host, programs[i]!, lowered[i]!, c.values);
      const want = T.fn({ inputs: c.inputs, outputs: c.outputs, device: reference, precision: 'bf16' })(...c.values) as NDArray[];
      const exact = T.fn({ inputs: c.inputs, outputs: c.outputs, device: reference })(...c.values) as NDArray[];
      got.forEach((g, k) => {
        assertAllClose(g, want[k]!, { rtol: 1e-5, atol: 1e-5 }, `${c.name} output ${k}`);
        const off = Array.from(g.data).some((v, e) => Math.abs(v - exact[k]!.data[e]!) > 1e-4 * (1 + Math.abs(exact[k]!.data[e]!)));
        if (off) roundingShows++;
      });
    } finally {
      c.after?.();
    }
  });
  // The operands really were rounded: most results differ from float32 products by far more than float32 rounding.
  assert.ok(roundingShows >= cases.length * 2, `only ${roundingShows} of ${cases.length * 3} outputs differ from the float32 products`);
});

test('the lowerings throw the reference errors for bad shapes and indices', { skip: CXX === null ? 'no host C++ compiler' : false }, () => {
  const x = T.tensor4('x'), w = T.tensor4('w'), gy = T.tensor4('gy');
  const v = T.matrix('v'), i = T.tensor({ dtype: 'int32', ndim: 1, name: 'i' }), y = T.matrix('y'), gv = T.vector('g');
  const f32 = (shape: number[]) => randomArray(shape, 1, { dtype: 'float32' });
  const cases: [T.Variable[], T.Variable, NDArray[], RegExp][] = [
    [[x, w], T.conv2d(x, w), [f32([1, 3, 4, 4]), f32([2, 2, 3, 3])], /^conv2d: filters expect 2 channels per group, input has 3 channels/],
    [
      [gy, w, x],
      T.conv2dInputGrad(gy, w, x),
      [f32([1, 2, 3, 2]), f32([2, 1, 3, 3]), f32([1, 1, 4, 4])],
      /^conv2dInputGrad: output gradient has shape \(1, 2, 3, 2\), the convolution gives \(1, 2, 2, 2\)$/,
    ],
    [[x, gy, w], T.conv2dFilterGrad(x, gy, w), [f32([1, 1, 4, 4]), f32([1, 2, 3, 2]), f32([2, 1, 3, 3])], /^conv2dFilterGrad: output gradient has shape/],
    [
      [x],
      T.maxPool2d(x, { kernel: 3 }),
      [f32([1, 1, 2, 5])],
      /^maxPool2d: output size 0x1 is not positive \(input \(1, 1, 2, 5\), kernel 3x3, stride 3x3, padding 0x0\)$/,
    ],
    [
      [v, y, i],
      T.incSubtensor(v.take(i, 0), y),
      [f32([3, 2]), f32([2, 2]), NDArray.from([0, 3], { dtype: 'int32' })],
      /^incTake: index 3 \(at position 1 of the indices\) is out of range for axis 0 of size 3/,
    ],
    [
      [v, y, i],
      T.incSubtensor(v.take(i, 0), y),
      [f32([3, 2]), f32([3, 2]), NDArray.from([0, 1], { dtype: 'int32' })],
      /^incTake: y of shape \(3, 2\) does not broadcast to the selected region of shape \(2, 2\)/,
    ],
    [[v, i], applyOp('takeRowwise', [v, i], {}), [f32([3, 2]), NDArray.from([1, 2, 0], { dtype: 'int32' })],
      /^takeRowwise: index 2 is out of range for 2 classes \(values of shape \(3, 2\)\)$/],
    [[gv, i, v], applyOp('scatterRowwise', [gv, i, v], {}), [f32([3]), NDArray.from([-1, 0, 0], { dtype: 'int32' }), f32([3, 2])],
      /^scatterRowwise: index -1 is out of range for 2 classes/],
  ];
  const lowered = cases.map(([inputs, out]) => lowerProgram(T.fn({ inputs, outputs: out }).compiled.description.program));
  const host = buildHost(lowered);
  cases.forEach(([inputs, out, values, re], k) => {
    const program = T.fn({ inputs, outputs: out }).compiled.description.program;
    assert.throws(() => runOnHost(host, program, lowered[k]!, values), (e: Error) => e.name === 'OpRuntimeError' && re.test(e.message));
  });
});
