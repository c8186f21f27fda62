// CUDA graphs for a compiled program: the second call with the same shapes records the program's
// kernels and cuBLAS calls into a graph (cuStreamBeginCapture), later calls replay it with one
// cuGraphLaunch, so a step's host cost no longer grows with its number of kernels.
//
// What makes a replay correct:
// - Addresses are baked into the graph. Its intermediates come from a private pool that no other
//   allocation can reuse; inputs are copied into static buffers before each launch; shared
//   variables are read and written where they are (their buffers are part of the key, retained
//   while the graph lives), and the update results are copied back into those buffers at the end
//   of the graph by a kernel that does nothing when a device check failed (nothing changes).
// - Values known on the host at capture (shape arithmetic, constants) are uploaded at once into
//   memory no graph node writes; reading an argument's values on the host cannot be recorded, so
//   a program that needs it (dynamic shapes, take's host-checked indices) is never captured.
// - Random draws, profiling and programs whose updates copy an argument are left to plain runs.
import type { NDArray } from '../../tensor/ndarray.js';
import type { Program } from '../../compile/program.js';
import type { DeviceArray } from '../device.js';
import type { CachingAllocator } from './allocator.js';
import type { CudaContext } from './context.js';
import { CudaArray } from './cuda-array.js';
import type { CUfunction, CUgraph, CUgraphExec } from './ffi/types.js';
import { i64, ptr } from './lower/types.js';
import { config } from '../config.js';

/** Thrown inside a capture by what cannot be recorded (a host read of device values); the program then runs without graphs. */
export class NotCapturable extends Error {
  constructor(what: string) {
    super(`not capturable in a CUDA graph: ${what}`);
    this.name = 'NotCapturable';
  }
}

/** A check made by kernels on the device during a run, and the error it stands for. */
export interface DeviceCheck {
  readonly step: number;
  readonly explain: (value: number, position: number) => Error;
}

/** What a run hands back: the result arrays (views the caller owns) and the device checks it made. */
export interface Enqueued {
  readonly results: CudaArray[];
  readonly checks: readonly DeviceCheck[];
}

/** What a run needs to know while it is being captured. */
export interface Capture {
  /** A host value as a device array, written now (not recorded) into memory no graph node writes. */
  upload(value: NDArray): CudaArray;
}

/** The executable as the graph cache sees it. */
export interface GraphHost {
  readonly ctx: CudaContext;
  /** Queues (or, with a capture, records) the program's work on the stream. */
  enqueue(args: readonly DeviceArray[], capture: Capture | null): Enqueued;
  /** Waits for the stream and throws the first failed device check. */
  readChecks(checks: readonly DeviceCheck[]): void;
}

/** Ops whose runs must not repeat the captured values (fresh random numbers every call). */
const NEVER_CAPTURED = new Set(['randomUniform', 'randomNormal', 'randomBernoulli', 'randomAdvance']);

interface Captured {
  readonly shapeKey: string;
  readonly ptrKey: string;
  /** The captured call's argument shapes and shared buffers, compared on every call without building the keys. */
  readonly argShapes: readonly (readonly number[])[];
  readonly sharedPtrs: readonly bigint[];
  readonly graph: CUgraph;
  readonly exec: CUgraphExec;
  readonly pools: readonly CachingAllocator[];
  /** One static buffer per input argument. */
  readonly statics: readonly CudaArray[];
  /** The output results, in the private pool. */
  readonly outputs: readonly CudaArray[];
  /** References that keep the shared variables' buffers and the capture's uploads alive. */
  readonly held: readonly CudaArray[];
  readonly checks: readonly DeviceCheck[];
}

/** SYNK_CUDA_GRAPHS_LOG=1: one line on stderr per capture and per program left to plain runs, with the reason. */
const log = config().cudaGraphsLog ? (m: string) => process.stderr.write(`cuda graphs: ${m}\n`) : null;

/** Where a cache keeps its graph: what freeing it needs, and nothing that leads back to the executable. */
interface GraphHolder {
  readonly ctx: CudaContext;
  current: Captured | null;
}

