// The Communicator over NCCL: one rank per GPU worker, collectives on the device's stream.
//
// Host TypedArrays are staged through device scratch blocks (upload, NCCL, download); CudaArrays
// (shared variables living on the GPU) are combined where they are (the *Device methods), without
// a trip through the host. NCCL calls are asynchronous: every collective ends in a bounded wait on
// the stream that also polls the communicator's asynchronous error and an optional abort probe
// (e.g. the pool's shared-memory abort word, set when a peer dies); on a timeout, an error or an
// abort the communicator is aborted (ncclCommAbort) and every later call throws CommAbortedError.
//
// NCCL has no gather or scatter and needs equal lengths everywhere: gather/allGather first
// all-gather the lengths (with the dtype, so ranks that disagree throw CommMismatchError), pad to
// the longest and cut the padding off again; scatter broadcasts the root's concatenation.
import { type DType, type TypedArray, bytesPerElement, storageOf } from '../../tensor/dtype.js';
import type { CudaContext } from './context.js';
import type { CudaArray } from './cuda-array.js';
import type { Block } from './allocator.js';
import type { NcclComm } from './ffi/types.js';
import type { Nccl, NcclRedOp } from './ffi/nccl.js';
import { CODES, findNccl, ncclOp, ncclType, pollUntilDone } from './nccl-support.js';

export { findNccl, ncclOp, ncclType } from './nccl-support.js';
import {
  type CollectiveOptions, type Communicator, type ReduceOptions, type RootOptions,
  CommAbortedError, CommMismatchError, CommTimeoutError, DEFAULT_COMM_TIMEOUT_MS,
  assertCommBuffer, assertRoot, assertTimeout, bufferDType,
} from '../communicator.js';
import { type ReduceOp, assertReduceOp, finishAvg } from '../reduce-ops.js';


export interface NcclCommunicatorOptions {
  /** Default bound on every collective (60 s). */
  readonly timeoutMs?: number;
  /** Returns a reason when the group was aborted elsewhere (a peer died); polled while waiting. */
  readonly abortProbe?: () => string | null;
}

export class NcclCommunicator implements Communicator {
  private comm: NcclComm | null;
  private abortedBecause: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timeoutMs: number;
  private readonly abortProbe: (() => string | null) | undefined;
  /** ncclAvg (NCCL 2.10+) on device arrays; older libraries sum, then scale through the host. */
  private readonly nativeAvg: boolean;

  /**
   * Joins communicator `id` as `rank` of `size` on `ctx`'s GPU. Blocks until every rank has called
   * it (the caller makes sure they all do; see src/parallel/gpu-comm.ts).
   */
  static join(ctx: CudaContext, id: Uint8Array, rank: number, size: number, options: NcclCommunicatorOptions = {}): NcclCommunicator {
    const nccl = findNccl();
    ctx.makeCurrent();
    let comm: NcclComm;
    try {
      comm = nccl.commInitRank(size, id, rank);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new CommAbortedError(`NCCL rank ${rank} of ${size} on cuda:${ctx.index}: ncclCommInitRank failed: ${why}`, { cause: e });
    }
    return new NcclCommunicator(nccl, comm, ctx, rank, size, options);
  }

  constructor(
    readonly nccl: Nccl,
    comm: NcclComm,
    readonly ctx: CudaContext,
    readonly rank: number,
    readonly size: number,
    options: NcclCommunicatorOptions = {},
  ) {
    this.comm = comm;
    this.timeoutMs = options.timeoutMs === undefined ? DEFAULT_COMM_TIMEOUT_MS : assertTimeout(options.timeoutMs, 'NcclCommunicator timeoutMs');
    this.abortProbe = options.abortProbe;
    let version = 0;
    try { version = nccl.version(); } catch { version = 0; }
    this.nativeAvg = version >= 21000;
  }

  get isOpen(): boolean {
    return this.comm !== null;
  }

  // ---- host buffers --------------------------------------------------------------------------

