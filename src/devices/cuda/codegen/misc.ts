// Generated data-movement kernels: strided copies (transposes, slices, broadcasts, concatenation,
// casts; optionally adding into the destination), fills, arange, gathers along an axis and the
// row-wise pick / scatter of cross-entropy, and softmax entry points.
import { isFloat, type DType } from '../../../tensor/dtype.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import type { ModuleBuilder } from './module.js';

/**
 * dst[dOff + sum idx*ds] (=|+=) src[sOff + sum idx*ss] over an iteration shape of `ndim` axes.
 * Parameters: (dst, src, n, sOff, dOff, add, d0..dN-1, ss0..ssN-1, ds0..dsN-1).
 */
export function copyKernel(mb: ModuleBuilder, from: DType, to: DType, ndim: number): string {
  const name = `cp_${dtag(from)}_${dtag(to)}_${ndim}`;
  if (mb.has(name)) return name;
  const axes = Array.from({ length: ndim }, (_, a) => a);
  // An int32 destination plus an integer source wraps (sk_iadd): signed overflow is undefined in C++.
  const sum = to === 'int32' && !isFloat(from) ? 'sk_iadd(dst[dO], (int)src[so])' : `${storeFn(to)}(dst[dO] + src[so])`;
  const params = [
    ...axes.map((a) => `i64 d${a}`), ...axes.map((a) => `i64 ss${a}`), ...axes.map((a) => `i64 ds${a}`),
  ].map((p) => `, ${p}`).join('');
  const loop = (I: string): string => {
    const body: string[] = [`      ${I} r = (${I})idx, c = 0; i64 so = sOff, dO = dOff;`];
    for (let a = ndim - 1; a >= 0; a--) {
      body.push(a > 0 ? `      c = r % (${I})d${a}; r /= (${I})d${a};` : '      c = r;');
      body.push(`      so += (i64)c * ss${a}; dO += (i64)c * ds${a};`);
    }
    body.push('      (void)c; (void)r;');
    return `    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (i64)gridDim.x * blockDim.x) {
${body.join('\n')}
      if (add) dst[dO] = ${sum}; else dst[dO] = ${storeFn(to)}(src[so]);
    }`;
  };
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(` +
    `${ctype(to)}* dst, const ${ctype(from)}* src, i64 n, i64 sOff, i64 dOff, int add${params}) {
  if (n < 2147483647LL) {
${loop('unsigned int')}
  } else {
${loop('i64')}
  }
}`);
  return name;
}

/** out[i] = value for i < n: (out, n, double value). */
export function fillKernel(mb: ModuleBuilder, dtype: DType): string {
  const name = `fill_${dtag(dtype)}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(dtype)}* out, i64 n, double value) {
  const ${ctype(dtype)} v = ${storeFn(dtype)}(value);
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) out[i] = v;
}`);
  return name;
}

/** out[i] = start + i * step: (out, n, double start, double step). */
export function arangeKernel(mb: ModuleBuilder, dtype: DType): string {
  const name = `arange_${dtag(dtype)}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(dtype)}* out, i64 n, double start, double step) {
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) out[i] = ${storeFn(dtype)}(start + (double)i * step);
}`);
  return name;
}

/** out[p, k, q] = x[p, idx[k] (wrapped), q]: (out, x, idx, outer, nIdx, n, inner). Indices are checked on the host. */
export function takeKernel(mb: ModuleBuilder, dtype: DType, index: DType): string {
  const name = `take_${dtag(dtype)}_${dtag(index)}`;
  const T = ctype(dtype);
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(` +
    `${T}* out, const ${T}* x, const ${ctype(index)}* idx, i64 outer, i64 nIdx, i64 n, i64 inner) {
  const i64 total = outer * nIdx * inner;
  for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (i64)gridDim.x * blockDim.x) {
    const i64 q = t % inner, r = t / inner, k = r % nIdx, p = r / nIdx;
    i64 j = (i64)idx[k];
    if (j < 0) j += n;
    out[t] = x[(p * n + j) * inner + q];
  }
}`);
  return name;
}

/**
 * takeRowwise: out[r] = x[r * c + t[r]]; scatterRowwise: out[r * c + t[r]] = g[r] (out zeroed first).
 * With a non-zero `code` the indices are checked here on the device: the first index outside [0, c)
 * writes (code, index, row) into `flag` (read back once the run ends) and that row is skipped.
 */
