// The worker side of a shared-state training step (makeTrainFunction on workers that share host
// memory). Parameters, averaged states and optimizer state live once in SharedArrayBuffers that
// every rank (and the controller) views; each rank writes its row-weighted flat gradient into its
// own slot of a gradient arena; after one barrier, rank r alone reads shard r of every slot, sums
// it (a reduce-scatter in place), and applies the fused optimizer rule to shard r of the shared
// parameters. No rank holds a copy of the parameters, so no all-gather follows: the next forward
// reads the shared weights. Rank r is the only reader of shard r, so it may leave the reduced sum
// in slot 0's shard r: slot 0 then holds the whole reduced flat vector, as the all-reduce gave.
// Where the plan's storage is one shared WebAssembly.Memory, the sum and the rule run as SIMD
// kernels on it (fused-simd.ts); otherwise (float64 without SIMD, over 4 GiB, no WebAssembly SIMD)
// as the JavaScript kernels of fused-rules.ts.
import { fusedRule, type FloatArray, type FusedRule } from './fused-rules.js';
import { SimdKernels, type SharedWasmMemory, type SimdLayout } from './fused-simd.js';
import { SplitStep, type SplitPlan } from './shared-split.js';
import type { Blas } from '../devices/cpu/blas-types.js';

/** Where the pieces of a shared step live; sent once per fork to every worker. */
export interface SharedStepPlan {
  readonly id: number;
  readonly rule: string;
  readonly dtype: 'float32' | 'float64';
  /** Ranks (one gradient slot each). */
  readonly size: number;
  /** Elements of the flat vector: parameters [0, paramEnd), averaged states [paramEnd, weightIndex), the row count. */
  readonly length: number;
  readonly paramEnd: number;
  readonly weightIndex: number;
  /** Parameters and averaged states, flat (weightIndex elements from byte valuesAt). */
  readonly values: SharedArrayBuffer;
  readonly valuesAt: number;
  /** The rule's per-parameter state vectors (paramEnd elements each, from bytes stateAt[k]), in the rule's order. */
  readonly state: readonly SharedArrayBuffer[];
  readonly stateAt: readonly number[];
  /** size gradient slots of `length` elements, `slotStride` elements apart, from byte arenaAt. */
  readonly arena: SharedArrayBuffer;
  readonly arenaAt: number;
  readonly slotStride: number;
  /**
   * The shared memory whose buffer is values, state and arena (the byte offsets above are into it),
   * and the SIMD layout its kernels run in; null: the JavaScript kernels.
   */
  readonly memory: SharedWasmMemory | null;
  readonly simd: SimdLayout | null;
  /** Float64 words: see CONTROL below. */
  readonly control: SharedArrayBuffer;
  /** The column split's weights and operand buffer (shared-split.ts), or null: never split. */
  readonly split: SplitPlan | null;
}

/** Layout of a plan's control words (Float64). */
export const CONTROL = {
  /** Hyper-parameter values of this step, in the rule's order. */
  hyper: 0,
  /** The step count this step runs as (the counter's value plus one). */
  step: 15,
  /**
   * Rank 0's timings of its last step, ms: gradient, waiting for the other ranks, reduce and update
   * together; then 1 if it ran SIMD kernels; then the reduce alone (the update is the difference).
   */
  timings: 16,
  /** Which split weights this step computes by columns (bits over plan.split.layers; 0: none), and its rows per rank block. */
  splitMask: 21,
  splitStride: 22,
  /** Each rank's rows in this step; after them, RANK_TIMES words per rank (rankTimesAt). */
  weights: 23,
} as const;

/**
 * Per rank, its last step: when its gradient began (ms since the epoch: performance.timeOrigin +
 * now(), comparable across threads), how long the gradient took, and how long it waited at the barrier.
 */
export const RANK_TIMES = 3;

/** Where rank 0's RANK_TIMES words start. */
export function rankTimesAt(size: number): number {
  return CONTROL.weights + size;
}

export function controlWords(size: number): number {
  return rankTimesAt(size) + RANK_TIMES * size;
}

