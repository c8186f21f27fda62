// A compiled program on the CPU device: one runner per step (from the kernel table), a memory
// plan, and a buffer pool that carries intermediate buffers from one call to the next.
//
// Contract: arguments are never modified; the arrays returned (outputs and update values) are
// allocated fresh for each call and belong to the caller (results that would share storage with an
// argument, a constant or another result are copied, see detach-results.ts). Intermediates live in the pool: a
// buffer goes back to it after the last step that reads its value, and a step's result may take
// over the buffer of an input that dies at that step (elementwise kernels). Reference performs
// may return an input or a view of it, so buffers are tracked by identity with reference counts; a
// pooled buffer that ends up inside a result leaves the pool with it (and is replaced there).
// Group steps (group-kernels.ts) write several slots at once.
import { NDArray } from '../../tensor/ndarray.js';
import { TensorType } from '../../tensor/type.js';
import { storageOf as storageClassOf, type DType, type TypedArray } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import { isOpName } from '../../ops/apply.js';
import type { Program } from '../../compile/program.js';
import { deserializeArray } from '../../compile/serialize-array.js';
import { StepError } from '../../compile/step-error.js';
import { detachResults, storageOf, type Storage } from '../reference/detach-results.js';
import type { DeviceArray, Executable } from '../device.js';
import { BufferPool } from './buffer-pool.js';
import { planMemory, type MemoryPlan } from './memory-plan.js';
import { KERNELS } from './kernels.js';
import { rewriteForCpu } from './peephole.js';
import type { ExecStep } from './kernel-types.js';
import type { CompileContext, GroupRunner, Kernel, RunContext, StepInfo } from './kernel-types.js';

interface Owned {
  readonly dtype: DType;
  readonly buffer: TypedArray;
  /** Live slots (and the result being stored) that reference this buffer. */
  refs: number;
}

export interface ExecutableStats {
  /** Buffers the pool created since compile (constant across calls once it has warmed up). */
  readonly poolAllocations: number;
  /**
   * Result arrays allocated for the caller: one per output and update value per call (fresh, a copy
   * of an aliasing result, or a pooled buffer handed over with a result and replaced in the pool).
   */
  readonly resultAllocations: number;
  /** Arrays that steps without a pooled kernel (reference performs) made, all calls. */
  readonly untrackedAllocations: number;
  /** Results written into arrays given back with recycle() instead of fresh ones. */
  readonly recycledResults: number;
  readonly idleBytes: number;
  /** With profiling on: milliseconds spent per op (kernel name for rewritten steps), all calls. */
  readonly profile: Readonly<Record<string, number>>;
}

/** A step as the executable runs it: a group runner, its slots and what to call it in profiles. */
interface RunStep {
  readonly step: ExecStep;
  readonly outputs: readonly number[];
  readonly run: GroupRunner;
  readonly name: string;
  /** Reused argument list (runs are synchronous and not re-entrant). */
  readonly args: NDArray[];
  /** Inputs that die at this step: candidates for an in-place result. */
  readonly dyingInputs: readonly number[];
}

export class CpuExecutable implements Executable {
  private readonly pool = new BufferPool();
  /** Storage of earlier results the caller gave back (recycle), for later results. */
  private readonly recycled = new BufferPool();
  private recycledResults = 0;
  private readonly steps: readonly RunStep[];
  private readonly plan: MemoryPlan;
  private readonly constants: readonly { readonly slot: number; readonly value: NDArray }[];
  private readonly constantStorage: readonly Storage[];
  private readonly argSlots: readonly number[];
  private readonly resultSlots: readonly number[];
  private readonly program: Program;
  private resultAllocations = 0;
  private untrackedAllocations = 0;
  // Per-run state (runs are synchronous and not re-entrant).
  private owned = new Map<ArrayBufferLike, Owned>();
  /** Storage of every array seen in this run that is not pooled: arguments, constants, reference results. */
  private readonly known = new Set<ArrayBufferLike>();
  private values: (NDArray | undefined)[] = [];
  private current: RunStep | null = null;
  private taken: Owned[] = [];
  /** Buffers handed out in place during the current step (a group step may ask more than once). */
  private readonly handedInPlace = new Set<Owned>();
  private scratchTaken: Owned[] = [];
  private readonly rt: RunContext;

