// A per-thread WebAssembly memory where the convolutions keep their working set (staged inputs,
// padded images, column matrix, GEMM output) and a strided copy kernel over it. The data movement
// of im2col is many short runs (a padded row of 14 values, an output row of 28): as JavaScript
// loops over typed arrays they cost several ns per value, as one TypedArray call per run 50-100 ns
// of call overhead each. Here one call moves a whole block of runs (planes x rows x len), in
// 16-byte SIMD copies with a 4-byte tail; JavaScript only moves whole contiguous blocks in and out
// (TypedArray.set, a memcpy). The GEMM reads and writes the same memory through typed-array views.
// The memory only grows inside `reserve`, so views taken after it stay valid until the next one.
import { Code, encodeModule } from './wasm-emit.js';
import { wasmApi, type WasmMemory } from './wasm-api.js';
import type { GemmArray, GemmDType } from './blas-types.js';

const PAGE = 65536;
/** After a call that reserved more than this, the memory is dropped (WebAssembly memory never shrinks). */
const RETAIN_BYTES = 1 << 28;

// copy3 params: 0 src, 1 srcRow, 2 srcPlane, 3 dst, 4 dstRow, 5 dstPlane, 6 planes, 7 rows, 8 len
// (all in bytes; len a multiple of 4); locals: 9 plane, 10 row, 11 i, 12 s, 13 d.
const [SRC, SROW, SPLANE, DST, DROW, DPLANE, PLANES, ROWS, LEN, PL, R, I, S, D] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] as const;

/** for each plane, row: dst[d .. d + len) = src[s .. s + len) (regions must not overlap). */
function emitCopy3(simd: boolean): Code {
  const c = new Code();
  c.i32(0).set(PL);
  c.block().loop();
  c.get(PL).get(PLANES).ltU().eqz().brIf(1);
  c.get(SRC).get(PL).get(SPLANE).mul().add().set(S);
  c.get(DST).get(PL).get(DPLANE).mul().add().set(D);
  c.i32(0).set(R);
  c.block().loop();
  c.get(R).get(ROWS).ltU().eqz().brIf(1);
  c.i32(0).set(I);
  if (simd) {
    // 64 bytes a turn while they fit, then 16.
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
  c.get(S).get(SROW).add().set(S);
  c.get(D).get(DROW).add().set(D);
  c.get(R).i32(1).add().set(R);
  c.br(0).end().end();
  c.get(PL).i32(1).add().set(PL);
  c.br(0).end().end();
  return c;
}

type Copy3 = (src: number, srcRow: number, srcPlane: number, dst: number, dstRow: number, dstPlane: number, planes: number, rows: number, len: number) => void;

/** One thread's heap: a growable memory, its float views and the copy kernel. */
export class WasmHeap {
  private readonly memory: WasmMemory;
  private readonly copyFn: Copy3;
  f32: Float32Array;
  f64: Float64Array;

  constructor(readonly simd: boolean) {
    const exports = new wasmApi.Instance(new wasmApi.Module(encodeModule([{
      name: 'copy3', params: new Array<'i32'>(9).fill('i32'), results: [], locals: new Array<'i32'>(5).fill('i32'), body: emitCopy3(simd),
    }], 1)), {}).exports as { memory: WasmMemory; copy3: Copy3 };
    this.memory = exports.memory;
    this.copyFn = exports.copy3;
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
  copy3(elem: number, src: number, srcRow: number, srcPlane: number, dst: number, dstRow: number, dstPlane: number, planes: number, rows: number, len: number): void {
    if (planes <= 0 || rows <= 0 || len <= 0) return;
    this.copyFn(src * elem, srcRow * elem, srcPlane * elem, dst * elem, dstRow * elem, dstPlane * elem, planes, rows, len * elem);
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
