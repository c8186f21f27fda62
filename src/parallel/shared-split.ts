// The column split of a shared-state step (makeTrainFunction on CPU workers with few rows per rank).
// A weight's gradient dW = Aᵀ·G (A the layer's input rows, G the output gradient rows) computed by
// every rank on its own K rows costs a full-size replica of dW per rank, written once and read again
// by the reduce-scatter; with K = 32 the GEMM is bound by those writes. Split instead, each rank
// publishes its rows of A and of G·rows (its row weight folded in) into one shared operand buffer,
// and after the step's one barrier rank r computes the elements of dW in its own shard r of the flat
// vector as ONE GEMM over every rank's rows (K = ranks x rows), straight into slot 0, where the
// reduce-scatter would have left the sum: those elements are neither written per rank nor reduced.
// Shards are contiguous ranges of the flat vector and dW is row-major [in, out], so a shard holds
// whole rows of dW (and a partial first and last row): the block a rank computes is the one it
// updates next, which is why no second barrier is needed.
import type { Blas } from '../devices/cpu/blas-types.js';
import type { FloatArray } from './fused-rules.js';

/** A weight whose gradient the split computes: where it sits in the flat vector and its shape [inDim, outDim]. */
export interface SplitLayer {
  readonly offset: number;
  readonly inDim: number;
  readonly outDim: number;
}

/** The column split's part of a plan: the candidate weights and the buffer their operands go to. */
export interface SplitPlan {
  readonly layers: readonly SplitLayer[];
  /** Rows per rank the operand buffer holds; a step splits only with at most this many (the controller re-plans for more). */
  readonly capacity: number;
  /** Per layer, A [ranks·capacity, in] then G [ranks·capacity, out], in the plan's dtype. */
  readonly operands: SharedArrayBuffer;
}

/** Elements of the operand buffer for `layers` on `size` ranks of `capacity` rows each. */
export function operandElements(layers: readonly SplitLayer[], size: number, capacity: number): number {
  return layers.reduce((n, l) => n + size * capacity * (l.inDim + l.outDim), 0);
}

/**
 * C = Aᵀ·G in plain loops, for devices without a host GEMM (the reference device, in its own
 * arithmetic): A and G in `ops` (K rows, lda / ldg apart), C rows ldg apart.
 */
function productTA(m: number, n: number, k: number, ops: FloatArray, a: number, lda: number, g: number, ldg: number, c: FloatArray, at: number): void {
  for (let i = 0; i < m; i++) {
    const row = at + i * ldg;
    c.fill(0, row, row + n);
    for (let r = 0; r < k; r++) {
      const x = ops[a + r * lda + i]!;
      const gRow = g + r * ldg;
      for (let j = 0; j < n; j++) c[row + j] = c[row + j]! + x * ops[gRow + j]!;
    }
  }
}

/** One rank's side of the split: publishing its operands before the barrier, its GEMMs after. */
export class SplitStep {
  private readonly ops: FloatArray;
  /** Element offsets of each layer's A and G in the operand buffer. */
  private readonly aAt: number[] = [];
  private readonly gAt: number[] = [];
  /** The split weights of the last contribute (mask bits over plan.layers) and the rows per rank block. */
  private mask = 0;
  private stride = 0;

  constructor(
    private readonly plan: SplitPlan,
    private readonly dtype: 'float32' | 'float64',
    private readonly size: number,
    private readonly rank: number,
    private readonly length: number,
    private readonly gemm: Blas | null,
  ) {
    const View = dtype === 'float32' ? Float32Array : Float64Array;
    this.ops = new View(plan.operands as unknown as ArrayBuffer);
    let at = 0;
    for (const l of plan.layers) {
      this.aAt.push(at);
      at += size * plan.capacity * l.inDim;
      this.gAt.push(at);
      at += size * plan.capacity * l.outDim;
    }
  }

  /** A step without the split. */
  clear(): void {
    this.mask = 0;
  }

  /** Whether the current step splits any weight. */
  get active(): boolean {
    return this.mask !== 0;
  }

