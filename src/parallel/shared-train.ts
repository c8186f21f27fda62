// The controller's side of a shared-state training step (the worker side is shared-step.ts): the
// shared memory for parameters, averaged states and optimizer state (allocated once, viewed by the
// controller's variables), the per-fork gradient arena and control words, and the step itself: one
// dispatch that computes the gradient, reduces it and applies the fused rule on every rank.
// The parameters, states and arena are one shared WebAssembly.Memory where the engine has
// WebAssembly SIMD (the ranks' SIMD kernels run on it in place); plain SharedArrayBuffers otherwise.
import { NDArray } from '../tensor/ndarray.js';
import type { SharedVariable } from '../tensor/variable.js';
import { fusedRule, type FusedRule, type FusedRuleName } from './fused-rules.js';
import { CONTROL, RANK_TIMES, rankTimesAt } from './shared-step.js';
import { callWithStep, type SynkFn } from './function.js';
import { forkGeneration, numWorkers, sendPlan } from './runtime.js';
import { commitSharedState, holdInSharedMemory, releaseSharedMemory } from './shared-state.js';
import { SharedStepStorage, type SharedStepKernels } from './shared-layout.js';
import type { SplitLayer } from './shared-split.js';

export type { SharedStepKernels } from './shared-layout.js';

let kernelMode: SharedStepKernels = 'fast';

/** Chooses the kernels of shared-state steps built from now on (default `'fast'`); returns the previous choice. */
export function setSharedStepKernels(mode: SharedStepKernels): SharedStepKernels {
  if (mode !== 'fast' && mode !== 'exact' && mode !== 'off') {
    throw new TypeError(`setSharedStepKernels: expected 'fast', 'exact' or 'off', got ${JSON.stringify(mode)}`);
  }
  const previous = kernelMode;
  kernelMode = mode;
  return previous;
}

/** What a shared-state training step is made of (makeTrainFunction builds it from its optimizer). */
export interface SharedTrainSpec {
  /** Who this is, for messages ("makeTrainFunction"). */
  readonly owner: string;
  readonly rule: FusedRuleName;
  /** The gradient function; its first update writes the flat vector [g·rows..., state·rows..., rows]. */
  readonly gradFn: SynkFn;
  readonly params: readonly SharedVariable[];
  /** Float states whose new values are averaged over the ranks (after the parameters in the flat vector). */
  readonly states: readonly SharedVariable[];
  /** The rule's state vectors: stateSlots[k][i] is state vector k of params[i] (the rule's order). */
  readonly stateSlots: readonly (readonly SharedVariable[])[];
  /** The step counter (rules with one), kept on the controller and passed to every step. */
  readonly counter: SharedVariable | null;
  /** Hyper-parameters by name (every name of the rule's `hyper` list). */
  readonly hyper: Readonly<Record<string, SharedVariable>>;
  /** The weights a step may compute by the column split (shared-split.ts), in flat-vector order. */
  readonly splitLayers?: readonly SplitLayer[];
}

/** One step's column split: which of the spec's splitLayers (bits), the rows per rank block, and the gradient function that publishes their operands. */
export interface SplitChoice {
  readonly mask: number;
  readonly stride: number;
  readonly gradFn: SynkFn;
}

/** Rank 0's timings of the last step, in milliseconds. */
export interface SharedStepTimings {
  /** Forward and backward on rank 0's rows, up to its flat gradient in its arena slot. */
  readonly gradientMs: number;
  /** Waiting at the barrier for the other ranks (and reducing the outputs). */
  readonly waitMs: number;
  /** Summing rank 0's shard of the gradient over all ranks' arena slots (the reduce-scatter). */
  readonly reduceMs: number;
  /** Applying the fused rule to rank 0's shard of parameters and optimizer state. */
  readonly updateMs: number;
  /** Whether rank 0 summed and updated with the WebAssembly SIMD kernels (false: the JavaScript kernels). */
  readonly simd: boolean;
  /** How many weight gradients the step computed by the column split (their GEMMs count in reduceMs). */
  readonly columnSplit: number;
  /** Every rank's own clock in the last step, to see which rank the others waited for and why. */
  readonly ranks: readonly RankTiming[];
}

/** One rank's part of the last step, ms. */
export interface RankTiming {
  /** When its gradient began, after the controller began the step (dispatch, waking up and setting up). */
  readonly startMs: number;
  /** Forward and backward on its rows, up to its flat gradient in its arena slot. */
  readonly gradientMs: number;
  /** Waiting at the barrier for the other ranks. */
  readonly waitMs: number;
}

let nextPlanId = 1;

export class SharedTrainStep {
  private readonly rule: FusedRule;
  private readonly dtype: 'float32' | 'float64';
  private readonly bytes: number;
  private readonly paramEnd: number;
  private readonly weightIndex: number;
  private readonly storage: SharedStepStorage;
  private readonly held: SharedVariable[] = [];
  private holding = false;
  private lastSplit = 0;
  /** When the last step's call began on the controller (ms since the epoch, as the ranks' start times). */
  private calledAt = 0;
  private fork: { generation: number; planId: number; control: Float64Array; splitRows: number; size: number } | null = null;

