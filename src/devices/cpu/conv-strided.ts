// Float32 convolutions that the wide grid does not take (a stride above 1: ResNet's stem and its
// downsampling convolutions) through im2col and GEMM, with the whole working set of a chunk of
// images in the thread's WebAssembly heap (wasm-heap.ts), as conv-wide.ts does:
//   the chunk's images copied in (one memcpy), zero-padded into slots (block copies), each row
//   (c, p, q) of the column matrix gathered from every slot at once (every sw-th value, SIMD for 2);
//   forward:      out  = W_g · col                  (og x K) · (K x nb·oh·ow)
//   filter grad:  gW_g += gy · colᵀ                 (summed over the chunks by beta = 1)
//   input grad:   col  = W_gᵀ · gy, scatter-added into the padded slots (col2im), cropped out.
// With one image in a chunk the GEMMs read and write the NCHW arrays in place.
import type { ConvGeometry } from '../../ops/conv.js';
import type { Blas } from './blas-types.js';
import { COLUMN_BUDGET } from './conv-wide.js';
import { trimWasmHeap, wasmHeap, type WasmHeap } from './wasm-heap.js';

/** A convolution as these kernels see it: its geometry and group count. */
export type StridedConv = ConvGeometry & { readonly groups: number };

interface Layout {
  /** Padded extent: every row and column some tap reads. */
  Hp: number;
  Wp: number;
  K: number;
  /** Output positions per image (oh·ow). */
  P: number;
  nb: number;
  /** A group's channels of one image: input (cg·h·w), padded (cg·Hp·Wp plus slack), output (og·oh·ow). */
  inImage: number;
  padImage: number;
  outImage: number;
  /** Element offsets in the heap: staged inputs, padded slots, columns, the GEMM's (og x nb·P) side, staged outputs. */
  inAt: number;
  padAt: number;
  colAt: number;
  prodAt: number;
  outAt: number;
  end: number;
}

const aligned = (x: number): number => Math.ceil(x / 4) * 4;

function layoutOf(c: StridedConv): Layout {
  const Hp = (c.oh - 1) * c.sh + c.dh * (c.kh - 1) + 1;
  const Wp = (c.ow - 1) * c.sw + c.dw * (c.kw - 1) + 1;
  const K = c.cg * c.kh * c.kw, P = c.oh * c.ow;
  const nb = Math.max(1, Math.min(c.n, Math.floor(COLUMN_BUDGET / Math.max(1, K * P))));
  // The stride-2 gather reads one value past the last it keeps: 4 values of slack after each slot.
  const inImage = c.cg * c.h * c.w, padImage = aligned(c.cg * Hp * Wp + 4), outImage = c.og * P;
  const inAt = 0;
  const padAt = aligned(inAt + nb * inImage);
  const colAt = aligned(padAt + nb * padImage);
  const prodAt = aligned(colAt + K * nb * P);
  const outAt = aligned(prodAt + c.og * nb * P);
  return { Hp, Wp, K, P, nb, inImage, padImage, outImage, inAt, padAt, colAt, prodAt, outAt, end: outAt + nb * outImage + 4 };
}

/** The input rows [r0, r1) and columns [s0, s1) that lie in the padded extent. */
function validRegion(c: StridedConv, lay: Layout): { r0: number; r1: number; s0: number; s1: number } {
  return { r0: Math.max(0, -c.pt), r1: Math.min(c.h, lay.Hp - c.pt), s0: Math.max(0, -c.pl), s1: Math.min(c.w, lay.Wp - c.pl) };
}

interface Work { c: StridedConv; lay: Layout; heap: WasmHeap; H: Float32Array }

function begin(c: StridedConv, simd: boolean): Work {
  const lay = layoutOf(c);
  const heap = wasmHeap(simd);
  heap.reserve(lay.end * 4);
  return { c, lay, heap, H: heap.f32 };
}

