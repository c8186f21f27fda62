// 2-d pooling kernels over the last two axes of [lead, H, W] (lead = product of the leading axes).
// Forward kernels run one thread per output element and scan its window in row-major order,
// exactly as the reference does: the max keeps the first maximum (the first NaN wins), the
// average sums in double and divides by the kernel area or by the count of non-padding elements.
// The gradients are gathers, one thread per input element, looping over the (few) windows that
// contain it in row-major window order and summing in double: no atomics, deterministic, and
// the same summation order as the reference. The max gradient reads each window's argmax from
// a buffer written by a first pass (maxpool_arg), instead of rescanning every window per input.
// An empty window (only possible for a size-0 axis with padding) gives NaN as the reference does.
import type { DType } from '../../../tensor/dtype.js';
import type { Storage } from '../storage.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import type { ModuleBuilder } from './module.js';

/** Parameters shared by every pooling kernel after its arrays and `total`. */
const WINDOW = 'int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, int ph, int pw';

// Included by several definitions; the guard keeps the combined source (compile check) valid.
const HELPERS = String.raw`#ifndef SK_POOL_HELPERS
#define SK_POOL_HELPERS
/** In-plane offset of the first maximum of the window at (h0, w0) (first NaN wins), or -1 for an empty window. */
template<class T> DEV int sk_pool_argmax(const T* plane, int h, int w, int h0, int w0, int kh, int kw) {
  const int ha = h0 > 0 ? h0 : 0, hb = h0 + kh < h ? h0 + kh : h;
  const int wa = w0 > 0 ? w0 : 0, wb = w0 + kw < w ? w0 + kw : w;
  if (ha >= hb || wa >= wb) return -1;
  int best = ha * w + wa;
  T bv = plane[best];
  for (int p = ha; p < hb; p++) {
    for (int q = wa; q < wb; q++) {
      if (bv != bv) return best;
      const T v = plane[p * w + q];
      if (v > bv || v != v) { best = p * w + q; bv = v; }
    }
  }
  return best;
}
/** The first and one-past-last window index along an axis whose windows contain position y. */
DEV void sk_pool_span(int y, int pad, int k, int s, int n, int* lo, int* hi) {
  const int a = y + pad - k + 1;
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  const int b = (y + pad) / s + 1;
  *hi = b < n ? b : n;
}
#endif`;

/** Grid-stride loop over `total` items; o is the item, l its plane and i, j its row and column in (rows, cols). */
function overItems(rows: string, cols: string, body: string): string {
  return `  for (i64 o = (i64)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (i64)gridDim.x * blockDim.x) {
    const int j = (int)(o % ${cols});
    const i64 r = o / ${cols};
    const int i = (int)(r % ${rows});
    const i64 l = r / ${rows};
${body}
  }`;
}

function define(mb: ModuleBuilder, name: string, params: string, body: string): string {
  mb.define(name, `${HELPERS}
extern "C" __global__ void __launch_bounds__(256) ${name}(${params}, i64 total, ${WINDOW}) {
${body}
}`);
  return name;
}

/** out[o] = the first maximum of window o of x: (out, x, total = lead·oh·ow, window...). */
export function maxPoolKernel(mb: ModuleBuilder, dtype: Storage): string {
  const T = ctype(dtype);
  return define(mb, `maxpool_${dtag(dtype)}`, `${T}* __restrict__ out, const ${T}* __restrict__ x`, overItems('oh', 'ow',
    `    const ${T}* plane = x + l * h * w;
    const int a = sk_pool_argmax(plane, h, w, i * sh - ph, j * sw - pw, kh, kw);
    out[o] = a < 0 ? ${storeFn(dtype)}(SK_NAN_D) : plane[a];`));
}

/** arg[o] = in-plane offset of the first maximum of window o (or -1): (arg, x, total = lead·oh·ow, window...). */
export function maxPoolArgKernel(mb: ModuleBuilder, dtype: Storage): string {
  return define(mb, `maxpool_arg_${dtag(dtype)}`, `int* __restrict__ arg, const ${ctype(dtype)}* __restrict__ x`, overItems('oh', 'ow',
    '    arg[o] = sk_pool_argmax(x + l * h * w, h, w, i * sh - ph, j * sw - pw, kh, kw);'));
}