  broadcast<T extends TypedArray>(buf: T, options: RootOptions = {}): Promise<T> {
    assertCommBuffer(buf, 'broadcast');
    const root = assertRoot(options.root ?? 0, this.size, 'broadcast root');
    const type = ncclType(bufferDType(buf, undefined, 'broadcast'));
    return this.collective('broadcast', options, (comm) => {
      const dev = this.stage(buf);
      this.nccl.broadcast(dev.ptr, dev.ptr, buf.length, type, root, comm, this.ctx.stream);
      return () => { if (this.rank !== root) this.unstage(buf, dev); else dev.release(); return buf; };
    });
  }

  allReduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reduceHost('allReduce', buf, options, null);
  }

  reduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reduceHost('reduce', buf, options, assertRoot(options.root ?? 0, this.size, 'reduce root'));
  }

  private reduceHost<T extends TypedArray>(what: string, buf: T, options: ReduceOptions, root: number | null): Promise<T> {
    assertCommBuffer(buf, what);
    const dtype = bufferDType(buf, options.dtype, what);
    const op = assertReduceOp(options.op ?? 'sum', `${what} op`, dtype);
    const type = ncclType(dtype);
    const red = ncclOp(op, dtype);
    return this.collective(what, options, (comm) => {
      const dev = this.stage(buf);
      if (root === null) this.nccl.allReduce(dev.ptr, dev.ptr, buf.length, type, red, comm, this.ctx.stream);
      else this.nccl.reduce(dev.ptr, dev.ptr, buf.length, type, red, root, comm, this.ctx.stream);
      return () => {
        if (root !== null && root !== this.rank) { dev.release(); return buf; }
        this.unstage(buf, dev);
        if (op === 'avg') finishAvg(buf, this.size);
        return buf;
      };
    });
  }

  async allGather(buf: TypedArray, options: CollectiveOptions = {}): Promise<TypedArray[]> {
    assertCommBuffer(buf, 'allGather');
    const dtype = bufferDType(buf, undefined, 'allGather');
    const lengths = await this.exchangeLengths('allGather', buf.length, dtype, 1, options);
    const max = Math.max(0, ...lengths);
    const ctor = storageOf(dtype);
    if (max === 0) return lengths.map(() => new ctor(0));
    const padded = new ctor(max);
    padded.set(buf);
    const all = new ctor(max * this.size);
    await this.collective('allGather', options, (comm) => {
      const send = this.stage(padded);
      const recv = this.ctx.allocator.allocate(all.byteLength);
      this.nccl.allGather(send.ptr, recv.ptr, max, ncclType(dtype), comm, this.ctx.stream);
      return () => { send.release(); this.unstage(all, recv); };
    });
    return lengths.map((n, r) => all.slice(r * max, r * max + n));
  }

  async gather(buf: TypedArray, options: RootOptions = {}): Promise<TypedArray[] | null> {
    const root = assertRoot(options.root ?? 0, this.size, 'gather root');
    const all = await this.allGather(buf, options);
    return this.rank === root ? all : null;
  }

  async scatter(parts: readonly TypedArray[] | null, options: RootOptions = {}): Promise<TypedArray> {
    const root = assertRoot(options.root ?? 0, this.size, 'scatter root');
    // The root sends [dtype code, length of each part]; then the concatenation of the parts.
    const header = new Int32Array(this.size + 1);
    let dtype: DType = 'uint8';
    if (this.rank === root) {
      if (!Array.isArray(parts) || parts.length !== this.size) {
        throw new TypeError(`scatter: the root must pass ${this.size} arrays, got ${parts === null ? 'null' : String((parts as unknown[]).length)}`);
      }
      parts.forEach((p, r) => assertCommBuffer(p, `scatter parts[${r}]`));
      dtype = bufferDType(parts[0]!, undefined, 'scatter');
      parts.forEach((p, r) => {
        if (bufferDType(p, undefined, 'scatter') !== dtype) {
          throw new TypeError(`scatter: parts[${r}] is a ${p.constructor.name}, parts[0] a ${parts[0]!.constructor.name}`);
        }
      });
      header[0] = CODES.indexOf(dtype);
      parts.forEach((p, r) => { header[r + 1] = p.length; });
    }
    await this.broadcast(header, { ...options, root });
    dtype = CODES[header[0]!] ?? 'uint8';
    const ctor = storageOf(dtype);
    const lengths = Array.from(header.subarray(1));
    const total = lengths.reduce((a, b) => a + b, 0);
    const all = new ctor(total);
    if (this.rank === root) { let off = 0; for (const p of parts!) { all.set(p, off); off += p.length; } }
    if (total > 0) await this.broadcast(all, { ...options, root });
    const start = lengths.slice(0, this.rank).reduce((a, b) => a + b, 0);
    return all.slice(start, start + lengths[this.rank]!);
  }

  async barrier(options: CollectiveOptions = {}): Promise<void> {
    await this.allReduce(new Int32Array(1), options);
  }

  // ---- device buffers ------------------------------------------------------------------------

  /** A new array holding `array` combined by `op` over every rank (avg: sum, then / size). */
  async allReduceDevice(array: CudaArray, op: ReduceOp = 'sum', options: CollectiveOptions = {}): Promise<CudaArray> {
    const red = this.deviceOp('allReduceDevice', array, op);
    await this.assertSameSize('allReduceDevice', array, options);
    return this.intoNew(array, async (out) => {
      await this.collective('allReduceDevice', options, (comm) => {
        this.nccl.allReduce(array.ptr, out.ptr, array.size, ncclType(array.dtype), red, comm, this.ctx.stream);
        return () => out;
      });
      return op === 'avg' && red !== 'avg' ? this.scaleDevice(out) : out;
    });
  }

  /** As allReduceDevice, but only `root` receives the result; the others get null. */
  async reduceDevice(array: CudaArray, op: ReduceOp = 'sum', options: RootOptions = {}): Promise<CudaArray | null> {
    const red = this.deviceOp('reduceDevice', array, op);
    const root = assertRoot(options.root ?? 0, this.size, 'reduceDevice root');
    await this.assertSameSize('reduceDevice', array, options);
    const out = await this.intoNew(array, async (o) => {
      await this.collective('reduceDevice', options, (comm) => {
        this.nccl.reduce(array.ptr, o.ptr, array.size, ncclType(array.dtype), red, root, comm, this.ctx.stream);
        return () => o;
      });
      return op === 'avg' && red !== 'avg' && this.rank === root ? this.scaleDevice(o) : o;
    });
    if (this.rank === root) return out;
    out.release();
    return null;
  }

  /** A new array with the root's values (same shape and dtype on every rank). */
  async broadcastDevice(array: CudaArray, options: RootOptions = {}): Promise<CudaArray> {
    const root = assertRoot(options.root ?? 0, this.size, 'broadcastDevice root');
    await this.assertSameSize('broadcastDevice', array, options);
    return this.intoNew(array, (out) => this.collective('broadcastDevice', options, (comm) => {
      this.nccl.broadcast(array.ptr, out.ptr, array.size, ncclType(array.dtype), root, comm, this.ctx.stream);
      return () => out;
    }));
  }

  /** Runs `body` on a new array shaped like `array`, freed again if `body` throws. */
  private async intoNew(array: CudaArray, body: (out: CudaArray) => Promise<CudaArray> | CudaArray): Promise<CudaArray> {
    const out = this.ctx.alloc(array.dtype, array.shape);
    try {
      return await body(out);
    } catch (e) {
      out.release();
      throw e;
    }
  }

  /**
   * Every rank's rows, concatenated along axis 0 in rank order (row counts may differ; the rest of
   * the shape and the dtype may not: CommMismatchError names the ranks).
   */
  async allGatherDevice(array: CudaArray, options: CollectiveOptions = {}): Promise<CudaArray> {
    if (array.shape.length === 0) throw new TypeError('allGatherDevice: a scalar has no rows; gather it instead');
    const tail = array.shape.slice(1);
    const rowSize = tail.reduce((a, b) => a * b, 1);
    const rows = await this.exchangeLengths('allGatherDevice', array.shape[0]!, array.dtype, rowSize, options);
    const maxRows = Math.max(0, ...rows);
    const total = rows.reduce((a, b) => a + b, 0);
    const out = this.ctx.alloc(array.dtype, [total, ...tail]);
    if (total === 0 || rowSize === 0) return out;
    const esz = bytesPerElement(array.dtype);
    const chunk = maxRows * rowSize;
    const send = this.ctx.allocator.allocate(chunk * esz);
    const recv = this.ctx.allocator.allocate(chunk * esz * this.size);
    try {
      await this.collective('allGatherDevice', options, (comm) => {
        const cu = this.ctx.cu;
        if (array.bytes > 0) cu.memcpyDtoDAsync(send.ptr, array.ptr, array.bytes, this.ctx.stream);
        this.nccl.allGather(send.ptr, recv.ptr, chunk, ncclType(array.dtype), comm, this.ctx.stream);
        let off = 0;
        rows.forEach((n, r) => {
          const bytes = n * rowSize * esz;
          if (bytes > 0) cu.memcpyDtoDAsync(out.ptr + BigInt(off), recv.ptr + BigInt(r * chunk * esz), bytes, this.ctx.stream);
          off += bytes;
        });
        return () => out;
      });
      return out;
    } catch (e) {
      out.release();
      throw e;
    } finally {
      send.release();
      recv.release();
    }
  }

  // ---- lifetime ------------------------------------------------------------------------------

  /** Destroys the communicator after its work finished (idempotent; aborts it if that fails). */
  close(): void {
    const comm = this.comm;
    if (!comm) return;
    this.comm = null;
    this.abortedBecause ??= 'the communicator is closed';
    try {
      this.ctx.makeCurrent();
      this.nccl.commDestroy(comm);
    } catch {
      try { this.nccl.commAbort(comm); } catch { /* already gone */ }
    }
  }

  /** Aborts pending and later collectives on this rank (the peers' calls fail by their own bounds). */
  abort(reason: string): void {
    const comm = this.comm;
    this.abortedBecause ??= reason;
    if (!comm) return;
    this.comm = null;
    try { this.nccl.commAbort(comm); } catch { /* the reason already says what happened */ }
  }

  // ---- internals -----------------------------------------------------------------------------

  private deviceOp(what: string, array: CudaArray, op: ReduceOp): NcclRedOp {
    if (array.isReleased) throw new Error(`${what}: the array was freed`);
    if (array.owner !== this.ctx) throw new TypeError(`${what}: the array is not on this communicator's GPU (cuda:${this.ctx.index})`);
    const checked = assertReduceOp(op, `${what} op`, array.dtype);
    return checked === 'avg' && this.nativeAvg ? 'avg' : ncclOp(checked, array.dtype);
  }

  /** Divides a float array by size in place (it is a fresh array nobody else holds). */
  private scaleDevice(out: CudaArray): CudaArray {
    if (this.size === 1) return out;
    const ctor = storageOf(out.dtype);
    const host = new ctor(out.size);
    this.ctx.staging.download(host, out.ptr);
    finishAvg(host, this.size);
    this.ctx.staging.upload(out.ptr, host);
    return out;
  }

  /** Every rank must pass the same number of elements of the same dtype (else CommMismatchError). */
  private async assertSameSize(what: string, array: CudaArray, options: CollectiveOptions): Promise<void> {
    if (this.size === 1) return;
    const sizes = await this.exchangeLengths(what, array.size, array.dtype, 1, options);
    const r = sizes.findIndex((n) => n !== array.size);
    if (r >= 0) {
      throw new CommMismatchError(
        `rank ${this.rank}: ${what}: rank ${r} passed ${sizes[r]} elements, this rank ${array.size} (NCCL needs equal lengths; nothing is truncated)`,
      );
    }
  }

  /** All-gathers [length, dtype code, row size]; throws CommMismatchError when dtypes or row sizes differ. */
  private async exchangeLengths(what: string, length: number, dtype: DType, rowSize: number, options: CollectiveOptions): Promise<number[]> {
    const mine = Int32Array.of(length, CODES.indexOf(dtype), rowSize);
    const all = new Int32Array(3 * this.size);
    await this.collective(`${what} (lengths)`, options, (comm) => {
      const send = this.stage(mine);
      const recv = this.ctx.allocator.allocate(all.byteLength);
      this.nccl.allGather(send.ptr, recv.ptr, 3, 'int32', comm, this.ctx.stream);
      return () => { send.release(); this.unstage(all, recv); };
    });
    const lengths: number[] = [];
    for (let r = 0; r < this.size; r++) {
      const [n, code, rs] = [all[3 * r]!, all[3 * r + 1]!, all[3 * r + 2]!];
      if (code !== mine[1] || rs !== rowSize) {
        throw new CommMismatchError(
          `rank ${this.rank}: ${what}: rank ${r} passed ${CODES[code] ?? `dtype code ${code}`} with row size ${rs}, `
            + `this rank ${dtype} with row size ${rowSize}`,
        );
      }
      lengths.push(n);
    }
    return lengths;
  }

  private stage(buf: TypedArray): Block {
    const block = this.ctx.allocator.allocate(buf.byteLength);
    this.ctx.staging.upload(block.ptr, buf);
    return block;
  }

  /** Called once the stream is idle: copies back and frees the scratch block. */
  private unstage(buf: TypedArray, block: Block): void {
    try {
      this.ctx.staging.download(buf, block.ptr);
    } finally {
      block.release();
    }
  }

  /**
   * Runs one collective after the previous one on this rank: `enqueue` puts the work on the stream
   * and returns what to do once it is finished; between the two, a bounded wait.
   */
  private collective<R>(what: string, options: CollectiveOptions, enqueue: (comm: NcclComm) => () => R): Promise<R> {
    const timeoutMs = options.timeoutMs === undefined ? this.timeoutMs : assertTimeout(options.timeoutMs, `${what} timeoutMs`);
    const run = async (): Promise<R> => {
      const comm = this.live(what);
      this.ctx.makeCurrent();
      const finish = enqueue(comm);
      await this.waitStream(what, comm, timeoutMs);
      return finish();
    };
    const job = this.queue.then(run, run);
    this.queue = job.catch(() => undefined);
    return job;
  }

  private live(what: string): NcclComm {
    if (this.comm && this.ctx.isClosed) this.abort('its GPU context was closed');
    if (!this.comm) throw new CommAbortedError(`rank ${this.rank}: ${what}: the NCCL communicator was aborted (${this.abortedBecause ?? 'unknown reason'})`);
    return this.comm;
  }

  /** Waits for the stream, polling for NCCL errors, a peer's abort and the deadline. */
  private async waitStream(what: string, comm: NcclComm, timeoutMs: number): Promise<void> {
    const done = this.ctx.cu.streamSynchronizeAsync(this.ctx.stream);
    const failure = await pollUntilDone(done, performance.now() + timeoutMs, () => {
      let code = 0;
      try { code = this.nccl.commGetAsyncError(comm); } catch { code = -1; }
      if (code !== 0 && code !== 7 /* ncclInProgress */) {
        return `NCCL reported ${code === -1 ? 'an error (ncclCommGetAsyncError failed)' : this.nccl.describe(code).message}`;
      }
      return this.abortProbe?.() ?? null;
    });
    if (failure === null) return;
    this.abort(failure.timedOut ? `${what} timed out after ${timeoutMs} ms` : `${what}: ${failure.reason}`);
    if (failure.timedOut) {
      throw new CommTimeoutError(`rank ${this.rank}: ${what}: the other ranks did not join within ${timeoutMs} ms (NCCL communicator aborted)`);
    }
    throw new CommAbortedError(`rank ${this.rank}: ${what}: ${failure.reason}`, failure.cause ? { cause: failure.cause } : {});
  }
}
