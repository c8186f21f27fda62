// The scatter kernel of incTake (the gradient of take / an embedding lookup): out starts as a copy
// of x (made by the caller); one thread per element of the selected region [outer, nIdx, inner]
// reads its value of y (broadcast to the region through strides) and adds it to (atomicAdd, so
// repeated indices accumulate) or stores it into out[p, idx[k] (wrapped), q].
// Stores with repeated indices would race, so the set variant can run over a subset `sel` of the
// index positions (the last occurrence of each index, chosen on the host): each target is then
// written by exactly one thread, with the value the reference's sequential loop leaves there.
// Indices are checked on the host before launch, so the kernel never sees one out of range.
import type { DType } from '../../../tensor/dtype.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import type { ModuleBuilder } from './module.js';

/** The dtypes whose add variant this kernel has (atomicAdd on double needs sm_60+). */
export function atomicAddable(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'int32';
}

/**
 * incTake over a region of `ndim` axes. Parameters: (out, y, idx, sel (null: every position),
 * outer, nIdx, nSel, n, inner, d0..dR-1 (region shape), ys0..ysR-1 (y's broadcast strides)).
 */
export function incTakeKernel(mb: ModuleBuilder, x: DType, y: DType, index: DType, ndim: number, set: boolean): string {
  if (!set && !atomicAddable(x)) throw new Error(`internal: no atomic add for ${x}`);
  const name = `inctake_${set ? 'set' : 'add'}_${dtag(x)}_${dtag(y)}_${dtag(index)}_${ndim}`;
  if (mb.has(name)) return name;
  const T = ctype(x);
  const axes = Array.from({ length: ndim }, (_, a) => a);
  const params = [...axes.map((a) => `i64 d${a}`), ...axes.map((a) => `i64 ys${a}`)].map((p) => `, ${p}`).join('');
  // The region element's flat index rt -> y's offset through the broadcast strides.
  const decompose = axes.slice().reverse().map((a) => (a > 0 ? `    c = rt % d${a}; rt /= d${a}; yo += c * ys${a};` : `    yo += rt * ys${a};`));
  const write = set ? `out[o] = ${storeFn(x)}(y[yo]);` : `atomicAdd(out + o, (${T})y[yo]);`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${T}* out, const ${ctype(y)}* __restrict__ y, ` +
    `const ${ctype(index)}* __restrict__ idx, const int* __restrict__ sel, i64 outer, i64 nIdx, i64 nSel, i64 n, i64 inner${params}) {
  const i64 total = outer * nSel * inner;
  for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (i64)gridDim.x * blockDim.x) {
    const i64 q = t % inner, r = t / inner, kk = r % nSel, p = r / nSel;
    const i64 k = sel ? (i64)sel[kk] : kk;
    i64 j = (i64)idx[k];
    if (j < 0) j += n;
    const i64 o = (p * n + j) * inner + q;
    i64 rt = (p * nIdx + k) * inner + q, yo = 0, c = 0;
${decompose.join('\n')}
    (void)c; (void)rt;
    ${write}
  }
}`);
  return name;
}
