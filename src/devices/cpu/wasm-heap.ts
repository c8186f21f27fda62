// A per-thread WebAssembly memory where the convolutions keep their working set (staged inputs,
// padded images, column matrix, GEMM output) and a strided copy kernel over it. The data movement
// of im2col is many short runs (a padded row of 14 values, an output row of 28): as JavaScript
// loops over typed arrays they cost several ns per value, as one TypedArray call per run 50-100 ns
// of call overhead each. Here one call moves a whole block of runs (planes x rows x len), in
// 16-byte SIMD copies with a 4-byte tail; JavaScript only moves whole contiguous blocks in and out
// (TypedArray.set, a memcpy). The GEMM reads and writes the same memory through typed-array views.
// Strided convolutions gather their column rows (every sw-th value) and scatter-add the input
// gradient's back with kernels of the same shape.
// The memory only grows inside `reserve`, so views taken after it stay valid until the next one.
import { Code, encodeModule } from './wasm-emit.js';
import { wasmApi, type WasmMemory } from './wasm-api.js';
import type { GemmArray, GemmDType } from './blas-types.js';

const PAGE = 65536;
/** After a call that reserved more than this, the memory is dropped (WebAssembly memory never shrinks). */
const RETAIN_BYTES = 1 << 28;

// Every kernel's params: 0 src, 1 srcRow, 2 srcPlane, 3 dst, 4 dstRow, 5 dstPlane, 6 planes, 7 rows,
// 8 len (bytes for copy3, elements for the others), 9 step (bytes between the strided side's
// elements); i32 locals: 10 plane, 11 row, 12 i, 13 s, 14 d (the row's first bytes), 15 sp, 16 dp.
const [SRC, SROW, SPLANE, DST, DROW, DPLANE, PLANES, ROWS, LEN, STEP, PL, R, I, S, D, SP, DP] =
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] as const;
const F32_ADD = 0x92, SHUFFLE = 0x0d;
const raw = (c: Code, ...bytes: number[]): Code => {
  c.bytes.push(...bytes);
  return c;
};

/** The plane and row loops of every kernel around `row`, which moves one row from S to D. */
function emitBlocks(row: (c: Code) => void): Code {
  const c = new Code();
  c.i32(0).set(PL);
  c.block().loop();
  c.get(PL).get(PLANES).ltU().eqz().brIf(1);
  c.get(SRC).get(PL).get(SPLANE).mul().add().set(S);
  c.get(DST).get(PL).get(DPLANE).mul().add().set(D);
  c.i32(0).set(R);
  c.block().loop();
  c.get(R).get(ROWS).ltU().eqz().brIf(1);
  row(c);
  c.get(S).get(SROW).add().set(S);
  c.get(D).get(DROW).add().set(D);
  c.get(R).i32(1).add().set(R);
  c.br(0).end().end();
  c.get(PL).i32(1).add().set(PL);
  c.br(0).end().end();
  return c;
}

/** copy3's row: LEN bytes from S to D, 64 then 16 bytes a turn in SIMD, then 4. */
function emitCopy3(simd: boolean): Code {
  return emitBlocks((c) => {
    c.i32(0).set(I);
    if (simd) {
      for (const step of [64, 16]) {
        c.block().loop();
        c.get(LEN).get(I).i32(step).add().ltU().brIf(1);
        for (let k = 0; k < step; k += 16) c.get(D).get(I).add().get(S).get(I).add().v128Load(k).v128Store(k);
        c.get(I).i32(step).add().set(I);
        c.br(0).end().end();
      }
    }
    c.block().loop();
    c.get(I).get(LEN).ltU().eqz().brIf(1);
    c.get(D).get(I).add().get(S).get(I).add().i32Load().i32Store();
    c.get(I).i32(4).add().set(I);
    c.br(0).end().end();
  });
}

/**
 * gather's row: LEN float32 values from S, STEP bytes apart, to D contiguously. With SIMD and a step
 * of 8 (stride 2), four a turn: two loads, the even lanes shuffled together (it reads one value past
 * the last one it keeps: the heap keeps slack after every region).
 */
function emitGather(simd: boolean): Code {
  return emitBlocks((c) => {
    c.i32(0).set(I).get(S).set(SP).get(D).set(DP);
    if (simd) {
      c.get(STEP).i32(8).ne().eqz().if();
      c.block().loop();
      c.get(LEN).get(I).i32(4).add().ltU().brIf(1);
      c.get(DP).get(SP).v128Load(0).get(SP).v128Load(16).simdOp(SHUFFLE, ...[0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]).v128Store(0);
      c.get(SP).i32(32).add().set(SP).get(DP).i32(16).add().set(DP).get(I).i32(4).add().set(I);
      c.br(0).end().end();
      c.end();
    }
    c.block().loop();
    c.get(I).get(LEN).ltU().eqz().brIf(1);
    c.get(DP).get(SP).i32Load().i32Store();
    c.get(SP).get(STEP).add().set(SP).get(DP).i32(4).add().set(DP).get(I).i32(1).add().set(I);
    c.br(0).end().end();
  });
}

