// The CPU device's float32 batch-norm kernels: the four ops of ops/batchnorm.ts in WebAssembly SIMD
// (wasm-bn.ts) on the thread's heap, a chunk of whole (n, c) runs at a time (copied in and out
// with one memcpy each). Statistics accumulate in float64 as the reference's do (in another order
// inside a run, so the last bits may differ); per-feature factors are derived in float64 and the
// elementwise results computed in float32 (the mean in two float32 parts, see wasm-bn.ts). Other
// dtypes, devices without SIMD, empty batches and operands whose shapes do not fit (the reference
// raises the error) run the reference perform. Per-feature values live in the heap too, so a call
// allocates nothing but its output (the reference perform allocated its result and scratch arrays).
import { NDArray } from '../../tensor/ndarray.js';
import { checkOperands, featureLayout, type BatchNormAttrs, type BatchNormTrainAttrs, type FeatureLayout } from '../../ops/batchnorm.js';
import { reference, type Kernel, type StepRunner } from './kernel-types.js';
import { trimWasmHeap, wasmHeap, type WasmHeap } from './wasm-heap.js';
import { bnKernels, type BnExports } from './wasm-bn.js';

/** Values per chunk of runs (128 KiB of float32 per operand: the chunk's operands stay in L2). */
const CHUNK_VALUES = 32768;

interface Work {
  g: FeatureLayout;
  heap: WasmHeap;
  k: BnExports;
  /**
   * Runs per chunk, and byte addresses: operand regions a, b, c (one chunk each), float64 sums per
   * feature (2C), float64 means (C), float32 parameters (5C).
   */
  runs: number;
  a: number;
  b: number;
  c: number;
  f64: number;
  mean: number;
  params: number;
}

function begin(g: FeatureLayout, simd: boolean): Work {
  const heap = wasmHeap(simd);
  const runs = Math.max(1, Math.floor(CHUNK_VALUES / Math.max(1, g.inner)));
  const region = Math.ceil((runs * g.inner * 4) / 16) * 16;
  const f64 = 3 * region, mean = f64 + 16 * g.features, params = mean + 8 * g.features;
  heap.reserve(params + 20 * g.features + 16);
  return { g, heap, k: bnKernels(heap), runs, a: 0, b: region, c: 2 * region, f64, mean, params };
}

/** Calls each(r0, n, c0) for every chunk: runs [r0, r0 + n), the first of feature c0. */
function forEachChunk(w: Work, each: (r0: number, n: number, c0: number) => void): void {
  const total = w.g.outer * w.g.features;
  for (let r0 = 0; r0 < total; r0 += w.runs) each(r0, Math.min(w.runs, total - r0), r0 % w.g.features);
}

const into = (w: Work, at: number, src: Float32Array, r0: number, n: number): void =>
  w.heap.f32.set(src.subarray(r0 * w.g.inner, (r0 + n) * w.g.inner), at / 4);
const outOf = (w: Work, at: number, dst: Float32Array, r0: number, n: number): void =>
  dst.set(w.heap.f32.subarray(at / 4, at / 4 + n * w.g.inner), r0 * w.g.inner);

const allF32 = (arrays: readonly NDArray[]): boolean => arrays.every((a) => a.data instanceof Float32Array);

/** A kernel that checks its operands as the reference does (or runs it), then runs `fast` on float32 ones. */
function bnKernel<A extends BatchNormAttrs | Record<string, never>>(
  check: (inputs: readonly NDArray[]) => FeatureLayout,
  fast: (w: Work, inputs: readonly NDArray[], out: NDArray, attrs: A) => void,
  outShape: (inputs: readonly NDArray[], g: FeatureLayout) => number[],
): Kernel<A> {
  return (step, cx): StepRunner => {
    const ref = reference(step);
    const simd = cx.simd !== false;
    if (!simd || step.outType.dtype !== 'float32') return ref;
    return (inputs, rt) => {
      let g: FeatureLayout;
      try {
        g = check(inputs);
      } catch {
        return ref(inputs);
      }
      if (!allF32(inputs) || g.count === 0) return ref(inputs);
      const out = rt.output('float32', outShape(inputs, g));
      const w = begin(g, simd);
      fast(w, inputs, out, step.attrs);
      trimWasmHeap(w.heap);
      return out;
    };
  };
}

const pairShape = (_: readonly NDArray[], g: FeatureLayout): number[] => [2, g.features];
const xShape = (inputs: readonly NDArray[]): number[] => [...inputs[0]!.shape];

/** Writes `values` (per feature) as float64 into the heap at byte `at`. */
function putF64(w: Work, at: number, values: ArrayLike<number>): void {
  w.heap.f64.set(values, at / 8);
}