/** Shard r of [0, length): contiguous, cut at multiples of 16 elements so ranks never share a cache line. */
export function shardOf(length: number, size: number, rank: number): [number, number] {
  const cut = (r: number) => (r >= size ? length : Math.min(length, Math.floor((r * length) / size / 16) * 16));
  return [cut(rank), cut(rank + 1)];
}

/** Elements per pass of the sum and the update: a chunk of every slot stays in cache between the two. */
const CHUNK = 4096;

/** The SIMD kernels on `memory`, or null (the JavaScript kernels run) where this thread cannot instantiate them. */
function kernelsOrNull(memory: SharedWasmMemory, rule: string, layout: SimdLayout): SimdKernels | null {
  try {
    return new SimdKernels(memory, rule, layout);
  } catch {
    return null;
  }
}

/** A rank's handle of a plan: typed views made once per fork. */
export class SharedStep {
  private readonly rule: FusedRule;
  private readonly slots: FloatArray[];
  private readonly values: FloatArray;
  private readonly state: FloatArray[];
  private readonly control: Float64Array;
  private readonly scratch: FloatArray;
  private readonly kernels: SimdKernels | null;
  private readonly split: SplitStep | null;
  private gradientStart = 0;

  /** `gemm`: the host GEMM the column split runs on (the device's), where it has one. */
  constructor(readonly plan: SharedStepPlan, readonly rank: number, gemm: Blas | null = null) {
    this.rule = fusedRule(plan.rule);
    const View = plan.dtype === 'float32' ? Float32Array : Float64Array;
    // TypeScript's typed-array constructors take ArrayBuffer only; SharedArrayBuffer works the same.
    const view = (b: SharedArrayBuffer, at: number, n: number): FloatArray => new View(b as unknown as ArrayBuffer, at, n);
    const bytes = View.BYTES_PER_ELEMENT;
    this.slots = Array.from({ length: plan.size }, (_, r) => view(plan.arena, plan.arenaAt + r * plan.slotStride * bytes, plan.length));
    this.values = view(plan.values, plan.valuesAt, plan.weightIndex);
    this.state = plan.state.map((b, k) => view(b, plan.stateAt[k]!, plan.paramEnd));
    this.control = new Float64Array(plan.control);
    this.scratch = new View(CHUNK);
    this.kernels = plan.memory && plan.simd ? kernelsOrNull(plan.memory, plan.rule, plan.simd) : null;
    this.split = plan.split ? new SplitStep(plan.split, plan.dtype, plan.size, rank, plan.length, gemm) : null;
  }

  /** Whether this rank sums and updates with the WebAssembly SIMD kernels. */
  get usesSimd(): boolean {
    return this.kernels !== null;
  }

  /** This rank's slot of the gradient arena (slot 0 also holds the reduced vector after a step). */
  slot(rank = this.rank): FloatArray {
    return this.slots[rank]!;
  }

  /** Marks the start of the gradient phase (for rank 0's timings). */
  beginGradient(): void {
    this.gradientStart = performance.now();
    this.control[rankTimesAt(this.plan.size) + RANK_TIMES * this.rank] = performance.timeOrigin + this.gradientStart;
  }

  /** Writes this rank's flat gradient (or zeros when it had no rows) into its slot, before the barrier. */
  contribute(flat: FloatArray | null): void {
    const slot = this.slot();
    const mask = this.control[CONTROL.splitMask]!;
    if (mask === 0) this.split?.clear();
    if (mask !== 0) {
      if (!this.split) throw new Error(`rank ${this.rank}: a column-split step on a plan without the split`);
      this.split.contribute(flat, slot, mask, this.control[CONTROL.splitStride]!);
    } else if (flat === null) slot.fill(0);
    else {
      if (flat.length !== this.plan.length) throw new RangeError(`shared step: flat gradient of ${flat.length} elements, the plan has ${this.plan.length}`);
      slot.set(flat);
    }
    this.control[CONTROL.weights + this.rank] = slot[this.plan.weightIndex]!;
    const gradientMs = performance.now() - this.gradientStart;
    this.control[rankTimesAt(this.plan.size) + RANK_TIMES * this.rank + 1] = gradientMs;
    if (this.rank === 0) this.control[CONTROL.timings] = gradientMs;
  }