export function rowwiseKernels(mb: ModuleBuilder, dtype: DType, index: DType): { take: string; scatter: string } {
  const T = ctype(dtype);
  const I = ctype(index);
  const take = `trw_${dtag(dtype)}_${dtag(index)}`;
  const scatter = `srw_${dtag(dtype)}_${dtag(index)}`;
  const loop = 'for (i64 r = (i64)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += (i64)gridDim.x * blockDim.x)';
  const tail = 'i64 rows, i64 c, int* flag, int code';
  const check = `const i64 k = (i64)t[r];
    if (code != 0 && (k < 0 || k >= c)) {
      if (atomicCAS(flag, 0, code) == 0) { flag[1] = (int)k; flag[2] = (int)r; }
      continue;
    }`;
  mb.define(take, `extern "C" __global__ void __launch_bounds__(256) ${take}(${T}* out, const ${T}* x, const ${I}* t, ${tail}) {
  ${loop} {
    ${check}
    out[r] = x[r * c + k];
  }
}`);
  mb.define(scatter, `extern "C" __global__ void __launch_bounds__(256) ${scatter}(${T}* out, const ${T}* g, const ${I}* t, ${tail}) {
  ${loop} {
    ${check}
    out[r * c + k] = g[r];
  }
}`);
  return { take, scatter };
}

export interface SoftmaxKernels {
  /** (x, out, rows, n, G) with a group of G = 32 or 256 threads per row. */
  readonly rows: string;
  /** (x, out, outer, n, inner). */
  readonly cols: string;
}

/** softmax or logSoftmax from `input` to `output` (a float dtype), computed in the output's precision. */
export function softmaxKernels(mb: ModuleBuilder, input: DType, output: DType, log: boolean): SoftmaxKernels {
  const name = `${log ? 'lsm' : 'sm'}_${dtag(input)}_${dtag(output)}`;
  const result = { rows: `${name}_r`, cols: `${name}_c` };
  if (mb.has(name)) return result;
  const TI = ctype(input);
  const TO = ctype(output);
  const L = log ? 'true' : 'false';
  mb.define(name, [
    `extern "C" __global__ void __launch_bounds__(256) ${result.rows}(const ${TI}* x, ${TO}* out, i64 rows, i64 n, int G) ` +
      `{ sk_softmax_rows<${TO}, ${L}>(x, out, rows, n, G); }`,
    `extern "C" __global__ void __launch_bounds__(256) ${result.cols}(const ${TI}* x, ${TO}* out, i64 outer, i64 n, i64 inner) ` +
      `{ sk_softmax_cols<${TO}, ${L}>(x, out, outer, n, inner); }`,
  ].join('\n'), [result.rows, result.cols], ['softmax']);
  return result;
}

/** repeat: out[p, k, q] = x[p, k / r, q] over [outer, n * r, inner]: (out, x, outer, n, r, inner). */
export function repeatKernel(mb: ModuleBuilder, dtype: DType): string {
  const name = `repeat_${dtag(dtype)}`;
  const T = ctype(dtype);
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${T}* out, const ${T}* x, i64 outer, i64 n, i64 r, i64 inner) {
  const i64 total = outer * n * r * inner;
  for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (i64)gridDim.x * blockDim.x) {
    const i64 q = t % inner, rest = t / inner, k = rest % (n * r), p = rest / (n * r);
    out[t] = x[(p * n + k / r) * inner + q];
  }
}`);
  return name;
}

/** tile: out[idx] = x[idx mod x.shape] over `ndim` axes: (out, x, n, d0..dN-1 (out), e0..eN-1 (x), s0..sN-1 (x strides)). */
export function tileKernel(mb: ModuleBuilder, dtype: DType, ndim: number): string {
  const name = `tile_${dtag(dtype)}_${ndim}`;
  if (mb.has(name)) return name;
  const T = ctype(dtype);
  const axes = Array.from({ length: ndim }, (_, a) => a);
  const params = [...axes.map((a) => `i64 d${a}`), ...axes.map((a) => `i64 e${a}`), ...axes.map((a) => `i64 s${a}`)].map((p) => `, ${p}`).join('');
  const body = axes.slice().reverse().map((a) => (a > 0 ? `    c = r % d${a}; r /= d${a}; o += (c % e${a}) * s${a};` : `    c = r; o += (c % e${a}) * s${a};`));
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${T}* out, const ${T}* x, i64 n${params}) {
  for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (i64)gridDim.x * blockDim.x) {
    i64 r = t, c = 0, o = 0;
${body.join('\n')}
    (void)c; (void)r;
    out[t] = x[o];
  }
}`);
  return name;
}

