// Stride-1 convolutions (any padding, dilation and groups) through GEMM on a "wide" output grid, so
// that building the column matrix is one contiguous copy per row instead of a loop per pixel.
//
// Each image's input channels are first laid out zero-padded, Hp x Wp with Hp = oh + dh·(kh-1) and
// Wp = ow + dw·(kw-1). The output is computed on oh x Wp positions: position (i, j) with j >= ow is
// a throw-away column. Then row (c, p, q) of the column matrix, col[(c,p,q)][i·Wp + j] =
// xpad[c][i + p·dh][j + q·dw], is the contiguous run of L = oh·Wp values of xpad starting at
// c·Hp·Wp + p·dh·Wp + q·dw: one TypedArray.copyWithin (a memmove) inside one scratch buffer that
// holds both. Images go side by side in the column matrix, as many as fit the cache budget, so the
// GEMMs are wide; only the small padded inputs and the outputs are copied by JavaScript loops.
//
//   forward:      y_w  = W_g · col                   then y = the valid columns of y_w
//   filter grad:  gW_g += gy_w · colᵀ               gy_w = gy with zeros in the throw-away columns
//   input grad:   the forward convolution of gy with the filters flipped in space and their in/out
//                 channels swapped, padded by dh·(kh-1) - pt on top and dw·(kw-1) - pl on the left
//                 (a gather, no scatter-add)
// The throw-away columns of col read real inputs of the next row; they meet only throw-away outputs
// (forward) or zeros of gy_w (filter grad), so finite inputs give exactly the direct sums' terms.
import type { Blas, GemmArray, GemmDType } from './blas-types.js';
import type { RunContext } from './kernel-types.js';

/** Values of one chunk's column matrix (128 K float32 values: 512 KiB, about one core's L2). */
export const COLUMN_BUDGET = 1 << 17;

/** One stride-1 convolution as the wide-grid kernels see it. */
export interface WideConv {
  n: number;
  groups: number;
  /** Input and output channels per group. */
  cg: number;
  og: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  dh: number;
  dw: number;
  /** Padding on top and left (negative: rows/columns cropped); bottom and right follow from oh, ow. */
  pt: number;
  pl: number;
  oh: number;
  ow: number;
}

interface Layout {
  Hp: number;
  Wp: number;
  /** Wide positions per image (oh·Wp) and rows of the column matrix (cg·kh·kw). */
  L: number;
  K: number;
  /** Images per chunk, and the values of one padded image (all its channels, plus slack). */
  nb: number;
  padImage: number;
  /** Where the padded images start in the scratch buffer (after the column matrix). */
  padAt: number;
}

function layoutOf(c: WideConv): Layout {
  const Hp = c.oh + c.dh * (c.kh - 1);
  const Wp = c.ow + c.dw * (c.kw - 1);
  const L = c.oh * Wp;
  const K = c.cg * c.kh * c.kw;
  const nb = Math.max(1, Math.min(c.n, Math.floor(COLUMN_BUDGET / Math.max(1, K * L))));
  // The last rows of col read up to dw·(kw-1) values past an image's channels (throw-away columns).
  const padImage = c.cg * Hp * Wp + c.dw * (c.kw - 1);
  return { Hp, Wp, L, K, nb, padImage, padAt: K * nb * L };
}

/** The scratch buffer (column matrix, then the padded images, borders zeroed) of one call. */
function scratchFor(c: WideConv, lay: Layout, dtype: GemmDType, rt: RunContext): GemmArray {
  const buf = rt.scratch(dtype, lay.padAt + lay.nb * lay.padImage) as GemmArray;
  buf.fill(0, lay.padAt); // borders and slack stay zero: only interiors are written below
  return buf;
}

/** Copies image b's group grp (channels grp·cg...) of X into padded slot s of buf. */
function padImage(c: WideConv, lay: Layout, X: GemmArray, xImage: number, buf: GemmArray, slot: number): void {
  const { Hp, Wp } = lay;
  const r0 = Math.max(0, -c.pt), r1 = Math.min(c.h, Hp - c.pt);
  const s0 = Math.max(0, -c.pl), s1 = Math.min(c.w, Wp - c.pl);
  const width = s1 - s0;
  if (width <= 0) return;
  const base = lay.padAt + slot * lay.padImage;
  for (let ch = 0; ch < c.cg; ch++) {
    const src = xImage + ch * c.h * c.w;
    const dst = base + ch * Hp * Wp;
    for (let r = r0; r < r1; r++) {
      const from = src + r * c.w + s0;
      const to = dst + (r + c.pt) * Wp + s0 + c.pl;
      for (let j = 0; j < width; j++) buf[to + j] = X[from + j]!;
    }
  }
}

/** The column matrix of the chunk's nb images (their padded slots 0..nb-1): K rows of nb·L values. */
function wideColumns(c: WideConv, lay: Layout, buf: GemmArray, nb: number): void {
  const { Hp, Wp, L } = lay;
  const ld = nb * L;
  for (let ch = 0, r = 0; ch < c.cg; ch++) {
    for (let p = 0; p < c.kh; p++) {
      for (let q = 0; q < c.kw; q++, r++) {
        const from = lay.padAt + ch * Hp * Wp + p * c.dh * Wp + q * c.dw;
        for (let b = 0; b < nb; b++) {
          const start = from + b * lay.padImage;
          buf.copyWithin(r * ld + b * L, start, start + L);
        }
      }
    }
  }
}

