// Kernels of the im2col convolution (the GEMMs themselves run in cuBLAS):
// - im2col unfolds nb images [nb, C, H, W] into a column buffer [nb, C·KH·KW, OH·OW] whose row
//   (c·KH + p)·KW + q holds, for every output position (i, j), the input pixel that filter tap
//   (c, p, q) multiplies there (zero where the tap falls into the padding). With that layout the
//   convolution of one image and one group is a plain GEMM W[og, cg·KH·KW] x col[cg·KH·KW, OH·OW].
// - col2im folds such a buffer back into image layout by summing, for each input pixel, every
//   column entry that was read from it. It is written as a gather (one thread per input pixel,
//   looping over the filter taps that can reach it), so it needs no atomics and is deterministic;
//   it accumulates in double, as the reference does.
// Both iterate with 32-bit index arithmetic when the element count allows (64-bit division is
// several times slower on the GPU), else with 64-bit.
import type { DType } from '../../../tensor/dtype.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import type { ModuleBuilder } from './module.js';

/** The geometry parameters both kernels take after (out, in, total). */
const GEOMETRY = 'int cin, int h, int w, int kh, int kw, int oh, int ow, int pt, int pl, int sh, int sw, int dh, int dw';

/** Both index widths, as copyKernel does: `body(I)` is the loop body for index type I. */
function bothWidths(body: (I: string) => string): string {
  return `  if (total < 2147483647LL) {
${body('unsigned int')}
  } else {
${body('i64')}
  }`;
}

/**
 * col[t] for t over [nb, cin, kh, kw, oh, ow] (row-major) = x[b, c, i·sh - pt + p·dh, j·sw - pl + q·dw] or 0.
 * Parameters: (col, x, total = nb·cin·kh·kw·oh·ow, cin, h, w, kh, kw, oh, ow, pt, pl, sh, sw, dh, dw).
 */
export function im2colKernel(mb: ModuleBuilder, from: DType, to: DType): string {
  const name = `im2col_${dtag(from)}_${dtag(to)}`;
  const loop = (I: string) => `    for (${I} t = (${I})blockIdx.x * blockDim.x + threadIdx.x; t < (${I})total; t += (${I})gridDim.x * blockDim.x) {
      ${I} r = t;
      const int j = (int)(r % (${I})ow); r /= (${I})ow;
      const int i = (int)(r % (${I})oh); r /= (${I})oh;
      const int q = (int)(r % (${I})kw); r /= (${I})kw;
      const int p = (int)(r % (${I})kh); r /= (${I})kh;
      const int hi = i * sh - pt + p * dh, wi = j * sw - pl + q * dw;
      // r is now b·cin + c, the index of the input plane.
      col[t] = (hi >= 0 && hi < h && wi >= 0 && wi < w) ? ${storeFn(to)}(x[((i64)r * h + hi) * w + wi]) : (${ctype(to)})0;
    }`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(` +
    `${ctype(to)}* __restrict__ col, const ${ctype(from)}* __restrict__ x, i64 total, ${GEOMETRY}) {
${bothWidths(loop)}
}`);
  return name;
}

/**
 * gx[b, c, y, x] = sum over taps (p, q) with y = i·sh - pt + p·dh, x = j·sw - pl + q·dw for some
 * output position (i, j) of col[b, (c·kh + p)·kw + q, i·ow + j].
 * Parameters: (gx, col, total = nb·cin·h·w, cin, h, w, kh, kw, oh, ow, pt, pl, sh, sw, dh, dw).
 */
export function col2imKernel(mb: ModuleBuilder, dtype: DType): string {
  const name = `col2im_${dtag(dtype)}`;
  const loop = (I: string) => `    for (${I} t = (${I})blockIdx.x * blockDim.x + threadIdx.x; t < (${I})total; t += (${I})gridDim.x * blockDim.x) {
      const int xw = (int)(t % (${I})w);
      const ${I} r = t / (${I})w;
      const int yh = (int)(r % (${I})h);
      const ${I} plane = r / (${I})h; // b·cin + c
      const ${ctype(dtype)}* base = col + (i64)plane * kh * kw * oh * ow;
      double acc = 0;
      for (int p = 0; p < kh; p++) {
        const int hy = yh + pt - p * dh; // = i·sh for the output row i that reads this pixel through tap p
        if (hy < 0 || hy % sh != 0) continue;
        const int i = hy / sh;
        if (i >= oh) continue;
        for (int q = 0; q < kw; q++) {
          const int wx = xw + pl - q * dw;
          if (wx < 0 || wx % sw != 0) continue;
          const int j = wx / sw;
          if (j >= ow) continue;
          acc += (double)base[((i64)(p * kw + q) * oh + i) * ow + j];
        }
      }
      gx[t] = ${storeFn(dtype)}(acc);
    }`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(` +
    `${ctype(dtype)}* __restrict__ gx, const ${ctype(dtype)}* __restrict__ col, i64 total, ${GEOMETRY}) {
  (void)cin;
${bothWidths(loop)}
}`);
  return name;
}

/**
 * The filter gradient's sum over images: out[i] (+)= sum over b of part[b·len + i], in double,
 * images in order (deterministic). Parameters: (out, part, nb, len, accumulate).
 */
export function sumImagesKernel(mb: ModuleBuilder, dtype: DType): string {
  const name = `conv_sum_images_${dtag(dtype)}`;
  const T = ctype(dtype);
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${T}* out, const ${T}* part, i64 nb, i64 len, int accumulate) {
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (i64)gridDim.x * blockDim.x) {
    double acc = accumulate ? (double)out[i] : 0.0;
    for (i64 b = 0; b < nb; b++) acc += (double)part[b * len + i];
    out[i] = ${storeFn(dtype)}(acc);
  }
}`);
  return name;
}
