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
import { readsOnlyShape } from '../../ops/shape-only.js';
import type { Program, ProgramStep } from '../../compile/program.js';
import type { OpName } from '../../ops/registry.js';
import { deserializeArray } from '../../compile/serialize-array.js';
import type { DeviceArray, Executable, RunOptions } from '../device.js';
import { StepError } from '../../compile/step-error.js';
import type { CudaContext } from './context.js';
import { CudaArray } from './cuda-array.js';
import type { CUfunction } from './ffi/types.js';
import type { Dim3 } from './ffi/driver.js';
import type { KernelArg } from './ffi/kernel-params.js';
import type { Runner, RunState, Value } from './lower/types.js';
import { collectSteps, markStep, profileMode, profiling, recordStep } from './profile.js';
import { GraphCache, NotCapturable, type Capture, type DeviceCheck, type Enqueued, type GraphHost } from './graph.js';
import { GUARDED_COPY } from './codegen/misc.js';
import type { MatmulPrecision } from '../registration.js';
import type { Layout, Storage } from './storage.js';
import { stepReadsBf16, stepReadsNhwc } from './lower/storage-plan.js';
import { convertArray, type Conversions } from './lower/convert.js';

/** Values of at most this many elements keep a host copy. */
export const SMALL = 64;
/** Ops whose result may be large even from small inputs, or that must not run twice: never computed on the host early. */
const NOT_ON_HOST: ReadonlySet<OpName> = new Set<OpName>([
  'alloc', 'fillLike', 'arange', 'oneHot', 'tile', 'repeat', 'broadcastLike',
  'randomUniform', 'randomNormal', 'randomBernoulli', 'randomAdvance',
]);

/** Uploads a host array into a new device array (keeping a host copy when small). */
export function uploadArray(ctx: CudaContext, value: NDArray): CudaArray {
  const arr = ctx.alloc(value.dtype, value.shape, value.size <= SMALL ? value.copy() : undefined);
  ctx.staging.upload(arr.ptr, value.data);
  return arr;
}

/** The NCHW copy of an NHWC host array of (logical) shape [n, c, h, w]. */
function fromChannelsLast(a: NDArray): NDArray {
  const [n, c, h, w] = a.shape as [number, number, number, number];
  const out = new NDArray(a.dtype, a.shape);
  const hw = h * w;
  for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out.data[(b * c + k) * hw + p] = a.data[(b * hw + p) * c + k]!;
  return out;
}

/** Copies a device array to the host (its host copy when it has one; bfloat16 storage widened to float32, exactly; NCHW order). */
export function downloadArray(ctx: CudaContext, arr: CudaArray): NDArray {
  if (arr.isReleased) throw new Error('cuda: download of a freed array');
  if (arr.hostCopy) return arr.hostCopy.copy();
  const raw = downloadElements(ctx, arr);
  return arr.layout === 'nhwc' ? fromChannelsLast(raw) : raw;
}

/** The array's elements in memory order (bfloat16 widened), as an NDArray of its shape. */
function downloadElements(ctx: CudaContext, arr: CudaArray): NDArray {
  if (arr.storage === 'bfloat16') {
    const bits = new Uint16Array(new ArrayBuffer(arr.bytes));
    ctx.staging.download(bits, arr.ptr);
    const out = new NDArray('float32', arr.shape);
    const words = new Uint32Array(out.data.buffer, out.data.byteOffset, out.size);
    for (let i = 0; i < bits.length; i++) words[i] = bits[i]! << 16;
    return out;
  }
  // An explicit ArrayBuffer lives off the V8 heap, so the driver writes to memory that never moves.
  const out = new NDArray(arr.dtype, arr.shape, new (storageOf(arr.dtype))(new ArrayBuffer(arr.bytes)));
  ctx.staging.download(out.data, arr.ptr);
  return out;
}

/**
 * Update results (from index `nOut` on) that share their block with anything else (a slice of an intermediate that
 * another update also slices, a reshape of an argument) become copies: a shared variable's value must own its buffer,
 * since a CUDA graph later writes updates back into it in place (graph.ts).
 */