  constructor(private readonly spec: SharedTrainSpec) {
    this.rule = fusedRule(spec.rule);
    const dtype = spec.params[0]!.dtype;
    if (dtype !== 'float32' && dtype !== 'float64') {
      throw new TypeError(`${spec.owner}: shared-state training needs float32 or float64 parameters, got ${dtype}`);
    }
    this.dtype = dtype;
    this.bytes = dtype === 'float32' ? 4 : 8;
    if (spec.stateSlots.length !== this.rule.state.length || spec.stateSlots.some((s) => s.length !== spec.params.length)) {
      throw new Error(`${spec.owner}: the ${spec.rule} optimizer's state does not match its fused rule (${this.rule.state.join(', ')} per parameter)`);
    }
    spec.stateSlots.forEach((slots) => slots.forEach((s, i) => {
      const a = s.getValue({ borrow: true }).shape;
      const b = spec.params[i]!.getValue({ borrow: true }).shape;
      if (s.dtype !== dtype || a.length !== b.length || a.some((d, j) => d !== b[j])) {
        throw new Error(`${spec.owner}: state ${s.label()} does not match ${spec.params[i]!.label()}`);
      }
    }));
    const sizeOf = (v: SharedVariable) => v.getValue({ borrow: true }).size;
    this.paramEnd = spec.params.reduce((n, p) => n + sizeOf(p), 0);
    this.weightIndex = this.paramEnd + spec.states.reduce((n, s) => n + sizeOf(s), 0);
    this.storage = new SharedStepStorage(spec.rule, dtype, this.paramEnd, this.weightIndex, kernelMode);
  }

  /** Puts parameters, states and optimizer state into the shared memory (their values move there). */
  hold(): void {
    if (this.holding) return;
    const place = (v: SharedVariable, buffer: SharedArrayBuffer, offset: number) => {
      const shape = v.getValue({ borrow: true }).shape;
      const size = shape.reduce((a, b) => a * b, 1);
      const View = this.dtype === 'float32' ? Float32Array : Float64Array;
      const view = new NDArray(this.dtype, shape, new View(buffer as unknown as ArrayBuffer, offset * this.bytes, size));
      holdInSharedMemory(v, view, this.spec.owner);
      this.held.push(v);
      return offset + size;
    };
    let at = 0;
    const { values, state, stateAt } = this.storage;
    for (const p of this.spec.params) at = place(p, values, at);
    for (const s of this.spec.states) at = place(s, values, at);
    this.spec.stateSlots.forEach((slots, k) => {
      let offset = stateAt[k]! / this.bytes;
      for (const s of slots) offset = place(s, state[k]!, offset);
    });
    this.holding = true;
  }

  /** Gives every held variable a private copy again (the step then runs on devices without shared memory). */
  release(): void {
    if (!this.holding) return;
    for (const v of this.held) releaseSharedMemory(v);
    this.held.length = 0;
    this.holding = false;
    this.fork = null;
  }

  /**
   * One step: the gradient on every rank's rows, the reduce-scatter and the fused update, in one
   * dispatch; with `split`, the chosen weights' gradients by the column split instead.
   */
  async run(args: readonly unknown[], split: SplitChoice | null = null): Promise<NDArray | NDArray[]> {
    this.hold();
    for (const v of this.held) commitSharedState(v); // values the user set since the last step
    const fork = await this.ensureFork(split?.stride ?? 0);
    this.calledAt = performance.timeOrigin + performance.now();
    const step = (this.spec.counter ? this.spec.counter.getValue({ borrow: true }).item() : 0) + 1;
    const hyper = this.rule.hyper.map((name) => this.spec.hyper[name]!.getValue({ borrow: true }).item());
    const result = await callWithStep(split?.gradFn ?? this.spec.gradFn, {
      planId: fork.planId,
      prepare: () => {
        hyper.forEach((h, i) => (fork.control[CONTROL.hyper + i] = h));
        fork.control[CONTROL.step] = step;
        fork.control[CONTROL.splitMask] = split?.mask ?? 0;
        fork.control[CONTROL.splitStride] = split?.stride ?? 0;
      },
    }, args);
    // Only a step that succeeded on every rank counts.
    this.lastSplit = split ? split.mask.toString(2).replace(/0/g, '').length : 0;
    this.spec.counter?.setValue(NDArray.scalar(step, this.spec.counter.dtype));
    return result;
  }

  /** Rank 0's timings of the last step (zeros before the first). */
  timings(): SharedStepTimings {
    const c = this.fork?.control;
    const reduceMs = c?.[CONTROL.timings + 4] ?? 0;
    const ranks: RankTiming[] = [];
    if (c) {
      const size = this.fork!.size;
      const at = (r: number, k: number) => c[rankTimesAt(size) + RANK_TIMES * r + k]!;
      for (let r = 0; r < size; r++) ranks.push({ startMs: at(r, 0) - this.calledAt, gradientMs: at(r, 1), waitMs: at(r, 2) });
    }
    return { gradientMs: c?.[CONTROL.timings] ?? 0, waitMs: c?.[CONTROL.timings + 1] ?? 0, reduceMs, updateMs: (c?.[CONTROL.timings + 2] ?? 0) - reduceMs,
      simd: c?.[CONTROL.timings + 3] === 1, columnSplit: this.lastSplit, ranks };
  }

  /**
   * The gradient arena and control words of this fork, sent to its workers once; again (a new plan)
   * when a column split needs more operand rows per rank than the plan holds.
   */
  private async ensureFork(splitRows: number): Promise<NonNullable<SharedTrainStep['fork']>> {
    const generation = forkGeneration(this.spec.owner);
    if (this.fork && this.fork.generation === generation && this.fork.splitRows >= splitRows) return this.fork;
    const size = numWorkers();
    // Rounded up, so that batches of a few sizes do not re-plan every time.
    const rows = Math.max(Math.ceil(splitRows / 16) * 16, this.fork?.generation === generation ? this.fork.splitRows : 0);
    const plan = this.storage.planFor(nextPlanId++, size, this.spec.splitLayers ?? [], rows);
    await sendPlan(plan, this.held, `${this.spec.owner}: sending the shared step`);
    this.fork = { generation, planId: plan.id, control: new Float64Array(plan.control), splitRows: rows, size };
    return this.fork;
  }
}
