// Stride-1 convolutions (any padding, dilation and groups) through GEMM on a "wide" output grid, so
// that building the column matrix is one contiguous copy per row instead of a loop per pixel.
//
// Each image's input channels are first laid out zero-padded, Hp x Wp with Hp = oh + dh·(kh-1) and
// Wp = ow + dw·(kw-1). The output is computed on oh x Wp positions: position (i, j) with j >= ow is
// a throw-away column. Then row (c, p, q) of the column matrix, col[(c,p,q)][i·Wp + j] =
// xpad[c][i + p·dh][j + q·dw], is the contiguous run of L = oh·Wp values of xpad starting at
// c·Hp·Wp + p·dh·Wp + q·dw: one TypedArray.copyWithin (a memmove) inside one scratch buffer that
// holds both. Images go side by side in the column matrix, as many as fit the cache budget, so the
// GEMMs are wide. The whole working set of a chunk lives in the thread's WebAssembly heap
// (wasm-heap.ts): the chunk's inputs are copied in with one memcpy, padded, spread into columns and
// the GEMM's output compacted there by the heap's block copies, and copied out with one memcpy.
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
import { trimWasmHeap, wasmHeap, type WasmHeap } from './wasm-heap.js';

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

/** Where a call's pieces lie in the heap (element offsets of the call's dtype) and how big they are. */
interface Layout {
  Hp: number;
  Wp: number;
  /** Wide positions per image (oh·Wp) and rows of the column matrix (cg·kh·kw). */
  L: number;
  K: number;
  /** Images per chunk, and the values of one padded image (all its channels, plus slack). */
  nb: number;
  padImage: number;
  /** A group's input channels of one image (cg·h·w) and output channels (og·oh·ow). */
  inImage: number;
  outImage: number;
  /** Staged inputs (nb·inImage), padded images (nb·padImage), columns (K·nb·L), GEMM output (og·nb·L), staged outputs (nb·outImage). */
  inAt: number;
  padAt: number;
  colAt: number;
  wideAt: number;
  outAt: number;
  end: number;
}

/** Rounds an element offset up to 16 bytes' worth of elements (4 float32 or 2 float64: both divide 4). */
const aligned = (x: number): number => Math.ceil(x / 4) * 4;

function layoutOf(c: WideConv): Layout {
  const Hp = c.oh + c.dh * (c.kh - 1);
  const Wp = c.ow + c.dw * (c.kw - 1);
  const L = c.oh * Wp;
  const K = c.cg * c.kh * c.kw;
  const nb = Math.max(1, Math.min(c.n, Math.floor(COLUMN_BUDGET / Math.max(1, K * L))));
  // The last rows of col read up to dw·(kw-1) values past an image's channels (throw-away columns).
  const padImage = c.cg * Hp * Wp + c.dw * (c.kw - 1);
  const inImage = c.cg * c.h * c.w, outImage = c.og * c.oh * c.ow;
  const inAt = 0;
  const padAt = aligned(inAt + nb * inImage);
  const colAt = aligned(padAt + nb * padImage);
  const wideAt = aligned(colAt + K * nb * L);
  const outAt = aligned(wideAt + c.og * nb * L);
  return { Hp, Wp, L, K, nb, padImage, inImage, outImage, inAt, padAt, colAt, wideAt, outAt, end: outAt + nb * outImage };
}

/** A call's heap and layout: the memory reserved, the padded images' borders zeroed. */
interface Work {
  c: WideConv;
  lay: Layout;
  heap: WasmHeap;
  H: GemmArray;
  elem: number;
}

function begin(c: WideConv, dtype: GemmDType, simd: boolean): Work {
  const lay = layoutOf(c);
  const heap = wasmHeap(simd);
  const elem = dtype === 'float32' ? 4 : 8;
  heap.reserve(lay.end * elem);
  const H = heap.view(dtype);
  H.fill(0, lay.padAt, lay.colAt); // borders and slack stay zero: only interiors are written below
  return { c, lay, heap, H, elem };
}

/**
 * Copies `count` per-image blocks of `size` values between an NCHW array (image stride `stride`,
 * from `first`) and a compact run in the heap (from `at`): one set when the blocks are contiguous.
 */
function stage(toHeap: boolean, arr: GemmArray, first: number, stride: number, H: GemmArray, at: number, count: number, size: number): void {
  if (stride === size) {
    if (toHeap) H.set(arr.subarray(first, first + count * size), at);
    else arr.set(H.subarray(at, at + count * size), first);
    return;
  }
  for (let b = 0; b < count; b++) {
    const a = first + b * stride, h = at + b * size;
    if (toHeap) H.set(arr.subarray(a, a + size), h);
    else arr.set(H.subarray(h, h + size), a);
  }
}