export function ownUpdateResults(ctx: Pick<CudaContext, 'alloc' | 'cu' | 'stream'>, results: CudaArray[], nOut: number): CudaArray[] {
  for (let k = nOut; k < results.length; k++) {
    const r = results[k]!;
    if (r.block.refs <= 1 || r.bytes === 0) continue;
    const own = ctx.alloc(r.dtype, r.shape, r.hostCopy, r.storage, r.layout);
    ctx.cu.memcpyDtoDAsync(own.ptr, r.ptr, r.bytes, ctx.stream);
    r.release();
    results[k] = own;
  }
  return results;
}

export class CudaExecutable implements Executable, GraphHost {
  /** The CUDA graph of this program (null: plain runs only). */
  private readonly graphs: GraphCache | null;
  private readonly constants: { slot: number; host: NDArray; dev?: CudaArray }[];
  private readonly lastUse: number[];
  private readonly argSlots: number[];
  private readonly resultSlots: number[];
  /** Per step: the slots whose last use it is (not results), freed right after it. */
  private readonly dying: number[][];

  private readonly argSlotSet: ReadonlySet<number>;
  /** Per step: whether its lowering reads bfloat16 inputs itself (else they are widened for it). */
  private readonly readsBf16: readonly boolean[];
  /** Per step: whether its lowering reads channels-last inputs itself (else it gets NCHW copies). */
  private readonly readsNhwc: readonly boolean[];

  constructor(
    private readonly context: CudaContext,
    private readonly program: Program,
    private readonly runners: readonly Runner[],
    private readonly fns: ReadonlyMap<string, CUfunction>,
    private readonly products: { readonly precision: MatmulPrecision; readonly cublasLt?: boolean },
    useGraphs = true,
    /** How each slot's value is held (lower/storage-plan.ts); default: every slot in its dtype. */
    private readonly storage: readonly Storage[] = program.slots.map((x) => x.dtype),
    /** The conversion kernels between storages and layouts, when some slot is held in bfloat16 or channels-last. */
    private readonly conversions: Conversions | null = null,
    /** The layout of each slot's value (lower/storage-plan.ts planLayout); default: every slot NCHW. */
    private readonly layout: readonly Layout[] = program.slots.map(() => 'nchw'),
  ) {
    this.readsBf16 = program.steps.map(stepReadsBf16);
    this.readsNhwc = program.steps.map(stepReadsNhwc);
    this.constants = program.constants.map((c) => ({ slot: c.slot, host: deserializeArray(c.value) }));
    this.lastUse = new Array<number>(program.slots.length).fill(-1);
    // An input read only for its shape (sumToLike's `like`, a forward activation the gradient graph names)
    // does not keep its storage alive: a freed array still knows its shape.
    program.steps.forEach((s, k) => s.inputs.forEach((i, j) => { if (!readsOnlyShape(s.op, j)) this.lastUse[i] = k; }));
    this.argSlots = [...program.inputs, ...program.shareds.map((s) => s.slot)];
    this.resultSlots = [...program.outputs, ...program.updates.map((u) => u.slot)];
    const keep = new Set(this.resultSlots);
    this.dying = program.steps.map((s, k) => [...new Set([...s.inputs, s.output])].filter((i) => this.lastUse[i]! <= k && !keep.has(i)));
    this.argSlotSet = new Set(this.argSlots);
    this.graphs = useGraphs && !profiling ? new GraphCache(this, program, fns.get(GUARDED_COPY), this) : null;
  }

  get ctx(): CudaContext {
    return this.context;
  }

  /** Frees this executable's CUDA graph (plain runs need nothing freed). */
  close(): void {
    this.graphs?.close();
  }

  run(args: readonly DeviceArray[], options: RunOptions = {}): DeviceArray[] {
    const ctx = this.ctx;
    if (ctx.isClosed) throw new Error('cuda: the device is closed');
    ctx.makeCurrent();
    if (args.length !== this.argSlots.length) throw new TypeError(`cuda: expected ${this.argSlots.length} arguments, got ${args.length}`);
    // A graph writes its updates into the shared variables' buffers: only when the caller allows it.
    const replayed = options.updatesInPlace === true ? this.graphs?.run(args) : null;
    if (replayed) return replayed;
    const { results, checks } = this.enqueue(args, null);
    if (checks.length) {
      try {
        this.readChecks(checks);
      } catch (e) {
        for (const r of results) r.release();
        throw e;
      }
    }
    return ownUpdateResults(this.ctx, results, this.program.outputs.length);
  }

