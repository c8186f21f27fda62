// Batch-norm kernels (src/ops/batchnorm.ts) over an operand laid out as [outer, C, inner] (NCHW:
// N, C, H*W). The per-feature sums (bnStats: x and x^2; bnGradStats: gy and gy*xhat) take two
// passes: a grid of (C, splits) blocks, each summing its share of one feature's outer*inner
// elements in double (a warp-shuffle and shared-memory block reduction), then one thread per feature
// adding its splits in order. The normalisation and the input gradient are grid-stride loops, one
// thread per element, computed in double and stored in the output's dtype. The variance is
// E[x^2] - E[x]^2 in double (clamped at 0): exact enough for float32 data, one read of x instead of two.
import type { Storage } from '../storage.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import type { ModuleBuilder } from './module.js';

/** Threads per block of the partial-sum kernels (the block reduction assumes a multiple of 32, at most 1024). */
export const BN_THREADS = 256;

const BLOCK_SUM = String.raw`#ifndef SK_BN_BLOCK_SUM
#define SK_BN_BLOCK_SUM
/** The block's total of a and of b (valid in thread 0), through warp shuffles and one shared array. */
DEV void sk_bn_block_sum2(double* a, double* b) {
  __shared__ double sa[32], sb[32];
  for (int o = 16; o > 0; o >>= 1) {
    *a += __shfl_down_sync(0xffffffffu, *a, o);
    *b += __shfl_down_sync(0xffffffffu, *b, o);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) { sa[warp] = *a; sb[warp] = *b; }
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + 31) >> 5;
    *a = lane < warps ? sa[lane] : 0.0;
    *b = lane < warps ? sb[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) {
      *a += __shfl_down_sync(0xffffffffu, *a, o);
      *b += __shfl_down_sync(0xffffffffu, *b, o);
    }
  }
}
#endif`;

/** The loop of a partial-sum block over its share of feature c's elements; `body` reads element `at`. */
function partialLoop(body: string): string {
  return `  const int c = blockIdx.x, s = blockIdx.y, splits = gridDim.y;
  const i64 count = outer * inner, chunk = (count + splits - 1) / splits;
  const i64 lo = (i64)s * chunk, hi = lo + chunk < count ? lo + chunk : count;
  double a = 0.0, b = 0.0;
  for (i64 j = lo + threadIdx.x; j < hi; j += blockDim.x) {
    const i64 n = j / inner;
    const i64 at = (n * C + c) * inner + (j - n * inner);
${body}
  }
  sk_bn_block_sum2(&a, &b);
  if (threadIdx.x == 0) { part[((i64)c * splits + s) * 2] = a; part[((i64)c * splits + s) * 2 + 1] = b; }`;
}

/** part[(c, s)] = (sum x, sum x^2) over split s of feature c: (part, x, outer, C, inner); grid (C, splits). */
export function bnStatsPartialKernel(mb: ModuleBuilder, xType: Storage): string {
  const name = `bn_stats_part_${dtag(xType)}`;
  mb.define(name, `${BLOCK_SUM}
extern "C" __global__ void __launch_bounds__(${BN_THREADS}) ${name}(double* __restrict__ part, const ${ctype(xType)}* __restrict__ x, i64 outer, int C,
    i64 inner) {
${partialLoop('    const double v = (double)x[at];\n    a += v;\n    b += v * v;')}
}`);
  return name;
}

/** part[(c, s)] = (sum gy, sum gy*xhat) over split s of feature c: (part, x, stats, gy, outer, C, inner, eps); grid (C, splits). */
export function bnGradPartialKernel(mb: ModuleBuilder, xType: Storage, statsType: Storage, gyType: Storage): string {
  const name = `bn_grad_part_${dtag(xType)}_${dtag(statsType)}_${dtag(gyType)}`;
  mb.define(name, `${BLOCK_SUM}
extern "C" __global__ void __launch_bounds__(${BN_THREADS}) ${name}(double* __restrict__ part, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gyType)}* __restrict__ gy, i64 outer, int C, i64 inner, double eps) {
  const double mean = (double)stats[blockIdx.x], rs = 1.0 / sqrt((double)stats[C + blockIdx.x] + eps);
${partialLoop('    const double g = (double)gy[at];\n    a += g;\n    b += g * ((double)x[at] - mean) * rs;')}
}`);
  return name;
}