/** Destroys the holder's graph and gives its memory back (nothing when the context is gone, which freed it all). */
function freeGraph(holder: GraphHolder): void {
  const c = holder.current;
  holder.current = null;
  if (!c || holder.ctx.isClosed) return;
  holder.ctx.makeCurrent();
  holder.ctx.cu.graphExecDestroy(c.exec);
  holder.ctx.cu.graphDestroy(c.graph);
  for (const a of [...c.statics, ...c.outputs, ...c.held]) a.release();
  for (const p of c.pools) p.close();
}

/** A compiled function that is collected frees its graph and the graph's memory pool. */
const graphFinalizer = new FinalizationRegistry<GraphHolder>((holder) => {
  try {
    freeGraph(holder);
  } catch {
    // the device went away meanwhile: its memory went with it
  }
});

/** Whether graphs are allowed: SYNK_CUDA_GRAPHS=0 turns them off for every CUDA device. */
export const cudaGraphsEnabled = (): boolean => config().cudaGraphs;

/** The graph of one executable (the latest shapes and shared buffers), captured on the second call with the same shapes. */
export class GraphCache {
  /** The captured graph, in a holder of its own: the finalizer below frees it without reaching this cache. */
  private readonly holder: GraphHolder;
  private readonly warm = new Set<string>();
  private misses = 0;
  private disabled = false;
  private readonly inputArgs: number[];
  /** The dtype each argument must have (one of another dtype would be cast, which downloads). */
  private readonly argDtypes: readonly string[];
  private readonly sharedArgs: number[];
  /** Per update: the argument (a shared variable's buffer) its result is written back into. */
  private readonly updateTargets: number[];

  /** `owner`: the object whose collection frees the graph (the executable). */
  constructor(private readonly host: GraphHost, private readonly program: Program, private readonly guardedCopy: CUfunction | undefined, owner: object) {
    this.holder = { ctx: host.ctx, current: null };
    graphFinalizer.register(owner, this.holder);
    this.inputArgs = program.inputs.map((_, i) => i);
    this.argDtypes = [...program.inputs, ...program.shareds.map((s) => s.slot)].map((slot) => program.slots[slot]!.dtype);
    this.sharedArgs = program.shareds.map((_, j) => program.inputs.length + j);
    const argOfShared = new Map(program.shareds.map((s, j) => [s.sharedId, program.inputs.length + j]));
    const argSlots = new Set([...program.inputs, ...program.shareds.map((s) => s.slot)]);
    this.updateTargets = program.updates.map((u) => argOfShared.get(u.sharedId) ?? -1);
    const stepOutputs = new Set(program.steps.map((s) => s.output));
    // An update that is an argument itself (a <- b) would read a buffer another write-back changed.
    const writesBackCleanly = program.updates.every((u, k) => this.updateTargets[k]! >= 0 && stepOutputs.has(u.slot) && !argSlots.has(u.slot));
    this.disabled = program.steps.length === 0 || program.steps.some((s) => NEVER_CAPTURED.has(s.op)) || !writesBackCleanly
      || (program.updates.length > 0 && !guardedCopy);
  }

  /** How this executable runs now, for tests and benchmarks. */
  get state(): 'plain' | 'warming' | 'captured' {
    return this.disabled ? 'plain' : this.holder.current ? 'captured' : 'warming';
  }

