// Batch norm's four ops on the GPU with the kernels of codegen/batchnorm.ts: the statistics and the
// gradient sums as a (features x splits) grid of block reductions in double plus a finishing pass,
// the normalisation and the input gradient as one elementwise pass each. Shapes are checked as the
// reference perform checks them (the same OpRuntimeErrors), before anything is queued.
import { checkOperands, featureLayout, type BatchNormAttrs, type BatchNormTrainAttrs, type FeatureLayout } from '../../../ops/batchnorm.js';
import {
  BN_THREADS, bnApplyKernel, bnFinishKernel, bnGradInputKernel, bnGradPartialKernel, bnStatsPartialKernel,
} from '../codegen/batchnorm.js';
import type { CudaArray } from '../cuda-array.js';
import type { KernelArg } from '../ffi/kernel-params.js';
import { f64, i32, i64, ptr, type Lowering, type RunState } from './types.js';

/** Blocks per feature for the partial sums: enough blocks to fill the GPU, each with at least 2048 elements. */
export function bnSplits(g: FeatureLayout): number {
  const byWork = Math.max(1, Math.floor(g.count / 2048));
  return Math.max(1, Math.min(Math.ceil(1024 / Math.max(1, g.features)), byWork, 4096));
}

/** The partial sums of a (features x splits) grid into a temporary, then the finishing pass into out. */
function reduceFeatures(s: RunState, g: FeatureLayout, partial: string, finish: string, args: (part: CudaArray) => readonly KernelArg[],
  out: CudaArray, mode: 0 | 1): void {
  if (g.features === 0) return;
  const splits = g.count === 0 ? 1 : bnSplits(g);
  const part = s.temp('float64', [g.features, splits, 2]);
  if (g.count > 0) s.launch(partial, [g.features, splits], BN_THREADS, args(part));
  s.launch(finish, s.ctx.gridFor(g.features), 256, [ptr(out), ptr(part), i32(g.features), i32(splits), i64(g.count), i32(mode)]);
  part.release();
}

export const lowerBnStats: Lowering = (lc, step) => {
  const dt = lc.slotDtype(step.output);
  const partial = bnStatsPartialKernel(lc.mb, lc.slotStorage(step.inputs[0]!));
  const finish = bnFinishKernel(lc.mb, dt);
  return (s, st) => {
    const g = featureLayout('bnStats', s.shape(st.inputs[0]!));
    const out = s.alloc(dt, [2, g.features]);
    const x = s.dev(st.inputs[0]!);
    reduceFeatures(s, g, partial, finish, (part) => [ptr(part), ptr(x), i64(g.outer), i32(g.features), i64(g.inner)], out, 0);
    return { dev: out };
  };
};

/** Inputs (x, stats, gamma, beta). */
export const lowerBnTrain: Lowering = (lc, step) => {
  const { epsilon: eps, relu } = step.attrs as BatchNormTrainAttrs;
  const dt = lc.slotDtype(step.output);
  const held = lc.slotStorage(step.output);
  const kernel = bnApplyKernel(lc.mb, held, ...step.inputs.map((i) => lc.slotStorage(i)) as [never, never, never, never]);
  return (s, st) => {
    const [x, stats, gamma, beta] = st.inputs as [number, number, number, number];
    const g = checkOperands('bnTrain', s.shape(x), [['stats', s.shape(stats)]], [['gamma', s.shape(gamma)], ['beta', s.shape(beta)]]);
    const out = s.alloc(dt, s.shape(x), held);
    if (out.size > 0) {
      s.launch(kernel, s.ctx.gridFor(out.size), 256, [ptr(out), ...[x, stats, gamma, beta].map((i) => ptr(s.dev(i))),
        i64(out.size), i32(g.features), i64(g.inner), f64(eps), i32(relu === true ? 1 : 0)]);
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
  const finish = bnFinishKernel(lc.mb, dt);
  return (s, st) => {
    const [x, stats, gy] = st.inputs as [number, number, number];
    const g = checkOperands('bnGradStats', s.shape(x), [['stats', s.shape(stats)]], [], [['gy', s.shape(gy)]]);
    const out = s.alloc(dt, [2, g.features]);
    const [xd, sd, gd] = [x, stats, gy].map((i) => s.dev(i)) as [CudaArray, CudaArray, CudaArray];
    reduceFeatures(s, g, partial, finish, (part) => [ptr(part), ptr(xd), ptr(sd), ptr(gd), i64(g.outer), i32(g.features), i64(g.inner), f64(eps)],
      out, 1);
    return { dev: out };
  };
};

/** Inputs (x, stats, gamma, gy, gstats). */
export const lowerBnGradInput: Lowering = (lc, step) => {
  const eps = (step.attrs as BatchNormAttrs).epsilon;
  const dt = lc.slotDtype(step.output);
  const held = lc.slotStorage(step.output);
  const kernel = bnGradInputKernel(lc.mb, held, ...step.inputs.map((i) => lc.slotStorage(i)) as [never, never, never, never, never]);
  return (s, st) => {
    const [x, stats, gamma, gy, gs] = st.inputs as [number, number, number, number, number];
    const g = checkOperands('bnGradInput', s.shape(x), [['stats', s.shape(stats)], ['gstats', s.shape(gs)]], [['gamma', s.shape(gamma)]],
      [['gy', s.shape(gy)]]);
    const out = s.alloc(dt, s.shape(x), held);
    if (out.size > 0) {
      s.launch(kernel, s.ctx.gridFor(out.size), 256, [ptr(out), ...[x, stats, gamma, gy, gs].map((i) => ptr(s.dev(i))),
        i64(out.size), i32(g.features), i64(g.inner), f64(eps), i64(g.count)]);
    }
    return { dev: out };
  };
};