/** oneHot: out (zeroed first) gets 1 at [k, idx[k]]: (out, idx, count, n). Indices are checked on the host. */
export function oneHotKernel(mb: ModuleBuilder, dtype: DType, index: DType): string {
  const name = `onehot_${dtag(dtype)}_${dtag(index)}`;
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(${ctype(dtype)}* out, const ${ctype(index)}* idx, i64 count, i64 n) {
  for (i64 k = (i64)blockIdx.x * blockDim.x + threadIdx.x; k < count; k += (i64)gridDim.x * blockDim.x) out[k * n + (i64)idx[k]] = ${storeFn(dtype)}(1);
}`);
  return name;
}

/** The rounding of one float32 to bfloat16 bits (nearest, ties to even; NaN kept quiet): the prelude's sk_bf16. */
const BF16_ROUND = `static __device__ __forceinline__ unsigned int sk_bf16_bits(float f) { return sk_bf16(f).bits; }`;

/**
 * float32 -> bfloat16 bits, for matrix products in 'medium' precision and under the 'bf16' policy:
 * (out as uint16, x, n). Written on the bits so it needs no cuda_bf16.h. When both pointers are 16-byte
 * aligned (whole allocations are) each thread converts four elements per step (one float4 load, one
 * 8-byte store): the conversion is memory-bound, and wide accesses move more bytes per instruction.
 */
export function toBf16Kernel(mb: ModuleBuilder): string {
  const name = 'to_bf16_f32';
  mb.define(name, `${BF16_ROUND}
extern "C" __global__ void __launch_bounds__(256) ${name}(unsigned short* out, const float* x, i64 n) {
  const i64 t0 = (i64)blockIdx.x * blockDim.x + threadIdx.x, stride = (i64)gridDim.x * blockDim.x;
  i64 done = 0;
  if (((unsigned long long)out & 15ull) == 0 && ((unsigned long long)x & 15ull) == 0) {
    const i64 n4 = n >> 2;
    for (i64 i = t0; i < n4; i += stride) {
      const float4 v = ((const float4*)x)[i];
      ((unsigned long long*)out)[i] = (unsigned long long)(sk_bf16_bits(v.x) | (sk_bf16_bits(v.y) << 16))
        | ((unsigned long long)(sk_bf16_bits(v.z) | (sk_bf16_bits(v.w) << 16)) << 32);
    }
    done = n4 << 2;
  }
  for (i64 i = done + t0; i < n; i += stride) out[i] = (unsigned short)sk_bf16_bits(x[i]);
}`);
  return name;
}

/**
 * bfloat16 bits -> float32 (exact: a bfloat16 is the top half of a float32): (out, x as uint16, n). For
 * the results cuDNN writes in bfloat16 under the 'bf16' precision policy; four at a time when aligned.
 */
export function fromBf16Kernel(mb: ModuleBuilder): string {
  const name = 'from_bf16_f32';
  mb.define(name, `extern "C" __global__ void __launch_bounds__(256) ${name}(float* out, const unsigned short* x, i64 n) {
  const i64 t0 = (i64)blockIdx.x * blockDim.x + threadIdx.x, stride = (i64)gridDim.x * blockDim.x;
  i64 done = 0;
  if (((unsigned long long)out & 15ull) == 0 && ((unsigned long long)x & 15ull) == 0) {
    const i64 n4 = n >> 2;
    for (i64 i = t0; i < n4; i += stride) {
      const unsigned long long b = ((const unsigned long long*)x)[i];
      float4 v;
      v.x = __uint_as_float((unsigned int)(b & 0xffffull) << 16);
      v.y = __uint_as_float((unsigned int)((b >> 16) & 0xffffull) << 16);
      v.z = __uint_as_float((unsigned int)((b >> 32) & 0xffffull) << 16);
      v.w = __uint_as_float((unsigned int)(b >> 48) << 16);
      ((float4*)out)[i] = v;
    }
    done = n4 << 2;
  }
  for (i64 i = done + t0; i < n; i += stride) out[i] = __uint_as_float((unsigned int)x[i] << 16);
}`);
  return name;
}

/** The kernel that writes a CUDA graph's update results back into the shared variables' buffers. */
export const GUARDED_COPY = 'synk_guarded_copy';

/**
 * (dst, src, words, flag): copies `words` 32-bit words unless a device check of the run failed
 * (flag non-null and set), so a replayed graph whose indices were bad changes no shared variable.
 */
export function guardedCopyKernel(mb: ModuleBuilder): string {
  mb.define(GUARDED_COPY, `extern "C" __global__ void __launch_bounds__(256) ${GUARDED_COPY}(` +
    `unsigned int* dst, const unsigned int* src, i64 words, const int* flag) {
  if (flag != 0 && flag[0] != 0) return;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < words; i += (i64)gridDim.x * blockDim.x) dst[i] = src[i];
}`);
  return GUARDED_COPY;
}