  /** After the barrier: reduce shard `rank` over every slot and apply the rule to it in place. */
  reduceAndUpdate(waitedMs: number): void {
    const t0 = performance.now();
    this.control[rankTimesAt(this.plan.size) + RANK_TIMES * this.rank + 2] = waitedMs;
    const { size, length } = this.plan;
    let rows = 0;
    for (let r = 0; r < size; r++) rows += this.control[CONTROL.weights + r]!;
    const scale = rows > 0 ? 1 / rows : 0;
    const h = this.rule.hyper.map((_, i) => this.control[CONTROL.hyper + i]!);
    const step = this.control[CONTROL.step]!;
    const [lo, hi] = shardOf(length, size, this.rank);
    // The split weights' elements of this shard: one GEMM over every rank's operands, into slot 0 (the reduce skips them).
    this.split?.compute(this.slots[0]!, lo, hi);
    const splitMs = performance.now() - t0;
    const reduceMs = splitMs + (this.kernels
      ? this.reduceAndUpdateSimd(this.kernels, lo, hi, rows, scale, h, step)
      : this.reduceAndUpdateJs(lo, hi, rows, scale, h, step));
    if (this.rank === 0) {
      this.control[CONTROL.timings + 1] = waitedMs;
      this.control[CONTROL.timings + 2] = performance.now() - t0;
      this.control[CONTROL.timings + 3] = this.kernels ? 1 : 0;
      this.control[CONTROL.timings + 4] = reduceMs;
    }
  }

  /**
   * With many nodes, the step in three parts: reduceShard (this node's slots into slot 0, shard
   * `rank`), then, after the node's barrier, slot 0 all-reduced across nodes by the node's leader,
   * then after another barrier updateShard, which applies the rule to shard `rank` of the job-wide
   * sum (its row count is slot 0's weight element, summed with it).
   */
  reduceShard(from = 0, to = this.plan.length): void {
    if (this.split?.active) throw new Error(`rank ${this.rank}: the column split does not span nodes`);
    const t0 = performance.now();
    const [lo, hi] = this.shardIn(from, to);
    const { size, arenaAt, slotStride } = this.plan;
    const first = this.slots[0]!;
    for (let c = lo; c < hi; c += CHUNK) {
      const end = Math.min(hi, c + CHUNK);
      if (this.kernels) { this.kernels.reduce(arenaAt, slotStride * this.values.BYTES_PER_ELEMENT, size, c, end); continue; }
      for (let r = 1; r < size; r++) {
        const s = this.slots[r]!;
        for (let i = c; i < end; i++) first[i] = first[i]! + s[i]!;
      }
    }
    this.shardReduceMs += performance.now() - t0;
  }

  /** Shard `rank` of the plan, within [from, to) (empty where they do not meet). */
  private shardIn(from: number, to: number): [number, number] {
    const [lo, hi] = shardOf(this.plan.length, this.plan.size, this.rank);
    const a = Math.max(lo, from);
    return [a, Math.max(a, Math.min(hi, to))];
  }

  /**
   * Starts a step in parts (reduceShard and updateShard, over the whole vector or piece by piece,
   * the piece with the row count first): their times add up until the next one.
   */
  beginShardStep(): void {
    this.shardReduceMs = 0;
    this.shardUpdateMs = 0;
  }

