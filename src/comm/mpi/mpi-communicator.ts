// The Communicator over MPI: one rank per process (under mpirun / mpiexec / srun), collectives
// between processes and machines, never blocking the event loop.
//
// Every collective is MPI's non-blocking form (MPI_Iallreduce, MPI_Ibcast, ...) on the caller's
// SharedArrayBuffer memory, without a copy (other arrays are staged through a shared copy, since
// MPI writes into the memory after the call returns), polled with MPI_Test from the event loop
// (request-poll.ts) until it completes or its deadline passes. Collectives run one after another
// in call order (MPI requires every rank to issue them in the same order), each with a sequence
// number. Each one first all-gathers a small header (sequence number, collective, dtype, length,
// root, op, argument status), so ranks that call different collectives or disagree on arguments
// all throw CommMismatchError instead of exchanging wrong data or hanging; gather, allGather and
// scatter take their lengths from it. A deadline that passes leaves MPI's request pending (MPI
// cannot cancel a collective), so the communicator is then broken: later calls throw
// CommAbortedError, and abort() (MPI_Abort) makes the launcher end the whole job.
import { type DType, type TypedArray, DTYPES, storageOf } from '../../tensor/dtype.js';
import {
  type CollectiveName, type CollectiveOptions, type Communicator, type ReduceOptions, type RootOptions,
  CommAbortedError, DEFAULT_COMM_TIMEOUT_MS, assertCommBuffer, assertTimeout, bufferDType,
} from '../communicator.js';
import { type ReduceOp, assertReduceOp, finishAvg } from '../reduce-ops.js';
import { type MpiHandle, type MpiOpName, mpiDatatypeName } from './abi.js';
import { MpiLibrary } from './ffi.js';
import { type Agreed, type Local, type PollOptions, RequestPoller, agreeHeaders, readHeaders, writeHeader, HEADER_INTS, MAX_COUNT } from './request-poll.js';
import { checkCall } from '../collective-header.js';

export { MpiLibrary } from './ffi.js';

/** How long abort() leaves the launcher to forward the reason before MPI_Abort. */
const ABORT_FLUSH_MS = 200;

/** Options of MpiCommunicator.init. */
export interface MpiCommunicatorOptions extends PollOptions {
  /** Default deadline of every collective in ms (60 s); a collective's own `timeoutMs` wins. */
  readonly timeoutMs?: number;
  /** The MPI library file (default: SYNK_MPI_LIB, else the usual sonames). */
  readonly library?: string;
  /** MPI thread level requested at MPI_Init_thread (default funneled: only the main thread calls MPI). */
  readonly threadLevel?: 'single' | 'funneled' | 'serialized' | 'multiple';
}

/** A SharedArrayBuffer-backed view of `buf`: `buf` itself, or a shared copy (then `copied`). */
function sharedView<T extends TypedArray>(buf: T): { view: T; copied: boolean } {
  if (buf.buffer instanceof SharedArrayBuffer) return { view: buf, copied: false };
  const Ctor = buf.constructor as new (b: SharedArrayBuffer) => T;
  const view = new Ctor(new SharedArrayBuffer(buf.byteLength));
  view.set(buf);
  return { view, copied: true };
}

const sharedOf = (dtype: DType, length: number): TypedArray => {
  const Ctor = storageOf(dtype) as unknown as new (b: SharedArrayBuffer) => TypedArray;
  return new Ctor(new SharedArrayBuffer(length * storageOf(dtype).BYTES_PER_ELEMENT));
};

/** One rank of the MPI world (MPI_COMM_WORLD). */
export class MpiCommunicator implements Communicator {
  /** This process's rank in the world. */
  readonly rank: number;
  /** The number of processes in the world. */
  readonly size: number;
  /** This process's rank among the processes of its node (MPI_Comm_split_type, shared memory). */
  readonly localRank: number;
  /** The number of processes on this node. */
  readonly localSize: number;
  private readonly comm: MpiHandle;
  /** Default deadline of every collective in ms. */
  readonly timeoutMs: number;
  private readonly poller: RequestPoller;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * Loads MPI (see MpiLibrary.load), initializes it unless it is already, checks the world size
   * against the launcher's and joins MPI_COMM_WORLD. Collective over every process of the job.
   */
  static init(options: MpiCommunicatorOptions = {}): MpiCommunicator {
    const mpi = MpiLibrary.load(options.library === undefined ? {} : { library: options.library });
    mpi.init(options.threadLevel);
    const comm = new MpiCommunicator(mpi, options);
    // A clean exit finalizes MPI (a launcher treats a process that ends without MPI_Finalize as failed
    // and ends the job). A failing one does not: the launcher then ends the other processes too.
    process.once('exit', (code) => {
      if (code === 0 && comm.poller.brokenBecause === null && !mpi.finalized()) mpi.finalize();
    });
    return comm;
  }