/** scatterAdd's row: D's LEN float32 values, STEP bytes apart, each plus the next of S's (contiguous); SIMD for a step of 4. */
function emitScatterAdd(simd: boolean): Code {
  return emitBlocks((c) => {
    c.i32(0).set(I).get(S).set(SP).get(D).set(DP);
    if (simd) {
      c.get(STEP).i32(4).ne().eqz().if();
      c.block().loop();
      c.get(LEN).get(I).i32(4).add().ltU().brIf(1);
      c.get(DP).get(DP).v128Load(0).get(SP).v128Load(0).f32x4Add().v128Store(0);
      c.get(SP).i32(16).add().set(SP).get(DP).i32(16).add().set(DP).get(I).i32(4).add().set(I);
      c.br(0).end().end();
      c.end();
    }
    c.block().loop();
    c.get(I).get(LEN).ltU().eqz().brIf(1);
    c.get(DP).get(DP).f32Load().get(SP).f32Load();
    raw(c, F32_ADD).f32Store();
    c.get(SP).i32(4).add().set(SP).get(DP).get(STEP).add().set(DP).get(I).i32(1).add().set(I);
    c.br(0).end().end();
  });
}

type Block = (
  src: number, srcRow: number, srcPlane: number, dst: number, dstRow: number, dstPlane: number, planes: number, rows: number, len: number, step: number,
) => void;

/** One thread's heap: a growable memory, its float views and the copy kernel. */
export class WasmHeap {
  private readonly memory: WasmMemory;
  private readonly copyFn: Block;
  private readonly gatherFn: Block;
  private readonly scatterAddFn: Block;
  f32: Float32Array;
  f64: Float64Array;

  constructor(readonly simd: boolean) {
    const fn = (name: string, body: Code) => ({ name, params: new Array<'i32'>(10).fill('i32'), results: [], locals: new Array<'i32'>(7).fill('i32'), body });
    const exports = new wasmApi.Instance(new wasmApi.Module(encodeModule([
      fn('copy3', emitCopy3(simd)), fn('gather', emitGather(simd)), fn('scatterAdd', emitScatterAdd(simd)),
    ], 1)), {}).exports as { memory: WasmMemory; copy3: Block; gather: Block; scatterAdd: Block };
    this.memory = exports.memory;
    this.copyFn = exports.copy3;
    this.gatherFn = exports.gather;
    this.scatterAddFn = exports.scatterAdd;
    this.f32 = new Float32Array(this.memory.buffer);
    this.f64 = new Float64Array(this.memory.buffer);
  }

  /** Makes at least `bytes` addressable; views taken before a call that grows are stale afterwards. */
  reserve(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      this.memory.grow(Math.ceil((bytes - have) / PAGE));
      this.f32 = new Float32Array(this.memory.buffer);
      this.f64 = new Float64Array(this.memory.buffer);
    }
  }

  /** The memory itself, for modules that import it (wasm-bn.ts). */
  get memoryObject(): WasmMemory {
    return this.memory;
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** The float view of `dtype`. */
  view(dtype: GemmDType): GemmArray {
    return dtype === 'float32' ? this.f32 : this.f64;
  }

  /**
   * For p < planes, r < rows: copies `len` elements from src + p·srcPlane + r·srcRow to dst + p·dstPlane + r·dstRow.
   * Offsets, strides and len are in elements of `elem` bytes (4 or 8); source and destination must not overlap.
   */
  copy3(
    elem: number, src: number, srcRow: number, srcPlane: number, dst: number, dstRow: number, dstPlane: number, planes: number, rows: number, len: number,
  ): void {
    if (planes <= 0 || rows <= 0 || len <= 0) return;
    this.copyFn(src * elem, srcRow * elem, srcPlane * elem, dst * elem, dstRow * elem, dstPlane * elem, planes, rows, len * elem, 0);
  }

  /**
   * Float32 only, offsets and strides in elements: for p < planes, r < rows, j < len:
   * dst[dst + p·dstPlane + r·dstRow + j] = src[src + p·srcPlane + r·srcRow + j·step] (an im2col row of a strided convolution).
   * With step 2 it may read the element after the last one it copies.
   */
  gather(
    src: number, srcRow: number, srcPlane: number, step: number, dst: number, dstRow: number, dstPlane: number, planes: number, rows: number, len: number,
  ): void {
    if (planes <= 0 || rows <= 0 || len <= 0) return;
    this.gatherFn(src * 4, srcRow * 4, srcPlane * 4, dst * 4, dstRow * 4, dstPlane * 4, planes, rows, len, step * 4);
  }

  /** Float32 only, in elements: dst[dst + p·dstPlane + r·dstRow + j·step] += src[src + p·srcPlane + r·srcRow + j] (col2im). */
  scatterAdd(
    src: number, srcRow: number, srcPlane: number, dst: number, dstRow: number, dstPlane: number, step: number, planes: number, rows: number, len: number,
  ): void {
    if (planes <= 0 || rows <= 0 || len <= 0) return;
    this.scatterAddFn(src * 4, srcRow * 4, srcPlane * 4, dst * 4, dstRow * 4, dstPlane * 4, planes, rows, len, step * 4);
  }
}

const heaps: (WasmHeap | null)[] = [null, null];

/** This thread's heap (one with SIMD copies and one without, for devices built with simd: false). */
export function wasmHeap(simd: boolean): WasmHeap {
  const k = simd ? 1 : 0;
  return (heaps[k] ??= new WasmHeap(simd));
}

/** Drops a heap that grew past the retained size (called after the kernel that reserved it). */
export function trimWasmHeap(heap: WasmHeap): void {
  if (heap.bytes > RETAIN_BYTES) heaps[heap.simd ? 1 : 0] = null;
}
