// Runs a lowered program: every step enqueues its kernels or GEMMs on the context's stream (no
// waiting), intermediates are freed at their last use (the allocator reuses their blocks, safely,
// since everything is ordered on one stream), and results stay on the device until downloaded.
// Small values whose inputs are known on the host (shape arithmetic, integer arguments) are
// computed there by the op's reference perform, so they never cost a round trip.
import { NDArray } from '../../tensor/ndarray.js';
import { storageOf, type DType } from '../../tensor/dtype.js';
import { TensorType } from '../../tensor/type.js';
import type { IntArg } from '../../ops/op.js';
import { getOpDef } from '../../ops/apply.js';
import type { Program, ProgramStep } from '../../compile/program.js';
import { deserializeArray } from '../../compile/serialize-array.js';
import type { DeviceArray, Executable } from '../device.js';
import { StepError } from '../reference/reference-device.js';
import type { CudaContext } from './context.js';
import { CudaArray } from './cuda-array.js';
import type { CUfunction } from './ffi/types.js';
import type { Dim3 } from './ffi/driver.js';
import type { KernelArg } from './ffi/kernel-params.js';
import type { Runner, RunState, Value } from './lower/types.js';
import { profiling, recordStep } from './profile.js';
import type { MatmulPrecision } from '../registration.js';

/** Values of at most this many elements keep a host copy. */
export const SMALL = 64;
/** Ops whose result may be large even from small inputs, or that must not run twice: never computed on the host early. */
const NOT_ON_HOST = new Set([
  'alloc', 'fillLike', 'arange', 'oneHot', 'tile', 'repeat', 'broadcastLike',
  'randomUniform', 'randomNormal', 'randomBernoulli', 'randomAdvance',
]);

/** Uploads a host array into a new device array (keeping a host copy when small). */
export function uploadArray(ctx: CudaContext, value: NDArray): CudaArray {
  const arr = ctx.alloc(value.dtype, value.shape, value.size <= SMALL ? value.copy() : undefined);
  ctx.staging.upload(arr.ptr, value.data);
  return arr;
}

/** Copies a device array to the host (its host copy when it has one). */
export function downloadArray(ctx: CudaContext, arr: CudaArray): NDArray {
  if (arr.isReleased) throw new Error('cuda: download of a freed array');
  if (arr.hostCopy) return arr.hostCopy.copy();
  // An explicit ArrayBuffer lives off the V8 heap, so the driver writes to memory that never moves.
  const out = new NDArray(arr.dtype, arr.shape, new (storageOf(arr.dtype))(new ArrayBuffer(arr.bytes)));
  ctx.staging.download(out.data, arr.ptr);
  return out;
}

export class CudaExecutable implements Executable {
  private readonly constants: { slot: number; host: NDArray; dev?: CudaArray }[];
  private readonly lastUse: number[];
  private readonly argSlots: number[];
  private readonly resultSlots: number[];
  /** Per step: the slots whose last use it is (not results), freed right after it. */
  private readonly dying: number[][];

  constructor(
    private readonly ctx: CudaContext,
    private readonly program: Program,
    private readonly runners: readonly Runner[],
    private readonly fns: ReadonlyMap<string, CUfunction>,
    private readonly precision: MatmulPrecision,
  ) {
    this.constants = program.constants.map((c) => ({ slot: c.slot, host: deserializeArray(c.value) }));
    this.lastUse = new Array<number>(program.slots.length).fill(-1);
    program.steps.forEach((s, k) => { for (const i of s.inputs) this.lastUse[i] = k; });
    this.argSlots = [...program.inputs, ...program.shareds.map((s) => s.slot)];
    this.resultSlots = [...program.outputs, ...program.updates.map((u) => u.slot)];
    const keep = new Set(this.resultSlots);
    this.dying = program.steps.map((s, k) => [...new Set([...s.inputs, s.output])].filter((i) => this.lastUse[i]! <= k && !keep.has(i)));
  }