  /** Joins MPI_COMM_WORLD of an initialized library (MpiCommunicator.init does both). */
  constructor(readonly mpi: MpiLibrary, options: MpiCommunicatorOptions = {}) {
    this.comm = mpi.handles.commWorld;
    this.rank = mpi.commRank(this.comm);
    this.size = mpi.commSize(this.comm);
    const local = mpi.splitShared(this.comm, this.rank);
    this.localRank = mpi.commRank(local);
    this.localSize = mpi.commSize(local);
    this.timeoutMs = options.timeoutMs === undefined ? DEFAULT_COMM_TIMEOUT_MS : assertTimeout(options.timeoutMs, 'MpiCommunicator timeoutMs');
    this.poller = new RequestPoller(mpi, this.rank, this.size, options);
  }

  /** Why the communicator cannot be used any more (a deadline passed), or null. */
  get brokenBecause(): string | null {
    return this.poller.brokenBecause;
  }

  /** Ends the whole job: MPI_Abort on the world, so the launcher kills every process. Does not return. */
  abort(code = 1, reason?: string): never {
    if (reason !== undefined) {
      process.stderr.write(`synkhronos: MPI rank ${this.rank} aborts the job: ${reason}\n`);
      // The launcher forwards output through its own daemons, which MPI_Abort ends at once: a moment
      // for the reason to get through (without it MPICH's Hydra lost it in about 1 job of 3 on a busy machine).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ABORT_FLUSH_MS);
    }
    return this.mpi.abort(this.comm, code);
  }

  /** MPI_Finalize, after every queued collective has finished. Refused while a timed-out collective is pending. */
  async finalize(): Promise<void> {
    await this.queue.catch(() => undefined);
    if (this.poller.brokenBecause !== null) throw new CommAbortedError(`MPI rank ${this.rank}: cannot finalize: ${this.poller.brokenBecause}; call abort()`);
    this.mpi.finalize();
  }

  /** Resolves once every rank has called it. */
  barrier(options: CollectiveOptions = {}): Promise<void> {
    return this.collective('barrier', options, () => ({}), async () => undefined);
  }

  /** Copies the root's `buf` into every rank's `buf`. */
  broadcast<T extends TypedArray>(buf: T, options: RootOptions = {}): Promise<T> {
    return this.collective('broadcast', options, () => {
      const b = assertCommBuffer(buf, 'broadcast buf');
      return { dtype: bufferDType(b, undefined, 'broadcast'), length: b.length, root: options.root ?? 0 };
    }, async (a) => {
      agreeHeaders(a, 'broadcast', ['dtype', 'length']);
      if (buf.length === 0) return buf;
      const { view, copied } = sharedView(buf);
      await this.poller.run(a, [view], (req) => this.mpi.ibcast(view, buf.length, this.type(a.dtype), a.root, this.comm, req));
      if (copied && this.rank !== a.root) buf.set(view);
      return buf;
    });
  }