/**
 * out[c] and out[C + c] from the splits of part: mode 0 (bnStats) the mean and the biased variance
 * over `count` elements (NaN for none), mode 1 (bnGradStats) the two sums: (out, part, C, splits, count, mode).
 */
export function bnFinishKernel(mb: ModuleBuilder, outType: Storage): string {
  const name = `bn_finish_${dtag(outType)}`;
  const store = storeFn(outType);
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(outType)}* __restrict__ out, const double* __restrict__ part,
    int C, int splits, i64 count, int mode) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < C; c += gridDim.x * blockDim.x) {
    // No elements: no partial sums were written; the sums are 0 and the statistics NaN (as the reference).
    if (count == 0) { out[c] = ${store}(mode == 1 ? 0.0 : SK_NAN_D); out[C + c] = ${store}(mode == 1 ? 0.0 : SK_NAN_D); continue; }
    double a = 0.0, b = 0.0;
    for (int s = 0; s < splits; s++) { a += part[((i64)c * splits + s) * 2]; b += part[((i64)c * splits + s) * 2 + 1]; }
    if (mode == 1) { out[c] = ${store}(a); out[C + c] = ${store}(b); continue; }
    const double mean = a / (double)count, v = b / (double)count - mean * mean;
    out[c] = ${store}(mean);
    out[C + c] = ${store}(v > 0.0 ? v : 0.0);
  }
}`);
  return name;
}

/** Grid-stride loop over the `total` elements; c is element o's feature. */
function overElements(body: string): string {
  return `  for (i64 o = (i64)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (i64)gridDim.x * blockDim.x) {
    const int c = (int)((o / inner) % C);
    const double mean = (double)stats[c], rs = 1.0 / sqrt((double)stats[C + c] + eps);
${body}
  }`;
}

/** y = (x - mean) / sqrt(var + eps) * gamma + beta, then relu when `relu` is set: (y, x, stats, gamma, beta, total, C, inner, eps, relu). */
export function bnApplyKernel(mb: ModuleBuilder, outType: Storage, xType: Storage, statsType: Storage, gammaType: Storage, betaType: Storage): string {
  const name = `bn_apply_${[outType, xType, statsType, gammaType, betaType].map(dtag).join('_')}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(outType)}* __restrict__ y, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gammaType)}* __restrict__ gamma, const ${ctype(betaType)}* __restrict__ beta,
    i64 total, int C, i64 inner, double eps, int relu) {
${overElements(`    double v = ((double)x[o] - mean) * rs * (double)gamma[c] + (double)beta[c];
    if (relu) v = v > 0.0 ? v : (v == v ? 0.0 : v);
    y[o] = ${storeFn(outType)}(v);`)}
}`);
  return name;
}

/** dx = gamma rs (gy - (g[0] + xhat g[1]) / count): (dx, x, stats, gamma, gy, gstats, total, C, inner, eps, count). */
export function bnGradInputKernel(mb: ModuleBuilder, outType: Storage, xType: Storage, statsType: Storage, gammaType: Storage, gyType: Storage,
  gsType: Storage): string {
  const name = `bn_grad_input_${[outType, xType, statsType, gammaType, gyType, gsType].map(dtag).join('_')}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(outType)}* __restrict__ dx, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gammaType)}* __restrict__ gamma, const ${ctype(gyType)}* __restrict__ gy,
    const ${ctype(gsType)}* __restrict__ gs, i64 total, int C, i64 inner, double eps, i64 count) {
${overElements(`    const double xhat = ((double)x[o] - mean) * rs;
    dx[o] = ${storeFn(outType)}((double)gamma[c] * rs * ((double)gy[o] - ((double)gs[c] + xhat * (double)gs[C + c]) / (double)count));`)}
}`);
  return name;
}