export const bnStatsKernel: Kernel<Record<string, never>> = bnKernel((inputs) => featureLayout('bnStats', inputs[0]!.shape), (w, inputs, out) => {
  const x = inputs[0]!.data as Float32Array;
  const { features, count } = w.g;
  const f64 = w.heap.f64, at = w.f64 / 8, meanAt = w.mean / 8;
  f64.fill(0, at, at + 2 * features);
  forEachChunk(w, (r0, n, c0) => { into(w, w.a, x, r0, n); w.k.sums(w.a, n, w.g.inner, features, c0, w.f64, 0); });
  for (let c = 0; c < features; c++) f64[meanAt + c] = f64[at + c]! / count;
  f64.fill(0, at, at + features);
  forEachChunk(w, (r0, n, c0) => { into(w, w.a, x, r0, n); w.k.centredSums(w.a, n, w.g.inner, features, c0, w.f64, w.mean); });
  for (let c = 0; c < features; c++) {
    out.data[c] = f64[meanAt + c]!;
    out.data[features + c] = f64[at + c]! / count;
  }
}, pairShape);

/** 1 / sqrt(var + eps) of feature c, in float64. */
const invStd = (stats: NDArray, features: number, c: number, eps: number): number => 1 / Math.sqrt(stats.data[features + c]! + eps);

export const bnTrainKernel: Kernel<BatchNormTrainAttrs> = bnKernel<BatchNormTrainAttrs>((inputs) => {
  const [x, stats, gamma, beta] = inputs as [NDArray, NDArray, NDArray, NDArray];
  return checkOperands('bnTrain', x.shape, [['stats', stats.shape]], [['gamma', gamma.shape], ['beta', beta.shape]]);
}, (w, inputs, out, attrs) => {
  const [x, stats, gamma, beta] = inputs as [NDArray, NDArray, NDArray, NDArray];
  const { features, inner } = w.g;
  const p = w.heap.f32, at = w.params / 4;
  for (let c = 0; c < features; c++) {
    const m = stats.data[c]!, mh = Math.fround(m);
    p[at + 4 * c] = mh;
    p[at + 4 * c + 1] = m - mh;
    p[at + 4 * c + 2] = invStd(stats, features, c, attrs.epsilon) * gamma.data[c]!;
    p[at + 4 * c + 3] = beta.data[c]!;
  }
  const run = attrs.relu === true ? w.k.affineRelu : w.k.affine;
  forEachChunk(w, (r0, n, c0) => {
    into(w, w.a, x.data as Float32Array, r0, n);
    run(w.a, w.c, n, inner, features, c0, w.params);
    outOf(w, w.c, out.data as Float32Array, r0, n);
  });
}, xShape);

export const bnGradStatsKernel: Kernel<BatchNormAttrs> = bnKernel<BatchNormAttrs>((inputs) => {
  const [x, stats, gy] = inputs as [NDArray, NDArray, NDArray];
  return checkOperands('bnGradStats', x.shape, [['stats', stats.shape]], [], [['gy', gy.shape]]);
}, (w, inputs, out, attrs) => {
  const [x, stats, gy] = inputs as [NDArray, NDArray, NDArray];
  const { features, inner } = w.g;
  const f64 = w.heap.f64, at = w.f64 / 8, meanAt = w.mean;
  f64.fill(0, at, at + 2 * features);
  putF64(w, meanAt, stats.data.subarray(0, features));
  forEachChunk(w, (r0, n, c0) => {
    into(w, w.a, x.data as Float32Array, r0, n);
    into(w, w.b, gy.data as Float32Array, r0, n);
    w.k.gradSums(w.a, w.b, n, inner, features, c0, w.f64, meanAt);
  });
  for (let c = 0; c < features; c++) {
    out.data[c] = w.heap.f64[at + c]!;
    out.data[features + c] = w.heap.f64[at + features + c]! * invStd(stats, features, c, attrs.epsilon);
  }
}, pairShape);

export const bnGradInputKernel: Kernel<BatchNormAttrs> = bnKernel<BatchNormAttrs>((inputs) => {
  const [x, stats, gamma, gy, gs] = inputs as [NDArray, NDArray, NDArray, NDArray, NDArray];
  return checkOperands('bnGradInput', x.shape, [['stats', stats.shape], ['gstats', gs.shape]], [['gamma', gamma.shape]], [['gy', gy.shape]]);
}, (w, inputs, out, attrs) => {
  const [x, stats, gamma, gy, gs] = inputs as [NDArray, NDArray, NDArray, NDArray, NDArray];
  const { features, inner, count } = w.g;
  const p = w.heap.f32, at = w.params / 4;
  for (let c = 0; c < features; c++) {
    const m = stats.data[c]!, mh = Math.fround(m), r = invStd(stats, features, c, attrs.epsilon);
    p[at + 5 * c] = mh;
    p[at + 5 * c + 1] = m - mh;
    p[at + 5 * c + 2] = (r * gs.data[features + c]!) / count;
    p[at + 5 * c + 3] = gamma.data[c]! * r;
    p[at + 5 * c + 4] = gs.data[c]! / count;
  }
  forEachChunk(w, (r0, n, c0) => {
    into(w, w.a, x.data as Float32Array, r0, n);
    into(w, w.b, gy.data as Float32Array, r0, n);
    w.k.gradInput(w.a, w.b, w.c, n, inner, features, c0, w.params);
    outOf(w, w.c, out.data as Float32Array, r0, n);
  });
}, xShape);