  /**
   * The second half of reduceShard's step: the rule on shard `rank` of slot 0 (the sum over every
   * node), within [from, to). The row count (slot 0's weight element) must be the job-wide one already.
   */
  updateShard(waitedMs: number, from = 0, to = this.plan.length): void {
    const t0 = performance.now();
    this.control[rankTimesAt(this.plan.size) + RANK_TIMES * this.rank + 2] = waitedMs;
    const { length, paramEnd, weightIndex, arenaAt, valuesAt, stateAt } = this.plan;
    const first = this.slots[0]!;
    const rows = first[weightIndex]!;
    const scale = rows > 0 ? 1 / rows : 0;
    const h = this.rule.hyper.map((_, i) => this.control[CONTROL.hyper + i]!);
    const step = this.control[CONTROL.step]!;
    const [lo, hi] = this.shardIn(from, to);
    const bytes = this.values.BYTES_PER_ELEMENT;
    this.kernels?.prepare(h, step, scale);
    for (let c = lo; c < hi && rows > 0; c += CHUNK) {
      const end = Math.min(hi, c + CHUNK);
      const pEnd = Math.min(end, paramEnd);
      if (c < pEnd) {
        if (this.kernels) this.kernels.update(valuesAt, arenaAt + c * bytes, stateAt, c, pEnd);
        else this.rule.update(this.values, first.subarray(c, end), scale, this.state, c, pEnd, h, step);
      }
      for (let i = Math.max(c, paramEnd); i < Math.min(end, weightIndex); i++) this.values[i] = first[i]! * scale;
    }
    this.shardUpdateMs += performance.now() - t0;
    if (this.rank === 0) {
      this.control[CONTROL.timings + 1] = waitedMs;
      this.control[CONTROL.timings + 2] = this.shardUpdateMs + this.shardReduceMs;
      this.control[CONTROL.timings + 3] = this.kernels ? 1 : 0;
      this.control[CONTROL.timings + 4] = this.shardReduceMs;
    }
  }

  /** reduceShard's and updateShard's time on this rank in this step, ms (rank 0 reports them in updateShard). */
  private shardReduceMs = 0;
  private shardUpdateMs = 0;

  private reduceAndUpdateSimd(kernels: SimdKernels, lo: number, hi: number, rows: number, scale: number, h: number[], step: number): number {
    const { size, paramEnd, weightIndex, arenaAt, valuesAt, stateAt, slotStride } = this.plan;
    const bytes = this.values.BYTES_PER_ELEMENT;
    const first = this.slots[0]!;
    kernels.prepare(h, step, scale);
    let reduceMs = 0;
    for (let c = lo; c < hi; c += CHUNK) {
      const end = Math.min(hi, c + CHUNK);
      const t0 = performance.now();
      if (this.split) this.split.forUnsplit(c, end, (a, b) => kernels.reduce(arenaAt, slotStride * bytes, size, a, b)); // into slot 0
      else kernels.reduce(arenaAt, slotStride * bytes, size, c, end);
      reduceMs += performance.now() - t0;
      if (rows === 0) continue; // no rank had rows: nothing to learn from, nothing changes
      const pEnd = Math.min(end, paramEnd);
      if (c < pEnd) kernels.update(valuesAt, arenaAt + c * bytes, stateAt, c, pEnd);
      for (let i = Math.max(c, paramEnd); i < Math.min(end, weightIndex); i++) this.values[i] = first[i]! * scale;
    }
    return reduceMs;
  }

  private reduceAndUpdateJs(lo: number, hi: number, rows: number, scale: number, h: number[], step: number): number {
    const { size, paramEnd, weightIndex } = this.plan;
    const sum = this.scratch;
    const first = this.slots[0]!;
    let reduceMs = 0;
    for (let c = lo; c < hi; c += CHUNK) {
      const end = Math.min(hi, c + CHUNK);
      const n = end - c;
      const t0 = performance.now();
      sum.set(first.subarray(c, end));
      const add = (a: number, b: number) => {
        for (let r = 1; r < size; r++) {
          const s = this.slots[r]!;
          for (let i = a; i < b; i++) sum[i - c] = sum[i - c]! + s[i]!;
        }
      };
      if (this.split) this.split.forUnsplit(c, end, add);
      else add(c, end);
      first.set(sum.subarray(0, n), c); // slot 0 keeps the reduced vector
      reduceMs += performance.now() - t0;
      if (rows === 0) continue; // no rank had rows: nothing to learn from, nothing changes
      const pEnd = Math.min(end, paramEnd);
      if (c < pEnd) this.rule.update(this.values, sum, scale, this.state, c, pEnd, h, step);
      for (let i = Math.max(c, paramEnd); i < Math.min(end, weightIndex); i++) this.values[i] = sum[i - c]! * scale;
    }
    return reduceMs;
  }
}