/**
 * Forward: R[b][grp·og + o] = conv of X's image b, group grp, with W rows grp·og... (og x K each,
 * row stride K), for every image and group. X is (n, groups·cg, h, w), R is (n, groups·og, oh, ow).
 */
export function wideForward(blas: Blas, dtype: GemmDType, c: WideConv, X: GemmArray, W: GemmArray, R: GemmArray, rt: RunContext): void {
  const lay = layoutOf(c);
  const wide = rt.scratch(dtype, c.og * lay.nb * lay.L) as GemmArray;
  const ohw = c.oh * c.ow, outImage = c.groups * c.og * ohw;
  forEachColumnChunk(c, lay, dtype, rt, X, (b0, nb, grp, buf, ld) => {
    blas.gemm(dtype, false, false, c.og, ld, lay.K, 1, W, grp * c.og * lay.K, lay.K, buf, 0, ld, 0, wide, 0, ld);
    for (let o = 0; o < c.og; o++) {
      for (let b = 0; b < nb; b++) {
        const from = o * ld + b * lay.L;
        const to = (b0 + b) * outImage + (grp * c.og + o) * ohw;
        for (let i = 0; i < c.oh; i++) {
          const f = from + i * lay.Wp, t = to + i * c.ow;
          for (let j = 0; j < c.ow; j++) R[t + j] = wide[f + j]!;
        }
      }
    }
  });
}

/**
 * For every chunk of at most lay.nb images (from image b0, nb of them) and every group: those images of X,
 * zero-padded, spread into the column matrix `buf` (lay.K rows of ld = nb·L values), then `each` on it.
 */
function forEachColumnChunk(c: WideConv, lay: Layout, dtype: GemmDType, rt: RunContext, X: GemmArray,
  each: (b0: number, nb: number, grp: number, buf: GemmArray, ld: number) => void): void {
  const buf = scratchFor(c, lay, dtype, rt);
  const inImage = c.groups * c.cg * c.h * c.w;
  for (let b0 = 0; b0 < c.n; b0 += lay.nb) {
    const nb = Math.min(lay.nb, c.n - b0);
    for (let grp = 0; grp < c.groups; grp++) {
      for (let b = 0; b < nb; b++) padImage(c, lay, X, (b0 + b) * inImage + grp * c.cg * c.h * c.w, buf, b);
      wideColumns(c, lay, buf, nb);
      each(b0, nb, grp, buf, nb * lay.L);
    }
  }
}

/** Filter gradient: R (groups·og, cg, kh, kw) = Σ over images of gy_w · colᵀ, per group. */
export function wideFilterGrad(blas: Blas, dtype: GemmDType, c: WideConv, X: GemmArray, GY: GemmArray, R: GemmArray, rt: RunContext): void {
  const lay = layoutOf(c);
  const wide = rt.scratch(dtype, c.og * lay.nb * lay.L) as GemmArray;
  const ohw = c.oh * c.ow, outImage = c.groups * c.og * ohw;
  forEachColumnChunk(c, lay, dtype, rt, X, (b0, nb, grp, buf, ld) => {
    for (let o = 0; o < c.og; o++) {
      for (let b = 0; b < nb; b++) {
        const to = o * ld + b * lay.L;
        const from = (b0 + b) * outImage + (grp * c.og + o) * ohw;
        for (let i = 0; i < c.oh; i++) {
          const t = to + i * lay.Wp, f = from + i * c.ow;
          for (let j = 0; j < c.ow; j++) wide[t + j] = GY[f + j]!;
          for (let j = c.ow; j < lay.Wp; j++) wide[t + j] = 0;
        }
      }
    }
    blas.gemm(dtype, false, true, c.og, lay.K, ld, 1, wide, 0, ld, buf, 0, ld, b0 === 0 ? 0 : 1, R, grp * c.og * lay.K, lay.K);
  });
}

/**
 * Input gradient of the stride-1 convolution `c` (filters W: groups·og, cg, kh, kw): the forward
 * convolution of GY with the flipped, channel-swapped filters, written into R (n, groups·cg, h, w).
 */
export function wideInputGrad(blas: Blas, dtype: GemmDType, c: WideConv, GY: GemmArray, W: GemmArray, R: GemmArray, rt: RunContext): void {
  const taps = c.kh * c.kw;
  const flipped = rt.scratch(dtype, c.groups * c.cg * c.og * taps) as GemmArray;
  for (let grp = 0; grp < c.groups; grp++) {
    for (let o = 0; o < c.og; o++) {
      for (let ch = 0; ch < c.cg; ch++) {
        const from = ((grp * c.og + o) * c.cg + ch) * taps;
        const to = ((grp * c.cg + ch) * c.og + o) * taps + taps - 1;
        for (let t = 0; t < taps; t++) flipped[to - t] = W[from + t]!;
      }
    }
  }
  const transposed: WideConv = {
    n: c.n, groups: c.groups, cg: c.og, og: c.cg, h: c.oh, w: c.ow, kh: c.kh, kw: c.kw, dh: c.dh, dw: c.dw,
    pt: c.dh * (c.kh - 1) - c.pt, pl: c.dw * (c.kw - 1) - c.pl, oh: c.h, ow: c.w,
  };
  wideForward(blas, dtype, transposed, GY, flipped, R, rt);
}