  /** How this executable runs: CUDA graph replays ('captured'), not yet ('warming'), or never ('plain'). */
  get graphState(): 'plain' | 'warming' | 'captured' {
    return this.graphs?.state ?? 'plain';
  }

  /** Queues the program's work on the stream, or records it when `capture` is given (graph.ts). */
  enqueue(args: readonly DeviceArray[], capture: Capture | null): Enqueued {
    const ctx = this.ctx;
    const p = this.program;
    const values: (Value | undefined)[] = new Array(p.slots.length);
    const temps: CudaArray[] = [];
    const owned = new Set<number>();
    for (const c of this.constants) values[c.slot] = c.dev ? { host: c.host, dev: c.dev } : { host: c.host };
    this.argSlots.forEach((slot, i) => { values[slot] = this.argValue(args[i], slot, i, temps); });
    const checks: DeviceCheck[] = [];
    let current = 0;
    const state = this.state(values, temps, (explain) => {
      const flag = ctx.errorFlag();
      if (checks.length === 0) ctx.cu.memsetD8(flag.ptr, 0, flag.bytes, ctx.stream);
      checks.push({ step: current, explain });
      return { flag: flag.ptr, code: checks.length };
    }, capture);
    const releaseSlot = (slot: number): void => {
      const v = values[slot];
      if (v?.dev && owned.has(slot)) v.dev.release();
      owned.delete(slot);
    };
    try {
      const steps = p.steps;
      for (let k = 0; k < steps.length; k++) {
        const step = steps[k]!;
        current = k;
        let v: Value;
        try {
          const t0 = profileMode === 'wall' ? performance.now() : 0;
          const marked = profileMode === 'gpu' ? markStep(ctx.cu, ctx.stream, step.op) : null;
          v = this.hostEarly(step, values) ?? this.runStep(k, step, state, values);
          marked?.();
          if (profileMode === 'wall') { ctx.cu.streamSynchronize(ctx.stream); recordStep(step.op, performance.now() - t0); }
        } catch (e) {
          throw new StepError(k, e instanceof Error ? e : new Error(String(e)));
        }
        values[step.output] = v;
        owned.add(step.output);
        for (const i of this.dying[k]!) releaseSlot(i);
      }
      if (profileMode === 'gpu') collectSteps(ctx.cu);
      return { results: this.resultSlots.map((slot) => state.dev(slot).view()), checks };
    } finally {
      for (const slot of [...owned]) releaseSlot(slot);
      for (const t of temps) t.release();
    }
  }

  /**
   * Runs step k's lowering with its inputs as it reads them (bfloat16 values widened for a step that does not
   * read bfloat16, channels-last values turned NCHW for one that does not read them) and returns its value held
   * as the plans say (converted when the lowering made it otherwise).
   */
  private runStep(k: number, step: ProgramStep, state: RunState, values: (Value | undefined)[]): Value {
    const conv = this.conversions;
    if (!conv) return this.runners[k]!(state, step);
    const swapped: { slot: number; was: Value; temp: CudaArray }[] = [];
    const widen = !this.readsBf16[k];
    const toNchw = !this.readsNhwc[k];
    step.inputs.forEach((slot, j) => {
      const a = values[slot]?.dev;
      if (!a || readsOnlyShape(step.op, j) || swapped.some((w) => w.slot === slot)) return;
      const storage = widen && a.storage === 'bfloat16' ? 'float32' : a.storage;
      const layout = toNchw ? 'nchw' : a.layout;
      if (storage === a.storage && layout === a.layout) return;
      const temp = convertArray(state, conv, a, storage, layout);
      swapped.push({ slot, was: values[slot]!, temp });
      values[slot] = { dev: temp };
    });
    let v: Value;
    try {
      v = this.runners[k]!(state, step);
    } finally {
      for (const w of swapped) {
        values[w.slot] = w.was;
        w.temp.release();
      }
    }
    const d = v.dev;
    if (!d) return v;
    const planned = this.storage[step.output]!;
    const storage = d.storage !== planned && (planned === 'bfloat16' || d.storage === 'bfloat16') ? planned : d.storage;
    const layout = d.shape.length === 4 ? this.layout[step.output]! : 'nchw';
    if (storage === d.storage && layout === d.layout) return v;
    const held = convertArray(state, conv, d, storage, layout);
    d.release();
    return { dev: held };
  }

