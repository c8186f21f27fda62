// Batch-norm kernels (src/ops/batchnorm.ts) over an operand laid out as [outer, C, inner] (NCHW:
// N, C, H*W). The per-feature sums (bnStats: x and x^2; bnGradStats: gy and gy*xhat) take two
// passes: a grid of (C, splits) blocks, each summing its share of one feature's outer*inner
// elements in double (a warp-shuffle and shared-memory block reduction; the element's place found by
// stepping, not by a 64-bit division per element), then one thread per feature adding its splits in order.
// The normalisation and the input gradient are grid-stride loops, one thread per element: each feature's
// constants (mean, scale; the gradient's three coefficients) once per plane in double, then a subtraction and fused
// multiply-add per element in float (double for float64 operands), stored in the output's dtype. The variance
// is E[x^2] - E[x]^2 in double (clamped at 0): exact enough for float32 data, one read of x instead of two.
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
  // One division for the thread's first element and one for the stride; then its plane n and offset step along
  // (no i64 division per element, and one carry whatever inner is: inner = 1 for a dense layer's features).
  i64 j = lo + threadIdx.x, n = j / inner, off = j - n * inner;
  const i64 step = blockDim.x, dn = step / inner, doff = step - dn * inner;
  for (; j < hi; j += step) {
    const i64 at = (n * C + c) * inner + off;
${body}
    off += doff; n += dn;
    if (off >= inner) { off -= inner; n++; }
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

/** Threads of the channels-last partial-sum kernels: 32 channels x 8 rows. */
export const BN_NHWC_BLOCK: readonly [number, number, number] = [32, 8, 1];

/**
 * The loop of a channels-last partial-sum block (channels-last operand: rows of C channels, N*H*W rows):
 * channel blockIdx.x * 32 + threadIdx.x over split blockIdx.y of the rows, eight row lanes summed in order
 * through shared memory; the partial sums have the layout of partialLoop's, so bnFinishKernel finishes both.
 * `prologue` runs once per thread of a channel; `term` adds element `at` to a and b.
 */
function nhwcPartialLoop(prologue: string, term: readonly string[]): string {
  return `  const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * 32 + tx, s = blockIdx.y, splits = gridDim.y;
  const i64 chunk = (rows + splits - 1) / splits, lo = (i64)s * chunk, hi = lo + chunk < rows ? lo + chunk : rows;
  double a = 0.0, b = 0.0;
  if (c < C) {${prologue ? `\n    ${prologue}` : ''}
    for (i64 r = lo + ty; r < hi; r += 8) {
      const i64 at = r * C + c;
${term.map((t) => `      ${t}`).join('\n')}
    }
  }
  __shared__ double sa[8][33], sb[8][33];
  sa[ty][tx] = a;
  sb[ty][tx] = b;
  __syncthreads();
  if (ty == 0 && c < C) {
    for (int j = 1; j < 8; j++) { a += sa[j][tx]; b += sb[j][tx]; }
    part[((i64)c * splits + s) * 2] = a;
    part[((i64)c * splits + s) * 2 + 1] = b;
  }`;
}

/** bnStatsPartialKernel for a channels-last x: (part, x, rows, C); grid (ceil(C / 32), splits), block BN_NHWC_BLOCK. */
export function bnStatsPartialNhwcKernel(mb: ModuleBuilder, xType: Storage): string {
  const name = `bn_stats_part_nhwc_${dtag(xType)}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(double* __restrict__ part, const ${ctype(xType)}* __restrict__ x,
    i64 rows, int C) {
${nhwcPartialLoop('', ['const double v = (double)x[at];', 'a += v;', 'b += v * v;'])}
}`);
  return name;
}