  /** The results of a replay (or of a fresh capture), or null: run the program plainly. */
  run(args: readonly DeviceArray[]): DeviceArray[] | null {
    if (this.disabled) return null;
    const c = this.holder.current;
    // The steady state (same shapes, same shared buffers) is checked without making the key strings.
    if (c && this.matches(c, args)) {
      this.misses = 0;
      return this.replay(c, args);
    }
    const keys = this.keysOf(args);
    if (!keys) {
      log?.(`${this.program.steps.length}-step program: arguments of other dtypes or devices; this call runs plainly`);
      return null;
    }
    if (!this.warm.has(keys.shapeKey)) {
      // The first call of these shapes runs plainly (cuBLAS and constants get set up outside a capture).
      if (this.warm.size >= 16) this.warm.clear();
      this.warm.add(keys.shapeKey);
      return null;
    }
    // Shared buffers that change every call (values set from outside each step) make graphs cost more than they save.
    if (++this.misses > 3) {
      log?.(`${this.program.steps.length}-step program: shared buffers changed ${this.misses} times in a row; plain runs from now`);
      this.close();
      this.disabled = true;
      return null;
    }
    const captured = this.capture(args, keys.shapeKey, keys.ptrKey);
    return captured ? this.replay(captured, args) : null;
  }

  /** Frees the graph and its memory. */
  close(): void {
    freeGraph(this.holder);
  }

