// Batch norm's four ops on the GPU with the kernels of codegen/batchnorm.ts: the statistics and the
// gradient sums as a (features x splits) grid of block reductions in double plus a finishing pass,
// the normalisation and the input gradient as one elementwise pass each. Shapes are checked as the
// reference perform checks them (the same OpRuntimeErrors), before anything is queued. A channels-last
// operand (storage.ts) is N*H*W rows of C channels: its sums run through the channels-last partial kernels,
// its elementwise passes take each thread's channels' constants once (codegen's *NhwcKernel), and an operand in
// the other layout is converted to x's first.
import { checkOperands, featureLayout, type BatchNormAttrs, type BatchNormTrainAttrs, type FeatureLayout } from '../../../ops/batchnorm.js';
import {
  BN_NHWC_BLOCK, BN_PLANE_MIN_INNER, BN_THREADS, bnApplyKernel, bnApplyNhwcKernel, bnFinishKernel, bnGradInputKernel, bnGradInputNhwcKernel,
  bnGradPartialKernel, bnGradPartialNhwcKernel, bnStatsPartialKernel, bnStatsPartialNhwcKernel, type NhwcWidth,
} from '../codegen/batchnorm.js';
import type { Dim3 } from '../ffi/driver.js';
import type { CudaArray } from '../cuda-array.js';
import type { KernelArg } from '../ffi/kernel-params.js';
import { f64, i32, i64, ptr, type Lowering, type RunState } from './types.js';

/** Blocks per feature for the partial sums: enough blocks to fill the GPU, each with at least 2048 elements. */
export function bnSplits(g: FeatureLayout): number {
  const byWork = Math.max(1, Math.floor(g.count / 2048));
  return Math.max(1, Math.min(Math.ceil(1024 / Math.max(1, g.features)), byWork, 4096));
}

/** Splits of the rows for the channels-last partial sums: about 1024 blocks, each with at least 64 rows (8 per row lane). */
export function bnNhwcSplits(g: FeatureLayout): number {
  const tiles = Math.ceil(g.features / 32);
  return Math.max(1, Math.min(Math.ceil(1024 / Math.max(1, tiles)), Math.floor(g.count / 64), 4096));
}


/** The channels each thread of the channels-last elementwise kernels takes: 4 when C and every array allow 16-byte accesses. */
function nhwcWidth(features: number, arrays: readonly CudaArray[]): NhwcWidth {
  return features % 4 === 0 && arrays.every((a) => a.ptr % 16n === 0n) ? 4 : 1;
}

/** The grid of a channels-last elementwise kernel: channel groups by row blocks, about 2048 blocks, 8 rows a block row. */
function nhwcGrid(g: FeatureLayout, width: NhwcWidth): Dim3 {
  const x = Math.ceil(g.features / (32 * width));
  return [x, Math.max(1, Math.min(65535, Math.ceil(g.count / 8), Math.ceil(2048 / x)))];
}

/** The grid of the NCHW elementwise passes: a block a plane (at most 2^20 blocks, grid-stride) for planes of BN_PLANE_MIN_INNER or more. */
function planesGrid(s: RunState, g: FeatureLayout, size: number): Dim3 {
  return g.inner >= BN_PLANE_MIN_INNER ? Math.min(g.outer * g.features, 2 ** 20) : s.ctx.gridFor(size);
}

/** 1 when every element index of an elementwise pass fits 32 bits (its feature is then found by 32-bit division). */
function narrowIndex(total: number): 0 | 1 {
  return total < 2 ** 32 ? 1 : 0;
}

/** The partial sums of a (features x splits) grid (channels-last: (channel tiles x splits)) into a temporary, then the finishing pass into out. */
function reduceFeatures(s: RunState, g: FeatureLayout, partial: string, finish: string, args: (part: CudaArray) => readonly KernelArg[],
  out: CudaArray, mode: 0 | 1, nhwc = false): void {
  if (g.features === 0) return;
  const splits = g.count === 0 ? 1 : nhwc ? bnNhwcSplits(g) : bnSplits(g);
  const part = s.temp('float64', [g.features, splits, 2]);
  const grid: Dim3 = nhwc ? [Math.ceil(g.features / 32), splits] : [g.features, splits];
  if (g.count > 0) s.launch(partial, grid, nhwc ? BN_NHWC_BLOCK : BN_THREADS, args(part));
  s.launch(finish, s.ctx.gridFor(g.features), 256, [ptr(out), ptr(part), i32(g.features), i32(splits), i64(g.count), i32(mode)]);
  part.release();
}

export const lowerBnStats: Lowering = (lc, step) => {
  const dt = lc.slotDtype(step.output);
  const partial = bnStatsPartialKernel(lc.mb, lc.slotStorage(step.inputs[0]!));
  const partialNhwc = bnStatsPartialNhwcKernel(lc.mb, lc.slotStorage(step.inputs[0]!));
  const finish = bnFinishKernel(lc.mb, dt);
  return (s, st) => {
    const g = featureLayout('bnStats', s.shape(st.inputs[0]!));
    const out = s.alloc(dt, [2, g.features]);
    const x = s.dev(st.inputs[0]!);
    if (x.layout === 'nhwc') {
      reduceFeatures(s, g, partialNhwc, finish, (part) => [ptr(part), ptr(x), i64(g.count), i32(g.features)], out, 0, true);
      return { dev: out };
    }
    reduceFeatures(s, g, partial, finish, (part) => [ptr(part), ptr(x), i64(g.outer), i32(g.features), i64(g.inner)], out, 0);
    return { dev: out };
  };
};