/** bnGradPartialKernel for channels-last x and gy: (part, x, stats, gy, rows, C, eps); grid (ceil(C / 32), splits), block BN_NHWC_BLOCK. */
export function bnGradPartialNhwcKernel(mb: ModuleBuilder, xType: Storage, statsType: Storage, gyType: Storage): string {
  const name = `bn_grad_part_nhwc_${dtag(xType)}_${dtag(statsType)}_${dtag(gyType)}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(double* __restrict__ part, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gyType)}* __restrict__ gy, i64 rows, int C, double eps) {
${nhwcPartialLoop('const double mean = (double)stats[c], rs = 1.0 / sqrt((double)stats[C + c] + eps);',
    ['const double g = (double)gy[at];', 'a += g;', 'b += g * ((double)x[at] - mean) * rs;'])}
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

/** Inner extents from which the elementwise passes go plane by plane (PLANE_MIN_INNER; below it, element by element). */
export const BN_PLANE_MIN_INNER = 128;

/**
 * The elementwise passes' loop over the `total` elements in compute type T (float, or double for float64 operands);
 * `setup` sets element o's feature constants k1..k3 (type T) from c, mean and rs, `body` uses them. With
 * inner >= BN_PLANE_MIN_INNER, blocks take whole (n, c) planes (grid-stride over the planes, threads over the
 * plane), so the constants come once per plane and in double; below it (small planes: 7x7) element by element,
 * the feature found by 32-bit division where the elements' count allows (`narrow`), the constants in T.
 */
function overElements(t: 'float' | 'double', setup: string, body: string): string {
  const rsqrt = t === 'float' ? 'rsqrtf' : 'rsqrt';
  return `  if (inner >= ${BN_PLANE_MIN_INNER}) {
    const i64 planes = total / inner;
    for (i64 plane = blockIdx.x; plane < planes; plane += gridDim.x) {
      const int c = (int)(plane % C);
      ${t} k1, k2, k3, mu;
      {
        const double mean = (double)stats[c], rs = 1.0 / sqrt((double)stats[C + c] + eps);
        mu = (${t})mean;
${setup.replace(/^/gm, '        ')}
      }
      for (i64 o = plane * inner + threadIdx.x, end = (plane + 1) * inner; o < end; o += blockDim.x) {
${body.replace(/^/gm, '    ')}
      }
    }
    return;
  }
  for (i64 o = (i64)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (i64)gridDim.x * blockDim.x) {
    const int c = narrow ? (int)(((unsigned)o / (unsigned)inner) % (unsigned)C) : (int)((o / inner) % C);
    ${t} k1, k2, k3, mu;
    {
      const ${t} mean = (${t})stats[c], rs = ${rsqrt}((${t})stats[C + c] + (${t})eps);
      mu = mean;
${setup.replace(/^/gm, '      ')}
    }
${body}
  }`;
}

/** The compute type of an elementwise pass: double when any operand is float64, else float. */
function computeType(...types: Storage[]): 'float' | 'double' {
  return types.includes('float64') ? 'double' : 'float';
}

/**
 * y = (x - mean) / sqrt(var + eps) * gamma + beta, then relu when `relu` is set, as y = (x - mean) k1 + k2
 * (the mean subtracted first: a constant feature gives beta exactly):
 * (y, x, stats, gamma, beta, total, C, inner, eps, relu, narrow).
 */
export function bnApplyKernel(mb: ModuleBuilder, outType: Storage, xType: Storage, statsType: Storage, gammaType: Storage, betaType: Storage): string {
  const name = `bn_apply_${[outType, xType, statsType, gammaType, betaType].map(dtag).join('_')}`;
  const t = computeType(outType, xType, statsType, gammaType, betaType);
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(outType)}* __restrict__ y, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gammaType)}* __restrict__ gamma, const ${ctype(betaType)}* __restrict__ beta,
    i64 total, int C, i64 inner, double eps, int relu, int narrow) {
${overElements(t, `k1 = (${t})(rs * (double)gamma[c]);
k2 = (${t})beta[c];
k3 = (${t})0;`, `    ${t} v = ((${t})x[o] - mu) * k1 + k2;
    if (relu) v = v > (${t})0 ? v : (v == v ? (${t})0 : v);
    y[o] = ${storeFn(outType)}(v);`)}
}`);
  return name;
}

/**
 * dx = gamma rs (gy - (g[0] + xhat g[1]) / count), as dx = k1 gy + k2 (x - mean) + k3 (k1 = gamma rs,
 * k2 = -gamma rs^2 g[1] / count, k3 = -gamma rs g[0] / count): (dx, x, stats, gamma, gy, gstats, total, C, inner, eps, count, narrow).
 */
