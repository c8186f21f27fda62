// 2-d max and average pooling and their gradient ops (src/ops/pool.ts) as direct loops over the
// windows: no per-window index lists or callbacks. Same window order, first-maximum (first NaN)
// rule and divisors as the reference; gradients accumulate in float64 where windows overlap.
// Invalid geometry or gradient shapes go to the reference perform, which raises its error.
import type { NDArray } from '../../tensor/ndarray.js';
import type { TypedArray } from '../../tensor/dtype.js';
import type { AvgPoolAttrs, PoolAttrs } from '../../ops/pool.js';
import { reference, type Kernel, type RunContext } from './kernel-types.js';
import { maxPool2x2F32, maxPool2x2GradF32, WASM_POOL_MAX_PLANE } from './wasm-pool.js';

interface Win {
  lead: number; h: number; w: number; oh: number; ow: number;
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
}

function win(shape: readonly number[], a: PoolAttrs): Win | null {
  if (shape.length < 2) return null;
  const h = shape[shape.length - 2]!, w = shape[shape.length - 1]!;
  const [kh, kw] = a.kernel, [sh, sw] = a.stride, [ph, pw] = a.padding;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh <= 0 || ow <= 0) return null;
  let lead = 1;
  for (let i = 0; i < shape.length - 2; i++) lead *= shape[i]!;
  return { lead, h, w, oh, ow, kh, kw, sh, sw, ph, pw };
}

const pooledShape = (shape: readonly number[], g: Win) => [...shape.slice(0, -2), g.oh, g.ow];
const overlaps = (g: Win) => g.sh < g.kh || g.sw < g.kw;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** 2x2 windows at stride 2 without padding (every window inside the input): the usual CNN pooling. */
const isPlain2x2 = (g: Win) => g.kh === 2 && g.kw === 2 && g.sh === 2 && g.sw === 2 && g.ph === 0 && g.pw === 0;

/**
 * The 2x2 fast path of argmaxes: the same first-maximum (first NaN) rule over the window's four
 * values in row-major order, unrolled. With `y`, also writes each window's value.
 */
function argmaxes2x2(g: Win, x: TypedArray, arg: Int32Array | null, y: TypedArray | null): void {
  const { w, oh, ow } = g;
  for (let l = 0, o = 0; l < g.lead; l++) {
    const base = l * g.h * w;
    for (let i = 0; i < oh; i++) {
      const row = base + 2 * i * w;
      for (let j = 0; j < ow; j++, o++) {
        const a = row + 2 * j;
        let best = a, bv = x[a]!, v: number;
        if (bv === bv) { v = x[a + 1]!; if (v > bv || v !== v) { best = a + 1; bv = v; } }
        if (bv === bv) { v = x[a + w]!; if (v > bv || v !== v) { best = a + w; bv = v; } }
        if (bv === bv) { v = x[a + w + 1]!; if (v > bv || v !== v) { best = a + w + 1; bv = v; } }
        if (arg !== null) arg[o] = best;
        if (y !== null) y[o] = bv;
      }
    }
  }
}

/** arg[o] = the input index of the first maximum (or first NaN) of window o, in row-major window order. */
function argmaxes(g: Win, x: TypedArray, arg: Int32Array): void {
  if (isPlain2x2(g)) { argmaxes2x2(g, x, arg, null); return; }
  const { w, kh, kw, sh, sw, ph, pw } = g;
  for (let l = 0, o = 0; l < g.lead; l++) {
    const base = l * g.h * w;
    for (let i = 0; i < g.oh; i++) {
      const h0 = i * sh - ph;
      const pLo = h0 < 0 ? 0 : h0, pHi = Math.min(g.h, h0 + kh);
      for (let j = 0; j < g.ow; j++, o++) {
        const w0 = j * sw - pw;
        const qLo = w0 < 0 ? 0 : w0, qHi = Math.min(w, w0 + kw);
        let best = base + pLo * w + qLo;
        let bv = x[best]!;
        for (let p = pLo; p < pHi && bv === bv; p++) {
          const row = base + p * w;
          for (let q = qLo; q < qHi; q++) {
            const v = x[row + q]!;
            if (v > bv || v !== v) { best = row + q; bv = v; if (v !== v) break; }
          }
        }
        arg[o] = best;
      }
    }
  }
}

/** A zeroed result for scattered gradients: the output itself, or a float64 accumulator when windows overlap. */
function scatterTarget(res: NDArray, g: Win, rt: RunContext): TypedArray {
  const acc = overlaps(g) ? rt.scratch('float64', res.size) : res.data;
  acc.fill(0);
  return acc;
}

/** Whether the WebAssembly 2x2 kernels (wasm-pool.ts) take these float32 arrays. */
const wasmPool = (g: Win, simd: boolean, ...arrays: TypedArray[]) =>
  simd && isPlain2x2(g) && g.h * g.w <= WASM_POOL_MAX_PLANE && arrays.every((a) => a instanceof Float32Array);