/** Pads the nb staged images into their slots, then spreads them into the column matrix (K rows of nb·L values). */
function buildColumns(w: Work, nb: number): void {
  const { c, lay, heap, elem } = w;
  const { Hp, Wp, L } = lay;
  const r0 = Math.max(0, -c.pt), r1 = Math.min(c.h, Hp - c.pt);
  const s0 = Math.max(0, -c.pl), s1 = Math.min(c.w, Wp - c.pl);
  for (let b = 0; b < nb; b++) {
    heap.copy3(elem, lay.inAt + b * lay.inImage + r0 * c.w + s0, c.w, c.h * c.w,
      lay.padAt + b * lay.padImage + (r0 + c.pt) * Wp + s0 + c.pl, Wp, Hp * Wp, c.cg, r1 - r0, s1 - s0);
  }
  // Row (ch, p, q) of the column matrix, image b: L values of slot b from ch·Hp·Wp + p·dh·Wp + q·dw.
  const ld = nb * L;
  for (let ch = 0; ch < c.cg; ch++) {
    for (let p = 0; p < c.kh; p++) {
      heap.copy3(elem, lay.padAt + ch * Hp * Wp + p * c.dh * Wp, c.dw, lay.padImage,
        lay.colAt + (ch * c.kh + p) * c.kw * ld, ld, L, nb, c.kw, L);
    }
  }
}

/**
 * For every chunk of at most lay.nb images (from image b0, nb of them) and every group: those images
 * of X staged and spread into the column matrix (heap from lay.colAt, K rows of ld = nb·L), then `each`.
 */
function forEachColumnChunk(w: Work, X: GemmArray, each: (b0: number, nb: number, grp: number, ld: number) => void): void {
  const { c, lay } = w;
  const imageIn = c.groups * lay.inImage;
  for (let b0 = 0; b0 < c.n; b0 += lay.nb) {
    const nb = Math.min(lay.nb, c.n - b0);
    for (let grp = 0; grp < c.groups; grp++) {
      stage(true, X, b0 * imageIn + grp * lay.inImage, imageIn, w.H, lay.inAt, nb, lay.inImage);
      buildColumns(w, nb);
      each(b0, nb, grp, nb * lay.L);
    }
  }
}

/**
 * Forward: R[b][grp·og + o] = conv of X's image b, group grp, with W rows grp·og... (og x K each,
 * row stride K), for every image and group. X is (n, groups·cg, h, w), R is (n, groups·og, oh, ow).
 */
export function wideForward(blas: Blas, dtype: GemmDType, c: WideConv, X: GemmArray, W: GemmArray, R: GemmArray, simd: boolean): void {
  const w = begin(c, dtype, simd);
  const { lay, heap, H, elem } = w;
  const imageOut = c.groups * lay.outImage;
  forEachColumnChunk(w, X, (b0, nb, grp, ld) => {
    blas.gemm(dtype, false, false, c.og, ld, lay.K, 1, W, grp * c.og * lay.K, lay.K, H, lay.colAt, ld, 0, H, lay.wideAt, ld);
    // The valid columns of image b's wide output, (og, oh, ow), into its staged output.
    for (let b = 0; b < nb; b++) {
      heap.copy3(elem, lay.wideAt + b * lay.L, lay.Wp, ld, lay.outAt + b * lay.outImage, c.ow, c.oh * c.ow, c.og, c.oh, c.ow);
    }
    stage(false, R, b0 * imageOut + grp * lay.outImage, imageOut, H, lay.outAt, nb, lay.outImage);
  });
  trimWasmHeap(heap);
}

/** Filter gradient: R (groups·og, cg, kh, kw) = Σ over images of gy_w · colᵀ, per group. */
export function wideFilterGrad(blas: Blas, dtype: GemmDType, c: WideConv, X: GemmArray, GY: GemmArray, R: GemmArray, simd: boolean): void {
  const w = begin(c, dtype, simd);
  const { lay, heap, H, elem } = w;
  const imageOut = c.groups * lay.outImage;
  forEachColumnChunk(w, X, (b0, nb, grp, ld) => {
    // gy_w: image b's gradient on the wide grid, zeros in the throw-away columns.
    stage(true, GY, b0 * imageOut + grp * lay.outImage, imageOut, H, lay.outAt, nb, lay.outImage);
    H.fill(0, lay.wideAt, lay.wideAt + c.og * ld);
    for (let b = 0; b < nb; b++) {
      heap.copy3(elem, lay.outAt + b * lay.outImage, c.ow, c.oh * c.ow, lay.wideAt + b * lay.L, lay.Wp, ld, c.og, c.oh, c.ow);
    }
    blas.gemm(dtype, false, true, c.og, lay.K, ld, 1, H, lay.wideAt, ld, H, lay.colAt, ld, b0 === 0 ? 0 : 1, R, grp * c.og * lay.K, lay.K);
  });
  trimWasmHeap(heap);
}

/**
 * Input gradient of the stride-1 convolution `c` (filters W: groups·og, cg, kh, kw): the forward
 * convolution of GY with the flipped, channel-swapped filters, written into R (n, groups·cg, h, w).
 */
export function wideInputGrad(blas: Blas, dtype: GemmDType, c: WideConv, GY: GemmArray, W: GemmArray, R: GemmArray, rt: RunContext, simd: boolean): void {
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
  wideForward(blas, dtype, transposed, GY, flipped, R, simd);
}