  run(args: readonly DeviceArray[]): DeviceArray[] {
    const ctx = this.ctx;
    if (ctx.isClosed) throw new Error('cuda: the device is closed');
    ctx.makeCurrent();
    const p = this.program;
    if (args.length !== this.argSlots.length) throw new TypeError(`cuda: expected ${this.argSlots.length} arguments, got ${args.length}`);
    const values: (Value | undefined)[] = new Array(p.slots.length);
    const temps: CudaArray[] = [];
    const owned = new Set<number>();
    for (const c of this.constants) values[c.slot] = c.dev ? { host: c.host, dev: c.dev } : { host: c.host };
    this.argSlots.forEach((slot, i) => { values[slot] = this.argValue(args[i], slot, i, temps); });
    const state = this.state(values, temps);
    const releaseSlot = (slot: number): void => {
      const v = values[slot];
      if (v?.dev && owned.has(slot)) v.dev.release();
      owned.delete(slot);
    };
    try {
      const steps = p.steps;
      for (let k = 0; k < steps.length; k++) {
        const step = steps[k]!;
        let v: Value;
        try {
          const t0 = profiling ? performance.now() : 0;
          v = this.hostEarly(step, values) ?? this.runners[k]!(state, step);
          if (profiling) { ctx.cu.streamSynchronize(ctx.stream); recordStep(step.op, performance.now() - t0); }
        } catch (e) {
          throw new StepError(k, e instanceof Error ? e : new Error(String(e)));
        }
        values[step.output] = v;
        owned.add(step.output);
        for (const i of this.dying[k]!) releaseSlot(i);
      }
      return this.resultSlots.map((slot) => state.dev(slot).view());
    } finally {
      for (const slot of [...owned]) releaseSlot(slot);
      for (const t of temps) t.release();
    }
  }

  private argValue(a: DeviceArray | undefined, slot: number, i: number, temps: CudaArray[]): Value {
    const want: DType = this.program.slots[slot]!.dtype;
    let arr: CudaArray;
    if (a instanceof CudaArray) {
      if (a.owner !== this.ctx) throw new TypeError(`cuda: argument ${i} lives on another device or context`);
      if (a.isReleased) throw new TypeError(`cuda: argument ${i} was freed`);
      arr = a;
    } else if (a instanceof NDArray) {
      arr = uploadArray(this.ctx, a);
      temps.push(arr);
      // The caller's host values stay readable (e.g. indices checked on the host) without a download.
      if (arr.dtype === want) return { dev: arr, host: a };
    } else {
      throw new TypeError(`cuda: argument ${i} is not a CUDA array`);
    }
    if (arr.dtype === want) return { dev: arr };
    const cast = uploadArray(this.ctx, downloadArray(this.ctx, arr).astype(want));
    temps.push(cast);
    return { dev: cast };
  }

  /** Computes a pure step on the host when every input is small and came from the host. */
  private hostEarly(step: ProgramStep, values: readonly (Value | undefined)[]): Value | null {
    if (NOT_ON_HOST.has(step.op) || step.inputs.length === 0 && step.op !== 'scalarFromNumber') return null;
    const inputs: NDArray[] = [];
    for (const i of step.inputs) {
      // Only values that came from the host (constants, shape arithmetic, host fallbacks): arrays
      // the caller put on the device are computed there, whatever their size.
      const v = values[i];
      const h = v?.host;
      if (!h || h.size > SMALL || (v.dev && this.program.slots[i]!.kind !== 'constant')) return null;
      inputs.push(h);
    }
    const out = this.program.slots[step.output]!;
    return { host: getOpDef(step.op).perform(inputs, step.attrs, new TensorType(out.dtype, out.broadcastable)) };
  }

  private state(values: (Value | undefined)[], temps: CudaArray[]): RunState {
    const ctx = this.ctx;
    const slots = this.program.slots;
    const value = (slot: number): Value => {
      const v = values[slot];
      if (!v) throw new Error(`internal: slot %${slot} has no value`);
      return v;
    };
    const constant = new Map(this.constants.map((c) => [c.slot, c]));
    const state: RunState = {
      ctx,
      tf32: this.precision === 'high',
      bf16: this.precision === 'medium',
      dtype: (slot) => slots[slot]!.dtype,
      shape: (slot) => { const v = value(slot); return v.dev?.shape ?? v.host!.shape; },
      dev: (slot) => {
        const v = value(slot);
        if (v.dev) return v.dev;
        const arr = uploadArray(ctx, v.host!);
        v.dev = arr;
        const c = constant.get(slot);
        if (c) c.dev = arr; // kept for the executable's lifetime
        else if (slots[slot]!.kind !== 'step') temps.push(arr);
        return arr;
      },
      host: (slot) => {
        const v = value(slot);
        v.host ??= v.dev!.hostCopy ?? downloadArray(ctx, v.dev!);
        return v.host;
      },
      intArg: (arg: IntArg, step: ProgramStep) => {
        if (typeof arg === 'number') return arg;
        const slot = step.inputs[arg.input];
        if (slot === undefined) throw new RangeError(`internal: integer argument refers to missing input ${arg.input}`);
        return Math.trunc(state.host(slot).data[0]!);
      },
      alloc: (dtype, shape) => ctx.alloc(dtype, shape),
      temp: (dtype, shape) => ctx.alloc(dtype, shape),
      launch: (kernel: string, grid: Dim3, block: Dim3, args: readonly KernelArg[]) => {
        const fn = this.fns.get(kernel);
        if (!fn) throw new Error(`internal: kernel ${kernel} was not compiled`);
        ctx.launch(fn, grid, block, args);
      },
    };
    return state;
  }
}