  private readonly profileMs: Record<string, number> | null;

  constructor(program: Program, cx: CompileContext, options: { profile?: boolean; groups?: boolean } = {}) {
    this.profileMs = options.profile === true ? {} : null;
    this.program = program;
    const types = program.slots.map((s) => new TensorType(s.dtype, s.broadcastable));
    this.resultSlots = [...program.outputs, ...program.updates.map((u) => u.slot)];
    const results = new Set(this.resultSlots);
    const execSteps = rewriteForCpu(program, this.resultSlots, options.groups !== false);
    this.plan = planMemory(execSteps, program.slots.length, this.resultSlots);
    this.steps = execSteps.map((s, k) => {
      const outputs = [s.output, ...(s.extraOutputs ?? [])];
      const dyingInputs = this.plan.dies[k]!.filter((slot) => s.inputs.includes(slot));
      const base = { step: s, outputs, args: new Array<NDArray>(s.inputs.length), dyingInputs };
      if (s.group !== undefined) return { ...base, run: s.group(types, cx, (slot) => results.has(slot)), name: `${s.op} (group)` };
      if (!isOpName(s.op)) throw new TypeError(`cpu device: unknown op '${s.op}'`);
      const info: StepInfo = {
        op: s.op, attrs: s.attrs, inputTypes: s.inputs.map((i) => types[i]!), outType: types[s.output]!, escapes: results.has(s.output),
      };
      const kernel = s.kernel ?? (KERNELS[s.op] as unknown as Kernel<Attrs>);
      const runner = kernel(info, cx);
      const box: NDArray[] = [];
      const run: GroupRunner = (inputs, rt) => {
        box[0] = runner(inputs, rt);
        return box;
      };
      return { ...base, run, name: s.kernel === undefined ? s.op : `${s.op} (fused)` };
    });
    this.constants = program.constants.map((c) => ({ slot: c.slot, value: deserializeArray(c.value) }));
    this.constantStorage = this.constants.map((c) => storageOf(c.value));
    this.argSlots = [...program.inputs, ...program.shareds.map((s) => s.slot)];
    this.rt = {
      output: (dtype, shape, inPlace, which) => this.output(dtype, shape, inPlace === true, which ?? 0),
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
      untrackedAllocations: this.untrackedAllocations,
      recycledResults: this.recycledResults,
      idleBytes: this.pool.idleBytes + this.recycled.idleBytes,
      profile: { ...this.profileMs },
    };
  }

  /** Drops the idle buffers (the next call allocates again). */
  release(): void {
    this.pool.clear();
    this.recycled.clear();
  }

  /**
   * Takes back arrays that this executable returned and that nothing references any more (an
   * update's previous value once its shared variable holds the new one): later results of the same
   * dtype and size are computed into them instead of into fresh arrays, which spares the page
   * faults of fresh memory (about 0.4 ms per MiB). The caller must not use them afterwards. Views
   * (arrays not spanning their whole buffer) are ignored; at most as many arrays per dtype and size
   * are kept as the program has results.
   */
  recycle(arrays: readonly DeviceArray[]): void {
    arrays.forEach((a, i) => {
      if (!(a instanceof NDArray)) throw new TypeError(`cpu device: recycle: array ${i} is not a host array`);
      const d = a.data;
      if (d.length === 0 || d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength) return;
      if (this.recycled.freeCount(a.dtype, d.length) < this.resultSlots.length) this.recycled.give(a.dtype, d);
    });
  }