export function bnGradInputKernel(mb: ModuleBuilder, outType: Storage, xType: Storage, statsType: Storage, gammaType: Storage, gyType: Storage,
  gsType: Storage): string {
  const name = `bn_grad_input_${[outType, xType, statsType, gammaType, gyType, gsType].map(dtag).join('_')}`;
  const t = computeType(outType, xType, statsType, gammaType, gyType, gsType);
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(outType)}* __restrict__ dx, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gammaType)}* __restrict__ gamma, const ${ctype(gyType)}* __restrict__ gy,
    const ${ctype(gsType)}* __restrict__ gs, i64 total, int C, i64 inner, double eps, i64 count, int narrow) {
${overElements(t, `const double g0 = (double)gs[c] / (double)count, g1 = (double)gs[C + c] / (double)count, k = (double)gamma[c] * (double)rs;
k1 = (${t})k;
k2 = (${t})(-k * (double)rs * g1);
k3 = (${t})(-k * g0);`, `    dx[o] = ${storeFn(outType)}(k1 * (${t})gy[o] + k2 * ((${t})x[o] - mu) + k3);`)}
}`);
  return name;
}

/** Channels a thread of the channels-last elementwise kernels takes: 4 (one 8- or 16-byte access) when C % 4 == 0, else 1. */
export type NhwcWidth = 1 | 4;

/** Loads of W channels at element `at` of p into v[0..W), as float. */
function loadChannels(p: string, width: NhwcWidth, v: string): string {
  return width === 4
    ? `{ const auto q = sk_ld4(${p} + at); for (int u = 0; u < 4; u++) ${v}[u] = (float)q.v[u]; }`
    : `${v}[0] = (float)${p}[at];`;
}

/** The rows loop of a channels-last elementwise kernel: thread (x, y) of a 32 x 8 block takes W channels of every gridDim.y*8-th row. */
function nhwcRows(width: NhwcWidth, setup: string, body: string): string {
  return `  const int c0 = (blockIdx.x * 32 + threadIdx.x) * ${width};
  if (c0 >= C) return;
  float k1[${width}], k2[${width}], k3[${width}], mu[${width}];
  for (int u = 0; u < ${width}; u++) {
    const int c = c0 + u;
    const double mean = (double)stats[c], rs = 1.0 / sqrt((double)stats[C + c] + eps);
    mu[u] = (float)mean;
${setup}
  }
  for (i64 r = (i64)blockIdx.y * 8 + threadIdx.y; r < rows; r += (i64)gridDim.y * 8) {
    const i64 at = r * C + c0;
${body}
  }`;
}

/** Stores W float results o[] at element `at` of p. */
function storeChannels(p: string, t: Storage, width: NhwcWidth): string {
  return width === 4
    ? `{ V4<${ctype(t)}> q; for (int u = 0; u < 4; u++) q.v[u] = ${storeFn(t)}(o[u]); sk_st4(${p} + at, q); }`
    : `${p}[at] = ${storeFn(t)}(o[0]);`;
}

/**
 * bnApplyKernel for channels-last x and y (rows of C channels): each thread's channels' scale and shift once in double,
 * then y = (x - mean) * scale + beta (relu when set) in float for every row: (y, x, stats, gamma, beta, rows, C, eps, relu);
 * grid (ceil(C / 32W), row blocks), block BN_NHWC_BLOCK. W = 4 needs C % 4 == 0 and 16-byte aligned arrays.
 */
export function bnApplyNhwcKernel(mb: ModuleBuilder, width: NhwcWidth, outType: Storage, xType: Storage, statsType: Storage, gammaType: Storage,
  betaType: Storage): string {
  const name = `bn_apply_nhwc${width}_${[outType, xType, statsType, gammaType, betaType].map(dtag).join('_')}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(outType)}* __restrict__ y, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gammaType)}* __restrict__ gamma, const ${ctype(betaType)}* __restrict__ beta,
    i64 rows, int C, double eps, int relu) {
${nhwcRows(width, `    const double scale = rs * (double)gamma[c];
    k1[u] = (float)scale;
    k2[u] = (float)beta[c];
    k3[u] = 0.0f;`, `    float xv[${width}], o[${width}];
    ${loadChannels('x', width, 'xv')}
    for (int u = 0; u < ${width}; u++) {
      float v = (xv[u] - mu[u]) * k1[u] + k2[u];
      if (relu) v = v > 0.0f ? v : (v == v ? 0.0f : v);
      o[u] = v;
    }
    ${storeChannels('y', outType, width)}`)}
}`, [name], ['vec']);
  return name;
}

/**
 * bnGradInputKernel for channels-last x, gy and dx: dx = k1 gy + k2 (x - mean) + k3 with each channel's k once in double
 * (k1 = gamma rs, k2 = -gamma rs^2 g[1] / count, k3 = -gamma rs g[0] / count), in float per element:
 * (dx, x, stats, gamma, gy, gstats, rows, C, eps, count); grid and block as bnApplyNhwcKernel's.
 */
export function bnGradInputNhwcKernel(mb: ModuleBuilder, width: NhwcWidth, outType: Storage, xType: Storage, statsType: Storage,
  gammaType: Storage, gyType: Storage, gsType: Storage): string {
  const name = `bn_grad_input_nhwc${width}_${[outType, xType, statsType, gammaType, gyType, gsType].map(dtag).join('_')}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(outType)}* __restrict__ dx, const ${ctype(xType)}* __restrict__ x,
    const ${ctype(statsType)}* __restrict__ stats, const ${ctype(gammaType)}* __restrict__ gamma, const ${ctype(gyType)}* __restrict__ gy,
    const ${ctype(gsType)}* __restrict__ gs, i64 rows, int C, double eps, i64 count) {
${nhwcRows(width, `    const double g0 = (double)gs[c] / (double)count, g1 = (double)gs[C + c] / (double)count, k = (double)gamma[c] * rs;
    k1[u] = (float)k;
    k2[u] = (float)(-k * rs * g1);
    k3[u] = (float)(-k * g0);`, `    float xv[${width}], gv[${width}], o[${width}];
    ${loadChannels('x', width, 'xv')}
    ${loadChannels('gy', width, 'gv')}
    for (int u = 0; u < ${width}; u++) o[u] = k1[u] * gv[u] + k2[u] * (xv[u] - mu[u]) + k3[u];
    ${storeChannels('dx', outType, width)}`)}
}`, [name], ['vec']);
  return name;
}