export const maxPool2dKernel: Kernel<PoolAttrs> = (step, cx) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  const simd = cx.simd !== false;
  return (inputs, rt) => {
    const x = inputs[0]!;
    const g = win(x.shape, step.attrs);
    if (g === null) return ref(inputs);
    const res = rt.output(dtype, pooledShape(x.shape, g));
    const X = x.data, Y = res.data;
    if (wasmPool(g, simd, X, Y)) {
      maxPool2x2F32(X as Float32Array, Y as Float32Array, g.lead, g.h, g.w);
      return res;
    }
    if (isPlain2x2(g) && (Y instanceof Float32Array || Y instanceof Float64Array) && X.constructor === Y.constructor) {
      argmaxes2x2(g, X, null, Y);
      return res;
    }
    const arg = rt.scratch('int32', res.size) as Int32Array;
    argmaxes(g, X, arg);
    for (let o = 0; o < Y.length; o++) Y[o] = X[arg[o]!]!;
    return res;
  };
};

export const maxPool2dGradKernel: Kernel<PoolAttrs> = (step, cx) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  const simd = cx.simd !== false;
  return (inputs, rt) => {
    const [x, gy] = inputs as [NDArray, NDArray];
    const g = win(x.shape, step.attrs);
    if (g === null || !sameShape(gy.shape, pooledShape(x.shape, g))) return ref(inputs);
    const res = rt.output(dtype, x.shape);
    if (wasmPool(g, simd, x.data, gy.data, res.data)) {
      maxPool2x2GradF32(x.data as Float32Array, gy.data as Float32Array, res.data as Float32Array, g.lead, g.h, g.w);
      return res;
    }
    const acc = scatterTarget(res, g, rt);
    const G = gy.data;
    const arg = rt.scratch('int32', G.length) as Int32Array;
    argmaxes(g, x.data, arg);
    for (let o = 0; o < G.length; o++) { const at = arg[o]!; acc[at] = acc[at]! + G[o]!; }
    if (acc !== res.data) res.data.set(acc);
    return res;
  };
};

export const maxPool2dGradGradKernel: Kernel<PoolAttrs> = (step) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  return (inputs, rt) => {
    const [x, gx] = inputs as [NDArray, NDArray];
    const g = win(x.shape, step.attrs);
    if (g === null || !sameShape(gx.shape, x.shape)) return ref(inputs);
    const res = rt.output(dtype, pooledShape(x.shape, g));
    const GX = gx.data, Y = res.data;
    const arg = rt.scratch('int32', res.size) as Int32Array;
    argmaxes(g, x.data, arg);
    for (let o = 0; o < Y.length; o++) Y[o] = GX[arg[o]!]!;
    return res;
  };
};

/** Calls visit(o, pLo, pHi, qLo, qHi, base) per window (the window's non-padding rows and columns). */
function forEachWindow(g: Win, visit: (o: number, pLo: number, pHi: number, qLo: number, qHi: number, base: number) => void): void {
  for (let l = 0, o = 0; l < g.lead; l++) {
    const base = l * g.h * g.w;
    for (let i = 0; i < g.oh; i++) {
      const h0 = i * g.sh - g.ph;
      const pLo = Math.max(0, h0), pHi = Math.min(g.h, h0 + g.kh);
      for (let j = 0; j < g.ow; j++, o++) {
        const w0 = j * g.sw - g.pw;
        visit(o, pLo, pHi, Math.max(0, w0), Math.min(g.w, w0 + g.kw), base);
      }
    }
  }
}

export const avgPool2dKernel: Kernel<AvgPoolAttrs> = (step) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  const area = step.attrs.kernel[0] * step.attrs.kernel[1];
  const includePad = step.attrs.countIncludePad;
  return (inputs, rt) => {
    const x = inputs[0]!;
    const g = win(x.shape, step.attrs);
    if (g === null) return ref(inputs);
    const res = rt.output(dtype, pooledShape(x.shape, g));
    const X = x.data, Y = res.data, w = g.w;
    forEachWindow(g, (o, pLo, pHi, qLo, qHi, base) => {
      let s = 0;
      for (let p = pLo; p < pHi; p++) for (let q = qLo, at = base + p * w + qLo; q < qHi; q++, at++) s += X[at]!;
      Y[o] = s / (includePad ? area : (pHi - pLo) * (qHi - qLo));
    });
    return res;
  };
};

export const avgPool2dGradKernel: Kernel<AvgPoolAttrs> = (step) => {
  const ref = reference(step);
  const dtype = step.outType.dtype;
  const area = step.attrs.kernel[0] * step.attrs.kernel[1];
  const includePad = step.attrs.countIncludePad;
  return (inputs, rt) => {
    const [gy, x] = inputs as [NDArray, NDArray];
    const g = win(x.shape, step.attrs);
    if (g === null || !sameShape(gy.shape, pooledShape(x.shape, g))) return ref(inputs);
    const res = rt.output(dtype, x.shape);
    const acc = scatterTarget(res, g, rt);
    const G = gy.data, w = g.w;
    forEachWindow(g, (o, pLo, pHi, qLo, qHi, base) => {
      const v = G[o]! / (includePad ? area : (pHi - pLo) * (qHi - qLo));
      for (let p = pLo; p < pHi; p++) for (let q = qLo, at = base + p * w + qLo; q < qHi; q++, at++) acc[at] = acc[at]! + v;
    });
    if (acc !== res.data) res.data.set(acc);
    return res;
  };
};