  /** Combines every rank's `buf` by `op` into every rank's `buf` (MPI_IN_PLACE). */
  allReduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reduceTo('allReduce', buf, buf, options);
  }

  /** Out of place: combines every rank's `send` by `op` into every rank's `recv` (same length and type); `send` is unchanged. */
  allReduceInto<T extends TypedArray>(send: T, recv: T, options: ReduceOptions = {}): Promise<T> {
    return this.reduceTo('allReduce', send, recv, options);
  }

  /** Combines every rank's `buf` by `op` into the root's `buf` (the others' are unchanged). */
  reduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reduceTo('reduce', buf, buf, options);
  }

  /** Every rank receives every rank's `buf` (lengths may differ) in rank order. */
  async allGather(buf: TypedArray, options: CollectiveOptions = {}): Promise<TypedArray[]> {
    return (await this.gatherTo('allGather', buf, options))!;
  }

  /** The root receives every rank's `buf` in rank order; the others receive null. */
  gather(buf: TypedArray, options: RootOptions = {}): Promise<TypedArray[] | null> {
    return this.gatherTo('gather', buf, options);
  }

  /** The root's `parts[r]` goes to rank r (any lengths, one dtype); other ranks pass null. */
  scatter(parts: readonly TypedArray[] | null, options: RootOptions = {}): Promise<TypedArray> {
    const isRoot = typeof options === 'object' && options !== null && this.rank === (options.root ?? 0);
    return this.collective('scatter', options, () => {
      if (!isRoot) return { root: options.root ?? 0 };
      if (!Array.isArray(parts) || parts.length !== this.size) {
        const got = Array.isArray(parts) ? parts.length : String(parts);
        throw new TypeError(`scatter parts: expected an array of ${this.size} typed arrays on the root, got ${got}`);
      }
      const dtype = bufferDType(assertCommBuffer(parts[0], 'scatter parts[0]'), undefined, 'scatter');
      (parts as readonly TypedArray[]).forEach((p, r) => {
        if (bufferDType(assertCommBuffer(p, `scatter parts[${r}]`), undefined, 'scatter') !== dtype) {
          throw new TypeError(`scatter parts[${r}]: expected a ${storageOf(dtype).name} like parts[0], got a ${p.constructor.name}`);
        }
      });
      const total = (parts as readonly TypedArray[]).reduce((s, p) => s + p.length, 0);
      if (total > MAX_COUNT) throw new RangeError(`scatter: at most ${MAX_COUNT} elements in all, got ${total}`);
      return { dtype, root: options.root ?? 0 };
    }, async (a) => {
      const dtype = DTYPES[a.headers[a.root]!.dtype - 1] ?? 'uint8';
      const counts = new Int32Array(new SharedArrayBuffer(4 * this.size));
      if (isRoot) parts!.forEach((p, r) => (counts[r] = p.length));
      await this.poller.run(a, [counts], (req) => this.mpi.ibcast(counts, this.size, this.type('int32'), a.root, this.comm, req));
      const displs = this.displacements(counts);
      const mine = sharedOf(dtype, counts[this.rank]!);
      let packed: TypedArray | null = null;
      if (isRoot) {
        packed = sharedOf(dtype, displs[this.size]!);
        parts!.forEach((p, r) => packed!.set(p, displs[r]!));
      }
      await this.poller.run(a, [mine, packed, counts, displs], (req) =>
        this.mpi.iscatterv(packed, counts, displs, mine, mine.length, this.type(dtype), a.root, this.comm, req));
      return mine;
    });
  }

  /** Validates now, then queues the collective: header exchange, agreement, then `body`. */
  private collective<R>(kind: CollectiveName, options: CollectiveOptions, check: () => Local, body: (a: Agreed) => Promise<R>): Promise<R> {
    const seq = ++this.seq;
    const { timeoutMs, args: local, error } = checkCall(kind, options, check, this.size, MAX_COUNT, this.timeoutMs);
    const run = async (): Promise<R> => {
      this.poller.throwIfBroken(kind, seq);
      const deadline = performance.now() + timeoutMs;
      const mine = writeHeader(seq, kind, local, error !== null);
      const all = new Int32Array(new SharedArrayBuffer(4 * HEADER_INTS * this.size));
      const pending = { kind, seq, deadline, timeoutMs, headers: [], root: 0, dtype: 'uint8' as DType };
      await this.poller.run(pending, [mine, all], (req) => this.mpi.iallgather(mine, HEADER_INTS, this.type('int32'), all, this.comm, req));
      const agreed = readHeaders(all, this.size, this.rank, pending, error);
      return body(agreed);
    };
    const result = this.queue.then(run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private reduceTo<T extends TypedArray>(kind: 'reduce' | 'allReduce', send: T, recv: T, options: ReduceOptions): Promise<T> {
    return this.collective(kind, options, () => {
      const b = assertCommBuffer(send, `${kind} buf`);
      const dtype = bufferDType(b, options.dtype, `${kind} options.dtype`);
      const op = assertReduceOp(options.op ?? 'sum', `${kind} options.op`, dtype);
      if (recv !== send && (assertCommBuffer(recv, `${kind} recv`).constructor !== b.constructor || recv.length !== b.length)) {
        throw new TypeError(`${kind}: recv must be a ${b.constructor.name} of length ${b.length}, got a ${recv.constructor.name} of length ${recv.length}`);
      }
      return { dtype, length: b.length, op, root: kind === 'reduce' ? options.root ?? 0 : 0 };
    }, async (a) => {
      agreeHeaders(a, kind, ['dtype', 'length', 'op']);
      const op = assertReduceOp(options.op ?? 'sum', `${kind} options.op`);
      if (send.length === 0) return recv;
      const receives = kind === 'allReduce' || this.rank === a.root;
      const s = sharedView(send);
      const r = recv === send ? s : sharedView(recv);
      const type = this.type(a.dtype);
      const mpiOp = this.op(op, a.dtype);
      // In place where the result lands in the send buffer; MPI_Ireduce's non-roots only send.
      const inPlace = recv === send && receives;
      await this.poller.run(a, [s.view, r.view], (req) => (kind === 'allReduce'
        ? this.mpi.iallreduce(inPlace ? null : s.view, r.view, send.length, type, mpiOp, this.comm, req)
        : this.mpi.ireduce(inPlace ? null : s.view, receives ? r.view : null, send.length, type, mpiOp, a.root, this.comm, req)));
      if (receives) {
        if (op === 'avg') finishAvg(r.view, this.size);
        if (r.copied) recv.set(r.view);
      }
      return recv;
    });
  }

  private gatherTo(kind: 'gather' | 'allGather', buf: TypedArray, options: RootOptions): Promise<TypedArray[] | null> {
    return this.collective(kind, options, () => {
      const b = assertCommBuffer(buf, `${kind} buf`);
      return { dtype: bufferDType(b, undefined, kind), length: b.length, root: kind === 'gather' ? options.root ?? 0 : 0 };
    }, async (a) => {
      agreeHeaders(a, kind, ['dtype']);
      const receives = kind === 'allGather' || this.rank === a.root;
      const counts = Int32Array.from(a.headers, (h) => h.length);
      const displs = this.displacements(counts);
      const total = displs[this.size]!;
      if (total > MAX_COUNT) throw new RangeError(`${kind}: at most ${MAX_COUNT} elements in all, got ${total}`);
      const all = receives ? sharedOf(a.dtype, total) : null;
      const { view } = sharedView(buf);
      const type = this.type(a.dtype);
      const sharedCounts = sharedView(counts).view;
      const sharedDispls = sharedView(displs.subarray(0, this.size)).view;
      await this.poller.run(a, [view, all, sharedCounts, sharedDispls], (req) => (kind === 'allGather'
        ? this.mpi.iallgatherv(view, buf.length, all, sharedCounts, sharedDispls, type, this.comm, req)
        : this.mpi.igatherv(view, buf.length, all, sharedCounts, sharedDispls, type, a.root, this.comm, req)));
      return all === null ? null : Array.from(counts, (n, r) => all.subarray(displs[r]!, displs[r]! + n));
    });
  }

  /** Prefix sums of element counts: displs[r] where rank r's part starts, displs[size] the total. */
  private displacements(counts: Int32Array): Int32Array {
    const out = new Int32Array(new SharedArrayBuffer(4 * (counts.length + 1)));
    for (let r = 0; r < counts.length; r++) out[r + 1] = out[r]! + counts[r]!;
    return out;
  }

  private type(dtype: DType): MpiHandle {
    return this.mpi.handles.datatypes[mpiDatatypeName(dtype)];
  }

  /** MPI's op for ours: bool sums and maxes are a logical or, products and mins a logical and; avg sums. */
  private op(op: ReduceOp, dtype: DType): MpiHandle {
    const name: MpiOpName = dtype === 'bool'
      ? op === 'prod' || op === 'min' ? 'land' : 'lor'
      : op === 'avg' ? 'sum' : op;
    return this.mpi.handles.ops[name];
  }
}
