// conv2d and its two gradients lowered to GEMM through im2col (NCHW input, OIHW filters, stride,
// padding, dilation, groups). Per image and group, the K = C/G·kh·kw by oh·ow column matrix holds
// the input patches; then
//   forward:      y_g  = W_g · col                     (og x K) · (K x oh·ow)
//   input grad:   col  = W_gᵀ · gy_g,  scattered back  (col2im, accumulating overlaps)
//   filter grad:  gW_g += gy_g · colᵀ                  (summed over the batch by beta = 1)
// A 1x1 convolution with stride 1, no padding and no dilation reads the input directly (no col).
// Stride-1 convolutions run on the wide grid (conv-wide.ts); other float32 ones through the heap's
// gathers (conv-strided.ts); float64 ones with the loops here.
// Anything the geometry rejects goes to the reference perform, which raises the usual error.
import type { NDArray } from '../../tensor/ndarray.js';
import { convGeometry, type Conv2dAttrs, type ConvGeometry } from '../../ops/conv.js';
import type { Blas, GemmArray } from './blas-types.js';
import { reference, type Kernel, type StepRunner } from './kernel-types.js';
import { asFloat, isGemmDtype } from './matmul.js';
import { wideFilterGrad, wideForward, wideInputGrad, type WideConv } from './conv-wide.js';
import { stridedFilterGrad, stridedForward, stridedInputGrad } from './conv-strided.js';

interface Geometry extends ConvGeometry {
  groups: number;
  /** cg·kh·kw: rows of the column matrix. */
  K: number;
  /** The column matrix is the input itself. */
  direct: boolean;
}

function geometry(x: readonly number[], f: readonly number[], a: Conv2dAttrs): Geometry | null {
  let g: ConvGeometry;
  try {
    g = convGeometry('conv2d', x, f, a);
  } catch {
    return null; // the reference perform reports the error with its own message
  }
  const direct = g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pl === 0 && g.oh === g.h && g.ow === g.w;
  return { ...g, groups: a.groups, K: g.cg * g.kh * g.kw, direct };
}

/** The wide-grid form of a stride-1 convolution (conv-wide.ts), or null for other strides. */
function wideOf(g: Geometry): WideConv | null {
  if (g.sh !== 1 || g.sw !== 1 || g.direct) return null;
  return { n: g.n, groups: g.groups, cg: g.cg, og: g.og, h: g.h, w: g.w, kh: g.kh, kw: g.kw, dh: g.dh, dw: g.dw, pt: g.pt, pl: g.pl, oh: g.oh, ow: g.ow };
}

/** The valid output columns j (0 <= j·sw - pl + q·dw < w) as [lo, hi). */
function validCols(g: Geometry, q: number): [number, number] {
  const off = q * g.dw - g.pl;
  const lo = Math.max(0, Math.ceil(-off / g.sw));
  const hi = Math.min(g.ow, Math.floor((g.w - 1 - off) / g.sw) + 1);
  return [lo, Math.max(lo, hi)];
}

/** col[(c·kh + p)·kw + q][i·ow + j] = x[c0 + c, i·sh - pt + p·dh, j·sw - pl + q·dw] (0 outside). */
function im2col(g: Geometry, x: GemmArray, xOff: number, col: GemmArray): void {
  const ohw = g.oh * g.ow;
  for (let c = 0; c < g.cg; c++) {
    for (let p = 0; p < g.kh; p++) {
      for (let q = 0; q < g.kw; q++) {
        const row = ((c * g.kh + p) * g.kw + q) * ohw;
        const [lo, hi] = validCols(g, q);
        const wOff = q * g.dw - g.pl;
        // Rows are short (ow values): plain loops beat TypedArray.fill's call overhead here.
        for (let i = 0; i < g.oh; i++) {
          const dst = row + i * g.ow;
          const hi_ = i * g.sh - g.pt + p * g.dh;
          if (hi_ < 0 || hi_ >= g.h) { for (let j = 0; j < g.ow; j++) col[dst + j] = 0; continue; }
          const src = xOff + (c * g.h + hi_) * g.w + wOff;
          for (let j = 0; j < lo; j++) col[dst + j] = 0;
          if (g.sw === 1) for (let j = lo; j < hi; j++) col[dst + j] = x[src + j]!;
          else for (let j = lo; j < hi; j++) col[dst + j] = x[src + j * g.sw]!;
          for (let j = hi; j < g.ow; j++) col[dst + j] = 0;
        }
      }
    }
  }
}

/** The transpose of im2col: gx[...] += col[...] for every in-range tap. */
function col2im(g: Geometry, col: GemmArray, gx: GemmArray, xOff: number): void {
  const ohw = g.oh * g.ow;
  for (let c = 0; c < g.cg; c++) {
    for (let p = 0; p < g.kh; p++) {
      for (let q = 0; q < g.kw; q++) {
        const row = ((c * g.kh + p) * g.kw + q) * ohw;
        const [lo, hi] = validCols(g, q);
        const wOff = q * g.dw - g.pl;
        for (let i = 0; i < g.oh; i++) {
          const hi_ = i * g.sh - g.pt + p * g.dh;
          if (hi_ < 0 || hi_ >= g.h) continue;
          const src = row + i * g.ow;
          const dst = xOff + (c * g.h + hi_) * g.w + wOff;
          for (let j = lo; j < hi; j++) { const t = dst + j * g.sw; gx[t] = gx[t]! + col[src + j]!; }
        }
      }
    }
  }
}