/** Copies `count` blocks of `size` values between an NCHW array (block stride `stride`, from `first`) and the heap at `at`. */
function stage(toHeap: boolean, arr: Float32Array, first: number, stride: number, H: Float32Array, at: number, count: number, size: number): void {
  if (stride === size) {
    if (toHeap) H.set(arr.subarray(first, first + count * size), at);
    else arr.set(H.subarray(at, at + count * size), first);
    return;
  }
  for (let b = 0; b < count; b++) {
    if (toHeap) H.set(arr.subarray(first + b * stride, first + b * stride + size), at + b * size);
    else arr.set(H.subarray(at + b * size, at + (b + 1) * size), first + b * stride);
  }
}

/** The chunk's staged images padded into their slots (borders zeroed once per call) and gathered into the column matrix. */
function buildColumns(w: Work, nb: number): void {
  const { c, lay, heap } = w;
  const { Hp, Wp, P } = lay;
  const { r0, r1, s0, s1 } = validRegion(c, lay);
  for (let b = 0; b < nb; b++) {
    heap.copy3(4, lay.inAt + b * lay.inImage + r0 * c.w + s0, c.w, c.h * c.w,
      lay.padAt + b * lay.padImage + (r0 + c.pt) * Wp + s0 + c.pl, Wp, Hp * Wp, c.cg, r1 - r0, s1 - s0);
  }
  const ld = nb * P;
  for (let ch = 0, r = 0; ch < c.cg; ch++) {
    for (let p = 0; p < c.kh; p++) {
      for (let q = 0; q < c.kw; q++, r++) {
        heap.gather(lay.padAt + ch * Hp * Wp + p * c.dh * Wp + q * c.dw, c.sh * Wp, lay.padImage, c.sw, lay.colAt + r * ld, c.ow, P, nb, c.oh, c.ow);
      }
    }
  }
}

/** Every chunk of at most lay.nb images and every group, with `each(b0, nb, grp)`. */
function forEachChunk(w: Work, each: (b0: number, nb: number, grp: number) => void): void {
  for (let b0 = 0; b0 < w.c.n; b0 += w.lay.nb) {
    const nb = Math.min(w.lay.nb, w.c.n - b0);
    for (let grp = 0; grp < w.c.groups; grp++) each(b0, nb, grp);
  }
}

/** The chunk's columns of X (images b0.., group grp) in the heap at lay.colAt. */
function columnsOf(w: Work, X: Float32Array, b0: number, nb: number, grp: number): void {
  const imageIn = w.c.groups * w.lay.inImage;
  stage(true, X, b0 * imageIn + grp * w.lay.inImage, imageIn, w.H, w.lay.inAt, nb, w.lay.inImage);
  buildColumns(w, nb);
}

/**
 * The chunk's output gradient as an (og x nb·P) matrix: [array, offset, ld]. One image: GY itself;
 * more: staged, then each image's (og x P) block moved side by side into the heap at lay.prodAt.
 */
function gradientRows(w: Work, GY: Float32Array, b0: number, nb: number, grp: number): [Float32Array, number, number] {
  const { c, lay, heap, H } = w;
  const imageOut = c.groups * lay.outImage;
  if (nb === 1) return [GY, b0 * imageOut + grp * lay.outImage, lay.P];
  stage(true, GY, b0 * imageOut + grp * lay.outImage, imageOut, H, lay.outAt, nb, lay.outImage);
  const ld = nb * lay.P;
  for (let b = 0; b < nb; b++) heap.copy3(4, lay.outAt + b * lay.outImage, lay.P, 0, lay.prodAt + b * lay.P, ld, 0, 1, c.og, lay.P);
  return [H, lay.prodAt, ld];
}

