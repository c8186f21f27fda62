// A compiled program on the CPU device: one runner per step (from the kernel table), a memory
// plan, and a buffer pool that carries intermediate buffers from one call to the next.
//
// Contract: arguments are never modified; the arrays returned (outputs and update values) are
// allocated fresh for each call and belong to the caller (results that would share storage with an
// argument, a constant or another result are copied, see detach-results.ts). Intermediates live in the pool: a
// buffer goes back to it after the last step that reads its value, and a step's result may take
// over the buffer of an input that dies at that step (elementwise kernels). Reference performs
// may return an input or a view of it, so buffers are tracked by identity with reference counts.
import { NDArray } from '../../tensor/ndarray.js';
import { TensorType } from '../../tensor/type.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import { isOpName } from '../../ops/apply.js';
import type { Program } from '../../compile/program.js';
import { deserializeArray } from '../../compile/serialize-array.js';
import { StepError } from '../reference/reference-device.js';
import { detachResults, storageOf, type Storage } from '../reference/detach-results.js';
import type { DeviceArray, Executable } from '../device.js';
import { BufferPool } from './buffer-pool.js';
import { planMemory, type MemoryPlan } from './memory-plan.js';
import { KERNELS } from './kernels.js';
import { rewriteForCpu, type ExecStep } from './peephole.js';
import type { CompileContext, Kernel, RunContext, StepInfo, StepRunner } from './kernel-types.js';

interface Owned {
  readonly dtype: DType;
  readonly buffer: TypedArray;
  /** Live slots (and the result being stored) that reference this buffer. */
  refs: number;
}

export interface ExecutableStats {
  /** Buffers the pool created since compile (constant across calls once it has warmed up). */
  readonly poolAllocations: number;
  /** Result arrays allocated for the caller (one per output and update value per call). */
  readonly resultAllocations: number;
  readonly idleBytes: number;
  /** With profiling on: milliseconds spent per op (kernel name for rewritten steps), all calls. */
  readonly profile: Readonly<Record<string, number>>;
}

export class CpuExecutable implements Executable {
  private readonly pool = new BufferPool();
  private readonly steps: readonly (ExecStep & { readonly runner: StepRunner })[];
  private readonly plan: MemoryPlan;
  private readonly constants: readonly { readonly slot: number; readonly value: NDArray }[];
  private readonly constantStorage: readonly Storage[];
  private readonly argSlots: readonly number[];
  private readonly resultSlots: readonly number[];
  private readonly program: Program;
  private resultAllocations = 0;
  // Per-run state (runs are synchronous and not re-entrant).
  private owned = new Map<ArrayBufferLike, Owned>();
  private current: { readonly step: ExecStep; readonly dying: readonly NDArray[] } | null = null;
  private taken: Owned[] = [];
  private scratchTaken: Owned[] = [];
  private readonly rt: RunContext;

  private readonly profileMs: Record<string, number> | null;

  constructor(program: Program, cx: CompileContext, options: { profile?: boolean } = {}) {
    this.profileMs = options.profile === true ? {} : null;
    this.program = program;
    const types = program.slots.map((s) => new TensorType(s.dtype, s.broadcastable));
    this.resultSlots = [...program.outputs, ...program.updates.map((u) => u.slot)];
    this.steps = rewriteForCpu(program, this.resultSlots).map((s) => {
      if (!isOpName(s.op)) throw new TypeError(`cpu device: unknown op '${s.op}'`);
      const info: StepInfo = { op: s.op, attrs: s.attrs, inputTypes: s.inputs.map((i) => types[i]!), outType: types[s.output]! };
      const kernel = s.kernel ?? (KERNELS[s.op] as unknown as Kernel<Attrs>);
      return { ...s, runner: kernel(info, cx) };
    });
    this.plan = planMemory(this.steps, program.slots.length, this.resultSlots);
    this.constants = program.constants.map((c) => ({ slot: c.slot, value: deserializeArray(c.value) }));
    this.constantStorage = this.constants.map((c) => storageOf(c.value));
    this.argSlots = [...program.inputs, ...program.shareds.map((s) => s.slot)];
    this.rt = {
      output: (dtype, shape, inPlace) => this.output(dtype, shape, inPlace === true),
      scratch: (dtype, size) => {
        const o: Owned = { dtype, buffer: this.pool.take(dtype, size), refs: 0 };
        this.scratchTaken.push(o);
        return o.buffer;
      },
    };
  }