/** gx[e] = sum of gy over the windows whose argmax is input element e: (gx, arg, gy, total = lead·h·w, window...). */
export function maxPoolGradKernel(mb: ModuleBuilder, gyType: Storage, outType: Storage): string {
  return define(mb, `maxpool_bwd_${dtag(gyType)}_${dtag(outType)}`,
    `${ctype(outType)}* __restrict__ gx, const int* __restrict__ arg, const ${ctype(gyType)}* __restrict__ gy`, overItems('h', 'w', `    int i0, i1, j0, j1;
    sk_pool_span(i, ph, kh, sh, oh, &i0, &i1);
    sk_pool_span(j, pw, kw, sw, ow, &j0, &j1);
    const int me = i * w + j;
    const i64 base = l * oh * ow;
    double acc = 0;
    for (int a = i0; a < i1; a++) {
      for (int b = j0; b < j1; b++) {
        const i64 win = base + (i64)a * ow + b;
        if (arg[win] == me) acc += (double)gy[win];
      }
    }
    gx[o] = ${storeFn(outType)}(acc);`));
}

/** out[o] = g[the first maximum of window o of x], g shaped like x: (out, x, g, total = lead·oh·ow, window...). */
export function maxPoolGradGradKernel(mb: ModuleBuilder, xType: DType, gType: DType): string {
  const G = ctype(gType);
  return define(mb, `maxpool_gg_${dtag(xType)}_${dtag(gType)}`,
    `${G}* __restrict__ out, const ${ctype(xType)}* __restrict__ x, const ${G}* __restrict__ g`, overItems('oh', 'ow', `    const i64 plane = l * h * w;
    const int a = sk_pool_argmax(x + plane, h, w, i * sh - ph, j * sw - pw, kh, kw);
    out[o] = a < 0 ? ${storeFn(gType)}(SK_NAN_D) : g[plane + a];`));
}

/** out[o] = (sum of window o of x) / divisor: (out, x, total = lead·oh·ow, window..., includePad). */
export function avgPoolKernel(mb: ModuleBuilder, xType: Storage, outType: Storage): string {
  const name = `avgpool_${dtag(xType)}_${dtag(outType)}`;
  mb.define(name, `${HELPERS}
extern "C" __global__ void __launch_bounds__(256) ${name}(` +
    `${ctype(outType)}* __restrict__ out, const ${ctype(xType)}* __restrict__ x, i64 total, ${WINDOW}, int includePad) {
${overItems('oh', 'ow', `    const ${ctype(xType)}* plane = x + l * h * w;
    const int h0 = i * sh - ph, w0 = j * sw - pw;
    const int ha = h0 > 0 ? h0 : 0, hb = h0 + kh < h ? h0 + kh : h;
    const int wa = w0 > 0 ? w0 : 0, wb = w0 + kw < w ? w0 + kw : w;
    double s = 0;
    for (int p = ha; p < hb; p++) for (int q = wa; q < wb; q++) s += (double)plane[p * w + q];
    const int count = (hb > ha ? hb - ha : 0) * (wb > wa ? wb - wa : 0);
    out[o] = ${storeFn(outType)}(s / (double)(includePad ? kh * kw : count));`)}
}`);
  return name;
}

/** gx[e] = sum over the windows containing e of gy[window] / divisor: (gx, gy, total = lead·h·w, window..., includePad). */
export function avgPoolGradKernel(mb: ModuleBuilder, gyType: Storage, outType: Storage): string {
  const name = `avgpool_bwd_${dtag(gyType)}_${dtag(outType)}`;
  mb.define(name, `${HELPERS}
extern "C" __global__ void __launch_bounds__(256) ${name}(` +
    `${ctype(outType)}* __restrict__ gx, const ${ctype(gyType)}* __restrict__ gy, i64 total, ${WINDOW}, int includePad) {
${overItems('h', 'w', `    int i0, i1, j0, j1;
    sk_pool_span(i, ph, kh, sh, oh, &i0, &i1);
    sk_pool_span(j, pw, kw, sw, ow, &j0, &j1);
    const i64 base = l * oh * ow;
    double acc = 0;
    for (int a = i0; a < i1; a++) {
      const int h0 = a * sh - ph;
      const int rows = (h0 + kh < h ? h0 + kh : h) - (h0 > 0 ? h0 : 0);
      for (int b = j0; b < j1; b++) {
        const int w0 = b * sw - pw;
        const int cols = (w0 + kw < w ? w0 + kw : w) - (w0 > 0 ? w0 : 0);
        acc += (double)gy[base + (i64)a * ow + b] / (double)(includePad ? kh * kw : rows * cols);
      }
    }
    gx[o] = ${storeFn(outType)}(acc);`)}
}`);
  return name;
}
