// Runs WebAssembly chain kernels (wasm-chain.ts) over JavaScript typed arrays. WebAssembly cannot
// address a typed array outside its memory, so the driver walks the [rows, inner] iteration space in
// blocks of at most 64 KiB per operand: each input's block is copied into its region of one memory
// shared by every kernel of the thread (TypedArray.set, a memcpy), the kernel runs over the block
// (still in L2), and each stored value's block is copied out. Rows are padded to whole vectors in
// wasm memory, so widths that are not a multiple of the lane count cost one copy per row.
//
// Nothing is allocated per call beyond the typed-array views TypedArray.set needs (subarray); the
// memory grows only for a larger colsum row and is then kept.
import type { TypedArray } from '../../tensor/dtype.js';
import { wasmApi, type WasmMemory } from './wasm-api.js';
import { chainKey, chainParams, emitChainModule, type ChainSignature } from './wasm-chain.js';

/** Bytes per operand block. */
const REGION = 65536;
const PAGE = 65536;

/** How one input is read: see ChainSignature. */
export interface ChainInput {
  readonly data: TypedArray;
  readonly kind: 's' | 'z';
  readonly advance: boolean;
}

type ChainFn = (...args: number[]) => void;

interface Heap {
  readonly memory: WasmMemory;
  buffer: ArrayBuffer;
  f32: Float32Array;
  f64: Float64Array;
}

let heap: Heap | null = null;

function theHeap(): Heap {
  if (heap === null) {
    const memory = new wasmApi.Memory({ initial: 16 });
    heap = { memory, buffer: memory.buffer, f32: new Float32Array(memory.buffer), f64: new Float64Array(memory.buffer) };
  }
  return heap;
}

function ensureBytes(h: Heap, bytes: number): void {
  const have = h.memory.buffer.byteLength;
  if (bytes > have) h.memory.grow(Math.ceil((bytes - have) / PAGE));
  if (h.buffer !== h.memory.buffer) {
    h.buffer = h.memory.buffer;
    h.f32 = new Float32Array(h.buffer);
    h.f64 = new Float64Array(h.buffer);
  }
}

const compiled = new Map<string, ChainFn>();
let compiledCount = 0;

/** Chain modules compiled so far in this thread (for tests of the cache). */
export function compiledChainCount(): number {
  return compiledCount;
}

/** A runner for one chain signature (compiled on first use, cached per thread). */
export class ChainKernel {
  private readonly fn: ChainFn;
  private readonly args: number[];
  private readonly elem: number;
  private readonly lanes: number;

  constructor(readonly sig: ChainSignature) {
    const key = chainKey(sig);
    let fn = compiled.get(key);
    if (fn === undefined) {
      const h = theHeap();
      const instance = new wasmApi.Instance(new wasmApi.Module(emitChainModule(sig)), { env: { memory: h.memory } });
      fn = instance.exports['chain'] as ChainFn;
      compiled.set(key, fn);
      compiledCount++;
    }
    this.fn = fn;
    this.args = new Array<number>(chainParams(sig).length).fill(0);
    this.elem = sig.lane === 'f32' ? 4 : 8;
    this.lanes = 16 / this.elem;
  }

  /**
   * Evaluates the chain over rows x inner positions: `outs[k]` (rows * inner values, row-major)
   * receives stored step k; `acc` (length >= inner), when the signature sums a step, receives the
   * column sums (overwritten, not added to).
   */
  run(rows: number, inner: number, ins: readonly ChainInput[], outs: readonly TypedArray[], acc: Float64Array | null): void {
    if (rows === 0 || inner === 0) {
      if (acc !== null) acc.fill(0, 0, inner);
      return;
    }
    const { elem, lanes, args, fn } = this;
    const h = theHeap();
    const regionElems = REGION / elem;
    const nRegions = ins.length + outs.length;
    const innerP = Math.ceil(inner / lanes) * lanes;
    const accAt = nRegions * REGION;
    ensureBytes(h, accAt + (acc === null ? 0 : innerP * 8));
    const mem = elem === 4 ? h.f32 : h.f64;
    if (acc !== null) h.f64.fill(0, accAt / 8, accAt / 8 + innerP);
    const colBlock = Math.min(innerP, regionElems);
    for (let c0 = 0; c0 < inner; c0 += colBlock) {
      const len = Math.min(colBlock, inner - c0);
      const lenP = Math.ceil(len / lanes) * lanes;
      const rowsPer = Math.max(1, Math.floor(regionElems / lenP));
      const whole = len === inner && lenP === len;
      for (let r0 = 0; r0 < rows; r0 += rowsPer) {
        const nr = Math.min(rowsPer, rows - r0);
        for (let j = 0; j < ins.length; j++) {
          const input = ins[j]!;
          const src = input.data;
          const base = (j * REGION) / elem;
          if (input.kind === 'z') {
            if (input.advance) mem.set(src.subarray(r0, r0 + nr), base);
            else mem[base] = src[0]!;
          } else if (!input.advance) {
            mem.set(src.subarray(c0, c0 + len), base);
          } else if (whole) {
            mem.set(src.subarray(r0 * inner, (r0 + nr) * inner), base);
          } else {
            for (let i = 0; i < nr; i++) mem.set(src.subarray((r0 + i) * inner + c0, (r0 + i) * inner + c0 + len), base + i * lenP);
          }
          args[2 + j] = j * REGION;
        }
        for (let k = 0; k < outs.length; k++) args[2 + ins.length + k] = (ins.length + k) * REGION;
        if (acc !== null) args[2 + nRegions] = accAt + c0 * 8;
        args[0] = nr;
        args[1] = lenP / lanes;
        fn(...args);
        for (let k = 0; k < outs.length; k++) {
          const out = outs[k]!;
          const base = ((ins.length + k) * REGION) / elem;
          if (whole) out.set(mem.subarray(base, base + nr * inner), r0 * inner);
          else for (let i = 0; i < nr; i++) out.set(mem.subarray(base + i * lenP, base + i * lenP + len), (r0 + i) * inner + c0);
        }
      }
    }
    if (acc !== null) acc.set(h.f64.subarray(accAt / 8, accAt / 8 + inner));
  }
}