type Which = 'forward' | 'input' | 'filter';

function convKernel(which: Which): Kernel<Conv2dAttrs> {
  return (step, cx): StepRunner => {
    const dtype = step.outType.dtype;
    const ref = reference(step);
    if (!isGemmDtype(dtype)) return ref;
    const blas: Blas = cx.blas;
    const simd = cx.simd !== false;
    return (inputs, rt) => {
      // forward: (x, w); input grad: (gy, w, xLike); filter grad: (x, gy, wLike).
      const xShape = which === 'input' ? inputs[2]!.shape : inputs[0]!.shape;
      const wShape = which === 'filter' ? inputs[2]!.shape : inputs[1]!.shape;
      const g = geometry(xShape, wShape, step.attrs);
      if (g === null) return ref(inputs);
      const gyIn: NDArray | undefined = which === 'input' ? inputs[0] : which === 'filter' ? inputs[1] : undefined;
      if (gyIn !== undefined) {
        const want = [g.n, g.cout, g.oh, g.ow];
        if (gyIn.ndim !== 4 || gyIn.shape.some((d, i) => d !== want[i])) return ref(inputs);
      }
      const outShape = which === 'forward' ? [g.n, g.cout, g.oh, g.ow] : which === 'input' ? xShape : wShape;
      const res = rt.output(dtype, outShape);
      const R = res.data as GemmArray;
      if (res.size === 0) return res;
      if (g.n === 0 || g.K === 0 || g.og === 0) { R.fill(0); return res; }
      const wide = wideOf(g);
      if (wide !== null) {
        const a = asFloat(inputs[0]!, dtype, rt), b = asFloat(inputs[1]!, dtype, rt);
        if (which === 'forward') wideForward(blas, dtype, wide, a, b, R, simd);
        else if (which === 'input') wideInputGrad(blas, dtype, wide, a, b, R, rt, simd);
        else wideFilterGrad(blas, dtype, wide, a, b, R, simd);
        return res;
      }
      if (dtype === 'float32' && !g.direct) {
        const a = asFloat(inputs[0]!, dtype, rt) as Float32Array, b = asFloat(inputs[1]!, dtype, rt) as Float32Array, out = R as Float32Array;
        if (which === 'forward') stridedForward(blas, g, a, b, out, simd);
        else if (which === 'input') stridedInputGrad(blas, g, a, b, out, simd);
        else stridedFilterGrad(blas, g, a, b, out, simd);
        return res;
      }
      const ohw = g.oh * g.ow;
      const hw = g.h * g.w;
      const K = g.K;
      const col = g.direct ? null : (rt.scratch(dtype, K * ohw) as GemmArray);
      if (which === 'forward') {
        const X = asFloat(inputs[0]!, dtype, rt), W = asFloat(inputs[1]!, dtype, rt);
        for (let b = 0; b < g.n; b++) for (let grp = 0; grp < g.groups; grp++) {
          const xOff = (b * g.cin + grp * g.cg) * hw;
          const yOff = (b * g.cout + grp * g.og) * ohw;
          if (col) im2col(g, X, xOff, col);
          blas.gemm(dtype, false, false, g.og, ohw, K, 1, W, grp * g.og * K, K, col ?? X, col ? 0 : xOff, ohw, 0, R, yOff, ohw);
        }
      } else if (which === 'input') {
        const GY = asFloat(inputs[0]!, dtype, rt), W = asFloat(inputs[1]!, dtype, rt);
        if (col) R.fill(0);
        for (let b = 0; b < g.n; b++) for (let grp = 0; grp < g.groups; grp++) {
          const xOff = (b * g.cin + grp * g.cg) * hw;
          const yOff = (b * g.cout + grp * g.og) * ohw;
          blas.gemm(dtype, true, false, K, ohw, g.og, 1, W, grp * g.og * K, K, GY, yOff, ohw, 0, col ?? R, col ? 0 : xOff, ohw);
          if (col) col2im(g, col, R, xOff);
        }
      } else {
        const X = asFloat(inputs[0]!, dtype, rt), GY = asFloat(inputs[1]!, dtype, rt);
        for (let b = 0; b < g.n; b++) for (let grp = 0; grp < g.groups; grp++) {
          const xOff = (b * g.cin + grp * g.cg) * hw;
          const yOff = (b * g.cout + grp * g.og) * ohw;
          if (col) im2col(g, X, xOff, col);
          blas.gemm(dtype, false, true, g.og, K, ohw, 1, GY, yOff, ohw, col ?? X, col ? 0 : xOff, ohw, b === 0 ? 0 : 1, R, grp * g.og * K, K);
        }
      }
      return res;
    };
  };
}

export const conv2dKernel = convKernel('forward');
export const conv2dInputGradKernel = convKernel('input');
export const conv2dFilterGradKernel = convKernel('filter');