  run(args: readonly DeviceArray[]): DeviceArray[] {
    const program = this.program;
    const values: (NDArray | undefined)[] = new Array<NDArray | undefined>(program.slots.length);
    this.values = values;
    const known = this.known;
    known.clear();
    for (const c of this.constants) values[c.slot] = c.value;
    for (const st of this.constantStorage) known.add(st);
    this.argSlots.forEach((slot, i) => {
      const a = args[i];
      if (!(a instanceof NDArray)) throw new TypeError(`cpu device: argument ${i} is not a host array`);
      const want = program.slots[slot]!.dtype;
      values[slot] = a.dtype === want ? a : a.astype(want);
      known.add(values[slot].data.buffer);
    });
    this.owned = new Map();
    try {
      for (let k = 0; k < this.steps.length; k++) this.runStep(k, values);
    } catch (e) {
      // Buffers held by the failed run are left to the garbage collector.
      this.owned = new Map();
      this.taken = [];
      this.scratchTaken = [];
      throw e;
    } finally {
      this.current = null;
      this.values = [];
    }
    const results = this.resultSlots.map((slot) => values[slot]!);
    // A result that is (a view of) a pooled buffer leaves the pool with the caller; the pool gets a
    // new buffer in its place so that the next call finds it warm.
    for (const r of results) {
      const o = this.owned.get(r.data.buffer);
      if (o === undefined) continue;
      this.owned.delete(r.data.buffer);
      this.pool.give(o.dtype, new (storageClassOf(o.dtype))(o.buffer.length));
      this.resultAllocations++;
    }
    this.owned = new Map();
    // One that is (a view of) an argument, a constant or another result is copied (only those).
    const foreign = new Set<Storage>(this.constantStorage);
    for (const a of args) foreign.add(storageOf(a as NDArray));
    this.resultAllocations += detachResults(results, foreign);
    return results;
  }

  private runStep(k: number, values: (NDArray | undefined)[]): void {
    const rs = this.steps[k]!;
    const { step, args, outputs } = rs;
    for (let i = 0; i < args.length; i++) args[i] = values[step.inputs[i]!]!;
    this.current = rs;
    this.handedInPlace.clear();
    let produced: readonly (NDArray | undefined)[];
    const t0 = this.profileMs === null ? 0 : performance.now();
    try {
      produced = rs.run(args, this.rt);
    } catch (e) {
      // A group step's member reports its own program step.
      if (e instanceof StepError) throw e;
      throw new StepError(step.index, e instanceof Error ? e : new Error(String(e)));
    }
    if (this.profileMs !== null) this.profileMs[rs.name] = (this.profileMs[rs.name] ?? 0) + performance.now() - t0;
    for (let j = 0; j < outputs.length; j++) {
      const result = produced[j];
      values[outputs[j]!] = result;
      if (result === undefined) continue;
      const storage = result.data.buffer;
      const entry = this.owned.get(storage);
      if (entry !== undefined) entry.refs++;
      else if (!this.known.has(storage)) {
        this.known.add(storage);
        this.untrackedAllocations++;
      }
    }
    for (const o of this.taken) if (o.refs === 0) this.drop(o);
    this.taken = [];
    for (const o of this.scratchTaken) this.pool.give(o.dtype, o.buffer);
    this.scratchTaken = [];
    for (const slot of this.plan.dies[k]!) {
      const v = values[slot];
      values[slot] = undefined;
      const e = v === undefined ? undefined : this.owned.get(v.data.buffer);
      if (e !== undefined && --e.refs === 0) this.drop(e);
    }
  }

  private drop(o: Owned): void {
    this.owned.delete(o.buffer.buffer);
    this.pool.give(o.dtype, o.buffer);
  }

  private output(dtype: DType, shape: readonly number[], inPlace: boolean, which: number): NDArray {
    const cur = this.current;
    if (cur === null) throw new Error('internal: output requested outside a step');
    const slot = cur.outputs[which];
    if (slot === undefined) throw new Error(`internal: output ${which} of a step with ${cur.outputs.length}`);
    let size = 1;
    for (const d of shape) size *= d;
    if (this.plan.escaping.has(slot)) {
      const again = this.recycled.takeFree(dtype, size);
      // Never one that is an argument of this call (a caller that recycled a value it still passes).
      if (again !== undefined && !this.known.has(again.buffer)) {
        this.recycledResults++;
        this.known.add(again.buffer);
        return new NDArray(dtype, shape, again);
      }
      this.resultAllocations++;
      const fresh = new NDArray(dtype, shape);
      this.known.add(fresh.data.buffer);
      return fresh;
    }
    if (inPlace) {
      for (const s of cur.dyingInputs) {
        const v = this.values[s];
        const e = v === undefined ? undefined : this.owned.get(v.data.buffer);
        if (v === undefined || e === undefined || this.handedInPlace.has(e)) continue;
        if (e.refs === 1 && e.dtype === dtype && e.buffer.length === size && v.data === e.buffer) {
          this.handedInPlace.add(e);
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