  stats(): ExecutableStats {
    return {
      poolAllocations: this.pool.allocations,
      resultAllocations: this.resultAllocations,
      idleBytes: this.pool.idleBytes,
      profile: { ...this.profileMs },
    };
  }

  /** Drops the idle buffers (the next call allocates again). */
  release(): void {
    this.pool.clear();
  }

  run(args: readonly DeviceArray[]): DeviceArray[] {
    const program = this.program;
    const values: (NDArray | undefined)[] = new Array<NDArray | undefined>(program.slots.length);
    for (const c of this.constants) values[c.slot] = c.value;
    this.argSlots.forEach((slot, i) => {
      const a = args[i];
      if (!(a instanceof NDArray)) throw new TypeError(`cpu device: argument ${i} is not a host array`);
      const want = program.slots[slot]!.dtype;
      values[slot] = a.dtype === want ? a : a.astype(want);
    });
    this.owned = new Map();
    try {
      this.steps.forEach((step, k) => {
        const inputs = step.inputs.map((i) => values[i]!);
        const dies = this.plan.dies[k]!;
        const dying = dies.map((slot) => values[slot]).filter((v): v is NDArray => v !== undefined && step.inputs.some((i) => values[i] === v));
        this.current = { step, dying };
        let result: NDArray;
        const t0 = this.profileMs === null ? 0 : performance.now();
        try {
          result = step.runner(inputs, this.rt);
        } catch (e) {
          throw new StepError(step.index, e instanceof Error ? e : new Error(String(e)));
        }
        if (this.profileMs !== null) {
          const name = step.kernel === undefined ? step.op : `${step.op} (fused)`;
          this.profileMs[name] = (this.profileMs[name] ?? 0) + performance.now() - t0;
        }
        values[step.output] = result;
        const entry = this.owned.get(result.data.buffer);
        if (entry !== undefined) entry.refs++;
        for (const o of this.taken) if (o.refs === 0) this.drop(o);
        this.taken = [];
        for (const o of this.scratchTaken) this.pool.give(o.dtype, o.buffer);
        this.scratchTaken = [];
        for (const slot of dies) {
          const v = values[slot];
          values[slot] = undefined;
          const e = v === undefined ? undefined : this.owned.get(v.data.buffer);
          if (e !== undefined && --e.refs === 0) this.drop(e);
        }
      });
    } catch (e) {
      // Buffers held by the failed run are left to the garbage collector.
      this.owned = new Map();
      this.taken = [];
      this.scratchTaken = [];
      throw e;
    } finally {
      this.current = null;
    }
    const results = this.resultSlots.map((slot) => values[slot]!);
    // A result that is (a view of) a pooled buffer leaves the pool with the caller.
    for (const r of results) this.owned.delete(r.data.buffer);
    this.owned = new Map();
    // One that is (a view of) an argument, a constant or another result is copied (only those).
    const foreign = new Set<Storage>(this.constantStorage);
    for (const a of args) foreign.add(storageOf(a as NDArray));
    this.resultAllocations += detachResults(results, foreign);
    return results;
  }

  private drop(o: Owned): void {
    this.owned.delete(o.buffer.buffer);
    this.pool.give(o.dtype, o.buffer);
  }

  private output(dtype: DType, shape: readonly number[], inPlace: boolean): NDArray {
    const cur = this.current;
    if (cur === null) throw new Error('internal: output requested outside a step');
    let size = 1;
    for (const d of shape) size *= d;
    if (this.plan.escaping.has(cur.step.output)) {
      this.resultAllocations++;
      return new NDArray(dtype, shape);
    }
    if (inPlace) {
      for (const v of cur.dying) {
        const e = this.owned.get(v.data.buffer);
        if (e !== undefined && e.refs === 1 && e.dtype === dtype && e.buffer.length === size && v.data === e.buffer) {
          return new NDArray(dtype, shape, e.buffer);
        }
      }
    }
    const o: Owned = { dtype, buffer: this.pool.take(dtype, size), refs: 0 };
    this.owned.set(o.buffer.buffer, o);
    this.taken.push(o);
    return new NDArray(dtype, shape, o.buffer);
  }
}
