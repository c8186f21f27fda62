// Where a shared-state step's pieces live: the parameters and averaged states (values), the rule's
// state vectors and the per-fork gradient arena. With WebAssembly SIMD they are one shared
// WebAssembly.Memory (values at byte 0, then each state vector, then the arena, each on a cache
// line), so the ranks' SIMD kernels run on them in place and every typed-array view of them stays
// valid; otherwise (or beyond 4 GiB) separate SharedArrayBuffers for the JavaScript kernels.
import { fusedRule } from './fused-rules.js';
import { allocateSharedMemory, ensureMemoryBytes, type SharedWasmMemory, type SimdLayout } from './fused-simd.js';
import { controlWords, type SharedStepPlan } from './shared-step.js';
import { operandElements, type SplitLayer } from './shared-split.js';

/**
 * How shared-state steps sum and update: `'fast'` WebAssembly SIMD in the parameters' precision
 * (float32 arithmetic for float32 parameters, within a few float32 ulps of the JavaScript kernels
 * per step), `'exact'` WebAssembly SIMD in float64 arithmetic (bit for bit the JavaScript kernels),
 * `'off'` the JavaScript kernels.
 */
export type SharedStepKernels = 'fast' | 'exact' | 'off';

const align64 = (bytes: number) => Math.ceil(bytes / 64) * 64;

/** The storage of one shared-state step, allocated once; `planFor` adds a fork's arena and control words. */
export class SharedStepStorage {
  /** The one shared memory of values, state and arena, or null (separate SharedArrayBuffers, JavaScript kernels). */
  readonly memory: SharedWasmMemory | null;
  readonly layout: SimdLayout | null;
  readonly values: SharedArrayBuffer;
  readonly state: readonly SharedArrayBuffer[];
  /** Byte offsets of the state vectors (zeros without a memory) and of the arena. */
  readonly stateAt: readonly number[];
  private readonly arenaAt: number;
  private readonly bytes: number;

  constructor(
    readonly rule: string,
    readonly dtype: 'float32' | 'float64',
    readonly paramEnd: number,
    readonly weightIndex: number,
    mode: SharedStepKernels,
  ) {
    const nState = fusedRule(rule).state.length;
    this.bytes = dtype === 'float32' ? 4 : 8;
    const valuesBytes = weightIndex * this.bytes;
    const stateBytes = paramEnd * this.bytes;
    this.layout = mode === 'off' ? null : dtype === 'float64' ? 'f64' : mode === 'exact' ? 'f32-exact' : 'f32';
    this.arenaAt = align64(valuesBytes) + nState * align64(stateBytes);
    this.memory = this.layout ? allocateSharedMemory(this.arenaAt) : null;
    if (this.memory) {
      const buffer = this.memory.buffer;
      this.values = buffer;
      this.state = Array.from({ length: nState }, () => buffer);
      this.stateAt = Array.from({ length: nState }, (_, k) => align64(valuesBytes) + k * align64(stateBytes));
    } else {
      this.values = new SharedArrayBuffer(Math.max(8, valuesBytes));
      this.state = Array.from({ length: nState }, () => new SharedArrayBuffer(Math.max(8, stateBytes)));
      this.stateAt = this.state.map(() => 0);
    }
  }

  /**
   * The plan of a fork of `size` ranks: its gradient arena (in the memory, grown to fit, where the
   * memory stays within 4 GiB; otherwise its own buffer and the JavaScript kernels) and control words;
   * with `split` weights, an operand buffer for the column split of up to `splitRows` rows per rank.
   */
  planFor(id: number, size: number, split: readonly SplitLayer[] = [], splitRows = 0): SharedStepPlan {
    const length = this.weightIndex + 1;
    // Slots start on cache lines (16 elements) so that the SIMD loads of a shard are aligned.
    const slotStride = Math.ceil(length / 16) * 16;
    const arenaBytes = size * slotStride * this.bytes;
    const memory = this.memory !== null && ensureMemoryBytes(this.memory, this.arenaAt + arenaBytes) ? this.memory : null;
    return {
      id, rule: this.rule, dtype: this.dtype, size, length, paramEnd: this.paramEnd, weightIndex: this.weightIndex,
      values: this.values, valuesAt: 0, state: this.state, stateAt: this.stateAt,
      arena: memory ? memory.buffer : new SharedArrayBuffer(Math.max(8, arenaBytes)), arenaAt: memory ? this.arenaAt : 0, slotStride,
      memory, simd: memory ? this.layout : null, control: new SharedArrayBuffer(controlWords(size) * 8),
      split: split.length && splitRows > 0
        ? { layers: split, capacity: splitRows, operands: new SharedArrayBuffer(operandElements(split, size, splitRows) * this.bytes) }
        : null,
    };
  }
}