  /** Waits for the run's work and throws the first failed device check (a failed run's results are never returned). */
  readChecks(checks: readonly DeviceCheck[]): void {
    const flag = downloadArray(this.ctx, this.ctx.errorFlag()).data;
    const code = flag[0]!;
    if (code === 0) return;
    const check = checks[code - 1];
    if (!check) throw new Error(`internal: device check ${code} was not registered`);
    throw new StepError(check.step, check.explain(flag[1]!, flag[2]!));
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

  /** A constant's device copy made during a capture: outside the graph's pool (it outlives the graph), written now. */
  private uploadConstantNow(host: NDArray): CudaArray {
    const ctx = this.ctx;
    const before = ctx.allocator.divert(null);
    let arr: CudaArray;
    try {
      arr = ctx.alloc(host.dtype, host.shape, host.size <= SMALL ? host.copy() : undefined);
    } finally {
      ctx.allocator.divert(before);
    }
    if (host.data.byteLength > 0) ctx.cu.memcpyHtoD(arr.ptr, host.data);
    return arr;
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

  private state(values: (Value | undefined)[], temps: CudaArray[], deviceCheck: RunState['deviceCheck'], capture: Capture | null): RunState {
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
      capturing: capture !== null,
      tf32: this.products.precision === 'high',
      bf16: this.products.precision === 'medium',
      cublasLt: this.products.cublasLt === true,
      dtype: (slot) => slots[slot]!.dtype,
      shape: (slot) => { const v = value(slot); return v.dev?.shape ?? v.host!.shape; },
      dev: (slot) => {
        const v = value(slot);
        if (v.dev) return v.dev;
        const c = constant.get(slot);
        const arr = capture ? (c ? this.uploadConstantNow(v.host!) : capture.upload(v.host!)) : uploadArray(ctx, v.host!);
        v.dev = arr;
        if (c) c.dev = arr; // kept for the executable's lifetime
        else if (slots[slot]!.kind !== 'step') temps.push(arr);
        return arr;
      },
      host: (slot) => {
        const v = value(slot);
        // A graph replays with other argument values, and cannot wait for the device mid-run.
        if (capture && this.argSlotSet.has(slot)) throw new NotCapturable(`the values of argument slot %${slot} are read on the host`);
        if (capture && !v.host && !v.dev?.hostCopy) throw new NotCapturable(`slot %${slot} would be downloaded mid-run`);
        v.host ??= v.dev!.hostCopy ?? downloadArray(ctx, v.dev!);
        return v.host;
      },
      hostKnown: (slot) => {
        if (capture && this.argSlotSet.has(slot)) return undefined;
        const v = value(slot);
        return v.host ?? v.dev?.hostCopy;
      },
      deviceCheck,
      intArg: (arg: IntArg, step: ProgramStep) => {
        if (typeof arg === 'number') return arg;
        const slot = step.inputs[arg.input];
        if (slot === undefined) throw new RangeError(`internal: integer argument refers to missing input ${arg.input}`);
        return Math.trunc(state.host(slot).data[0]!);
      },
      alloc: (dtype, shape, storage, layout) => ctx.alloc(dtype, shape, undefined, storage ?? dtype, layout ?? 'nchw'),
      float32: (slot) => {
        const arr = state.dev(slot);
        if (arr.storage !== 'bfloat16' && arr.layout === 'nchw') return { arr, temp: false };
        return { arr: state.converted(arr, 'float32', 'nchw'), temp: true };
      },
      inLayout: (slot, layout) => {
        const arr = state.dev(slot);
        if (arr.layout === layout) return { arr, temp: false };
        return { arr: state.converted(arr, arr.storage, layout), temp: true };
      },
      converted: (arr, storage, layout) => {
        if (!this.conversions) throw new Error(`internal: a conversion to ${storage} ${layout} without conversion kernels`);
        return convertArray(state, this.conversions, arr, storage, layout);
      },
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