/** Forward: R (n, groups·og, oh, ow) = the convolution of X (n, groups·cg, h, w) with W (groups·og, cg, kh, kw). */
export function stridedForward(blas: Blas, c: StridedConv, X: Float32Array, W: Float32Array, R: Float32Array, simd: boolean): void {
  const w = begin(c, simd);
  const { lay, heap, H } = w;
  H.fill(0, lay.padAt, lay.colAt);
  const imageOut = c.groups * lay.outImage;
  forEachChunk(w, (b0, nb, grp) => {
    columnsOf(w, X, b0, nb, grp);
    const ld = nb * lay.P, wAt = grp * c.og * lay.K;
    if (nb === 1) {
      blas.gemm('float32', false, false, c.og, ld, lay.K, 1, W, wAt, lay.K, H, lay.colAt, ld, 0, R, b0 * imageOut + grp * lay.outImage, lay.P);
      return;
    }
    blas.gemm('float32', false, false, c.og, ld, lay.K, 1, W, wAt, lay.K, H, lay.colAt, ld, 0, H, lay.prodAt, ld);
    for (let b = 0; b < nb; b++) heap.copy3(4, lay.prodAt + b * lay.P, ld, 0, lay.outAt + b * lay.outImage, lay.P, 0, 1, c.og, lay.P);
    stage(false, R, b0 * imageOut + grp * lay.outImage, imageOut, H, lay.outAt, nb, lay.outImage);
  });
  trimWasmHeap(heap);
}

/** Filter gradient: R (groups·og, cg, kh, kw) = Σ over images of gy · colᵀ, per group. */
export function stridedFilterGrad(blas: Blas, c: StridedConv, X: Float32Array, GY: Float32Array, R: Float32Array, simd: boolean): void {
  const w = begin(c, simd);
  const { lay, heap, H } = w;
  H.fill(0, lay.padAt, lay.colAt);
  forEachChunk(w, (b0, nb, grp) => {
    columnsOf(w, X, b0, nb, grp);
    const [G, gAt, ldg] = gradientRows(w, GY, b0, nb, grp);
    blas.gemm('float32', false, true, c.og, lay.K, nb * lay.P, 1, G, gAt, ldg, H, lay.colAt, nb * lay.P, b0 === 0 ? 0 : 1, R, grp * c.og * lay.K, lay.K);
  });
  trimWasmHeap(heap);
}

/** Input gradient: R (n, groups·cg, h, w) = col2im(W_gᵀ · gy) per image and group. */
export function stridedInputGrad(blas: Blas, c: StridedConv, GY: Float32Array, W: Float32Array, R: Float32Array, simd: boolean): void {
  const w = begin(c, simd);
  const { lay, heap, H } = w;
  const { Hp, Wp, P } = lay;
  const { r0, r1, s0, s1 } = validRegion(c, lay);
  const imageIn = c.groups * lay.inImage;
  forEachChunk(w, (b0, nb, grp) => {
    const [G, gAt, ldg] = gradientRows(w, GY, b0, nb, grp);
    const ld = nb * P;
    blas.gemm('float32', true, false, lay.K, ld, c.og, 1, W, grp * c.og * lay.K, lay.K, G, gAt, ldg, 0, H, lay.colAt, ld);
    H.fill(0, lay.padAt, lay.colAt);
    for (let ch = 0, r = 0; ch < c.cg; ch++) {
      for (let p = 0; p < c.kh; p++) {
        for (let q = 0; q < c.kw; q++, r++) {
          heap.scatterAdd(lay.colAt + r * ld, c.ow, P, lay.padAt + ch * Hp * Wp + p * c.dh * Wp + q * c.dw, c.sh * Wp, lay.padImage, c.sw, nb, c.oh, c.ow);
        }
      }
    }
    // Rows and columns no tap reads (past the padded extent) get no gradient: zeros.
    H.fill(0, lay.inAt, lay.inAt + nb * lay.inImage);
    for (let b = 0; b < nb; b++) {
      heap.copy3(4, lay.padAt + b * lay.padImage + (r0 + c.pt) * Wp + s0 + c.pl, Wp, Hp * Wp,
        lay.inAt + b * lay.inImage + r0 * c.w + s0, c.w, c.h * c.w, c.cg, r1 - r0, s1 - s0);
    }
    stage(false, R, b0 * imageIn + grp * lay.inImage, imageIn, H, lay.inAt, nb, lay.inImage);
  });
  trimWasmHeap(heap);
}