/** Inputs (x, stats, gamma, beta). */
export const lowerBnTrain: Lowering = (lc, step) => {
  const { epsilon: eps, relu } = step.attrs as BatchNormTrainAttrs;
  const dt = lc.slotDtype(step.output);
  const held = lc.slotStorage(step.output);
  const types = step.inputs.map((i) => lc.slotStorage(i)) as [never, never, never, never];
  const kernel = bnApplyKernel(lc.mb, held, ...types);
  const nhwc = { 1: bnApplyNhwcKernel(lc.mb, 1, held, ...types), 4: bnApplyNhwcKernel(lc.mb, 4, held, ...types) } as const;
  return (s, st) => {
    const [x, stats, gamma, beta] = st.inputs as [number, number, number, number];
    const g = checkOperands('bnTrain', s.shape(x), [['stats', s.shape(stats)]], [['gamma', s.shape(gamma)], ['beta', s.shape(beta)]]);
    const xd = s.dev(x);
    const out = s.alloc(dt, s.shape(x), held, xd.layout);
    if (out.size > 0 && xd.layout === 'nhwc') {
      const w = nhwcWidth(g.features, [out, xd]);
      s.launch(nhwc[w], nhwcGrid(g, w), BN_NHWC_BLOCK, [ptr(out), ...[x, stats, gamma, beta].map((i) => ptr(s.dev(i))),
        i64(g.count), i32(g.features), f64(eps), i32(relu === true ? 1 : 0)]);
    } else if (out.size > 0) {
      s.launch(kernel, planesGrid(s, g, out.size), 256, [ptr(out), ...[x, stats, gamma, beta].map((i) => ptr(s.dev(i))),
        i64(out.size), i32(g.features), i64(g.inner), f64(eps), i32(relu === true ? 1 : 0), i32(narrowIndex(out.size))]);
    }
    return { dev: out };
  };
};

/** Inputs (x, stats, gy): [sum gy, sum gy*xhat]. */
export const lowerBnGradStats: Lowering = (lc, step) => {
  const eps = (step.attrs as BatchNormAttrs).epsilon;
  const dt = lc.slotDtype(step.output);
  const [xt, statsT, gyT] = step.inputs.map((i) => lc.slotStorage(i)) as [never, never, never];
  const partial = bnGradPartialKernel(lc.mb, xt, statsT, gyT);
  const partialNhwc = bnGradPartialNhwcKernel(lc.mb, xt, statsT, gyT);
  const finish = bnFinishKernel(lc.mb, dt);
  return (s, st) => {
    const [x, stats, gy] = st.inputs as [number, number, number];
    const g = checkOperands('bnGradStats', s.shape(x), [['stats', s.shape(stats)]], [], [['gy', s.shape(gy)]]);
    const out = s.alloc(dt, [2, g.features]);
    const [xd, sd] = [x, stats].map((i) => s.dev(i)) as [CudaArray, CudaArray];
    const gd = s.inLayout(gy, xd.layout);
    if (xd.layout === 'nhwc') {
      reduceFeatures(s, g, partialNhwc, finish, (part) => [ptr(part), ptr(xd), ptr(sd), ptr(gd.arr), i64(g.count), i32(g.features), f64(eps)],
        out, 1, true);
    } else {
      reduceFeatures(s, g, partial, finish, (part) => [ptr(part), ptr(xd), ptr(sd), ptr(gd.arr), i64(g.outer), i32(g.features), i64(g.inner),
        f64(eps)], out, 1);
    }
    if (gd.temp) gd.arr.release();
    return { dev: out };
  };
};

/** Inputs (x, stats, gamma, gy, gstats). */
export const lowerBnGradInput: Lowering = (lc, step) => {
  const eps = (step.attrs as BatchNormAttrs).epsilon;
  const dt = lc.slotDtype(step.output);
  const held = lc.slotStorage(step.output);
  const types = step.inputs.map((i) => lc.slotStorage(i)) as [never, never, never, never, never];
  const kernel = bnGradInputKernel(lc.mb, held, ...types);
  const nhwc = { 1: bnGradInputNhwcKernel(lc.mb, 1, held, ...types), 4: bnGradInputNhwcKernel(lc.mb, 4, held, ...types) } as const;
  return (s, st) => {
    const [x, stats, gamma, gy, gs] = st.inputs as [number, number, number, number, number];
    const g = checkOperands('bnGradInput', s.shape(x), [['stats', s.shape(stats)], ['gstats', s.shape(gs)]], [['gamma', s.shape(gamma)]],
      [['gy', s.shape(gy)]]);
    const xd = s.dev(x);
    const gd = s.inLayout(gy, xd.layout);
    const out = s.alloc(dt, s.shape(x), held, xd.layout);
    if (out.size > 0 && xd.layout === 'nhwc') {
      const w = nhwcWidth(g.features, [out, xd, gd.arr]);
      s.launch(nhwc[w], nhwcGrid(g, w), BN_NHWC_BLOCK, [ptr(out), ptr(xd), ptr(s.dev(stats)), ptr(s.dev(gamma)), ptr(gd.arr), ptr(s.dev(gs)),
        i64(g.count), i32(g.features), f64(eps), i64(g.count)]);
    } else if (out.size > 0) {
      s.launch(kernel, planesGrid(s, g, out.size), 256, [ptr(out), ptr(xd), ptr(s.dev(stats)), ptr(s.dev(gamma)), ptr(gd.arr), ptr(s.dev(gs)),
        i64(out.size), i32(g.features), i64(g.inner), f64(eps), i64(g.count), i32(narrowIndex(out.size))]);
    }
    if (gd.temp) gd.arr.release();
    return { dev: out };
  };
};