  /** Whether `args` are of the captured call's dtypes and shapes, with the same shared buffers (what equal keys mean). */
  private matches(c: Captured, args: readonly DeviceArray[]): boolean {
    if (args.length !== c.argShapes.length) return false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as (CudaArray | NDArray) | undefined;
      const want = c.argShapes[i]!;
      if (!a || a.dtype !== this.argDtypes[i] || a.shape.length !== want.length) return false;
      for (let k = 0; k < want.length; k++) if (a.shape[k] !== want[k]) return false;
    }
    for (let j = 0; j < this.sharedArgs.length; j++) {
      const a = args[this.sharedArgs[j]!];
      if (!(a instanceof CudaArray) || a.owner !== this.host.ctx || a.ptr !== c.sharedPtrs[j]) return false;
    }
    return true;
  }

  private keysOf(args: readonly DeviceArray[]): { shapeKey: string; ptrKey: string } | null {
    const parts: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as (CudaArray | NDArray) | undefined;
      if (!a || a.dtype !== this.argDtypes[i]) return null; // casts download: not capturable
      parts.push(`${a.dtype}[${a.shape.join(',')}]`);
    }
    const ptrs: string[] = [];
    for (const i of this.sharedArgs) {
      const a = args[i];
      if (!(a instanceof CudaArray) || a.owner !== this.host.ctx) return null;
      ptrs.push(a.ptr.toString(16));
    }
    return { shapeKey: parts.join(' '), ptrKey: ptrs.join(',') };
  }

  private capture(args: readonly DeviceArray[], shapeKey: string, ptrKey: string): Captured | null {
    const ctx = this.host.ctx;
    const cu = ctx.cu;
    // A write-back into a block that another shared variable also views (a reshape or slice of it kept as a
    // value) would change that variable too: such arguments run plainly, where nothing is written in place.
    const blocks = this.sharedArgs.map((i) => (args[i] as CudaArray).block);
    if (this.updateTargets.some((t) => blocks.filter((b) => b === (args[t] as CudaArray).block).length > 1)) {
      log?.(`${this.program.steps.length}-step program: a shared variable's buffer is part of another's; this call runs plainly`);
      return null;
    }
    const pool = ctx.allocator.makePool();
    const uploads = ctx.allocator.makePool();
    const statics: CudaArray[] = [];
    const held: CudaArray[] = [];
    const capArgs = [...args];
    for (const i of this.inputArgs) {
      const a = args[i] as CudaArray | NDArray;
      const bytes = a instanceof CudaArray ? a.bytes : a.data.byteLength;
      const buf = new CudaArray(a.dtype, a.shape, pool.allocate(bytes), ctx);
      statics.push(buf);
      capArgs[i] = buf;
    }
    for (const i of this.sharedArgs) held.push((args[i] as CudaArray).view());
    const capture: Capture = {
      upload: (value) => {
        const arr = new CudaArray(value.dtype, value.shape, uploads.allocate(value.data.byteLength), ctx, value.size <= 64 ? value.copy() : undefined);
        if (value.data.byteLength > 0) cu.memcpyHtoD(arr.ptr, value.data);
        held.push(arr.view());
        return arr;
      },
    };
    const give = () => {
      for (const a of [...statics, ...held]) a.release();
      pool.close();
      uploads.close();
    };
    const before = ctx.allocator.divert(pool);
    let enqueued: Enqueued | null = null;
    let graph: CUgraph;
    cu.streamBeginCapture(ctx.stream);
    try {
      enqueued = this.host.enqueue(capArgs, capture);
      // A result in a shared variable's own buffer (an output that is a parameter, or a reshape of
      // one) would read the written-back value on replay: such programs run plainly.
      if (enqueued.results.some((r) => r.block.pool !== pool && r.block.pool !== uploads)) throw new NotCapturable('a result aliases an argument');
      const flag = enqueued.checks.length ? ctx.errorFlag().ptr : 0n;
      const nOut = this.program.outputs.length;
      this.updateTargets.forEach((argIndex, k) => {
        const dst = args[argIndex] as CudaArray;
        const src = enqueued!.results[nOut + k]!;
        const words = Math.ceil(dst.bytes / 4);
        if (words > 0) ctx.launch(this.guardedCopy!, ctx.gridFor(words), 256, [ptr(dst), ptr(src), i64(words), ptr(flag)]);
      });
      graph = cu.streamEndCapture(ctx.stream);
    } catch (e) {
      try {
        cu.graphDestroy(cu.streamEndCapture(ctx.stream));
      } catch {
        // the capture was invalidated: nothing to destroy
      }
      for (const r of enqueued?.results ?? []) r.release();
      give();
      const cause = e instanceof Error && 'original' in e ? (e as { original: unknown }).original : e;
      // A genuine error (bad shapes) is raised again by the plain run; what cannot be captured never will be.
      if (cause instanceof NotCapturable) this.disabled = true;
      log?.(`${this.program.steps.length}-step program not captured: ${cause instanceof Error ? cause.message : String(cause)}`);
      return null;
    } finally {
      ctx.allocator.divert(before);
    }
    let exec: CUgraphExec;
    try {
      exec = cu.graphInstantiate(graph);
    } catch {
      cu.graphDestroy(graph);
      for (const r of enqueued.results) r.release();
      give();
      this.disabled = true;
      return null;
    }
    const nOut = this.program.outputs.length;
    for (const r of enqueued.results.slice(nOut)) r.release(); // written back into the shared buffers
    this.close();
    // The capture took over the cached blocks of its sizes; what is left cached is from other shapes or
    // programs, and a program big enough to matter would otherwise keep both (ResNet-50 at three batch sizes).
    ctx.allocator.trim();
    log?.(`captured a ${this.program.steps.length}-step program for ${shapeKey}`);
    this.holder.current = {
      shapeKey, ptrKey, graph, exec, pools: [pool, uploads], statics, outputs: enqueued.results.slice(0, nOut), held, checks: enqueued.checks,
      argShapes: args.map((a) => [...(a as CudaArray | NDArray).shape]), sharedPtrs: this.sharedArgs.map((i) => (args[i] as CudaArray).ptr),
    };
    return this.holder.current;
  }

  private replay(c: Captured, args: readonly DeviceArray[]): DeviceArray[] {
    const ctx = this.host.ctx;
    this.inputArgs.forEach((i, j) => {
      const a = args[i] as CudaArray | NDArray;
      const dst = c.statics[j]!;
      if (a instanceof CudaArray) {
        if (a.bytes > 0) ctx.cu.memcpyDtoDAsync(dst.ptr, a.ptr, a.bytes, ctx.stream);
      } else if (a.data.byteLength > 0) {
        ctx.staging.upload(dst.ptr, a.data);
      }
    });
    ctx.cu.graphLaunch(c.exec, ctx.stream);
    if (c.checks.length) this.host.readChecks(c.checks);
    // The shared buffers now hold the new values: views without the host copies of the old ones.
    const updated = this.updateTargets.map((i) => (args[i] as CudaArray).rewritten());
    return [...c.outputs.map((o) => o.view()), ...updated];
  }
}