  /**
   * Writes a split flat vector (FlatLayout.pack with `split`) into `slot` and the operand buffer:
   * the parts before, between and after the split weights into their places in the slot, then each
   * split weight's [K, A, G·rows] into this rank's block of `stride` rows (rows past K zeroed, so the
   * one GEMM over every block adds nothing for them). `flat` null: this rank had no rows.
   */
  contribute(flat: FloatArray | null, slot: FloatArray, mask: number, stride: number): void {
    if (!(stride >= 0 && stride <= this.plan.capacity)) {
      throw new RangeError(`rank ${this.rank}: column split of ${stride} rows per rank, the plan holds ${this.plan.capacity}`);
    }
    this.mask = mask;
    this.stride = stride;
    const layers = this.plan.layers.filter((_, l) => (mask >> l) & 1);
    const indices = this.plan.layers.map((_, l) => l).filter((l) => (mask >> l) & 1);
    if (flat === null) {
      slot.fill(0);
      for (const l of indices) this.publish(l, null, 0, 0);
      return;
    }
    const short = () => new RangeError(`rank ${this.rank}: the column-split flat gradient has ${flat.length} elements, too few for its layout`);
    let src = 0;
    let dst = 0;
    for (const l of layers) {
      const n = l.offset - dst;
      if (src + n > flat.length) throw short();
      slot.set(flat.subarray(src, src + n), dst);
      src += n;
      dst = l.offset + l.inDim * l.outDim;
    }
    const rest = this.length - dst;
    if (src + rest > flat.length) throw short();
    slot.set(flat.subarray(src, src + rest), dst);
    src += rest;
    for (const l of indices) {
      const layer = this.plan.layers[l]!;
      const k = flat[src] ?? -1;
      if (!Number.isInteger(k) || k < 0 || k > stride) {
        throw new RangeError(`rank ${this.rank}: column split of weight ${l}: ${k} operand rows, at most ${stride} per rank this step`);
      }
      if (src + 1 + k * (layer.inDim + layer.outDim) > flat.length) throw short();
      this.publish(l, flat, src + 1, k);
      src += 1 + k * (layer.inDim + layer.outDim);
    }
    if (src !== flat.length) throw new RangeError(`rank ${this.rank}: the column-split flat gradient has ${flat.length} elements, its layout ${src}`);
  }

  private publish(l: number, flat: FloatArray | null, at: number, k: number): void {
    const { inDim, outDim } = this.plan.layers[l]!;
    const row = this.rank * this.stride;
    const a = this.aAt[l]! + row * inDim;
    const g = this.gAt[l]! + row * outDim;
    if (flat !== null) {
      this.ops.set(flat.subarray(at, at + k * inDim), a);
      this.ops.set(flat.subarray(at + k * inDim, at + k * (inDim + outDim)), g);
    }
    this.ops.fill(0, a + k * inDim, a + this.stride * inDim);
    this.ops.fill(0, g + k * outDim, g + this.stride * outDim);
  }

  /** After the barrier: every split weight's elements in [lo, hi) of `first` (slot 0) = Σ over all ranks' rows of Aᵀ·G. */
  compute(first: FloatArray, lo: number, hi: number): void {
    if (this.mask === 0) return;
    const k = this.size * this.stride;
    this.plan.layers.forEach((layer, l) => {
      if (!((this.mask >> l) & 1)) return;
      const { offset, inDim, outDim } = layer;
      const s = Math.max(lo, offset) - offset;
      const e = Math.min(hi, offset + inDim * outDim) - offset;
      if (s >= e) return;
      // Rows [i, i + m) of dW, columns [j, j + n): A's columns i.., G's columns j.., C at offset + i·out + j.
      const block = (i: number, m: number, j: number, n: number) => {
        const [a, g, c] = [this.aAt[l]! + i, this.gAt[l]! + j, offset + i * outDim + j];
        if (this.gemm) this.gemm.gemm(this.dtype, true, false, m, n, k, 1, this.ops, a, inDim, this.ops, g, outDim, 0, first, c, outDim);
        else productTA(m, n, k, this.ops, a, inDim, g, outDim, first, c);
      };
      const i0 = Math.floor(s / outDim);
      const j0 = s % outDim;
      const i1 = Math.floor((e - 1) / outDim);
      const j1 = ((e - 1) % outDim) + 1;
      if (i0 === i1) return block(i0, 1, j0, j1 - j0);
      let full = i0;
      if (j0 > 0) { block(i0, 1, j0, outDim - j0); full = i0 + 1; }
      const last = j1 < outDim ? i1 : i1 + 1;
      if (last > full) block(full, last - full, 0, outDim);
      if (j1 < outDim) block(i1, 1, 0, j1);
    });
  }

  /** Calls `fn` on the parts of [lo, hi) outside the split weights (what the reduce-scatter still sums). */
  forUnsplit(lo: number, hi: number, fn: (a: number, b: number) => void): void {
    if (this.mask === 0) return fn(lo, hi);
    let at = lo;
    this.plan.layers.forEach((layer, l) => {
      if (!((this.mask >> l) & 1)) return;
      const end = layer.offset + layer.inDim * layer.outDim;
      if (end <= at || layer.offset >= hi) return;
      if (layer.offset > at) fn(at, layer.offset);
      at = Math.min(hi, end);
    });
    if (at < hi) fn(at, hi);
  }
}
