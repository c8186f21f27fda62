// The shared-memory Communicator: the worker threads of one process exchange data through a
// SharedArrayBuffer arena (layout, abort word and barrier in shm-group.ts).
//
// Every collective: write my header, barrier A, read every header and check they agree (all ranks
// see the same headers, so all throw or all continue). Headers are double-buffered by the parity
// of the collective's sequence number, so a fast rank writing the next header never overwrites one
// a slow rank is still reading. Then, if the data needs more arena than there is, rank 0 grows the
// (growable) arena up to maxArenaBytes and all meet at barrier G. Data beyond the arena's capacity
// moves in rounds, so any size works in bounded memory. Reductions are parallel: every rank copies
// its buffer into its slot, then reduces its own 1/size of the elements across all slots (a
// reduce-scatter), then every rank copies the whole result out (the all-gather).
import { type TypedArray, DTYPES, storageOf } from '../tensor/dtype.js';
import {
  type CollectiveName,
  type CollectiveOptions,
  type Communicator,
  type ReduceOptions,
  type RootOptions,
  assertCommBuffer,
  assertRoot,
  bufferDType,
} from './communicator.js';
import { assertReduceOp, combineInto, finishAvg } from './reduce-ops.js';
import { type CollectiveArgs, type CollectiveHeader, agreeOnCall, agreeOnFields, checkCall, decodeHeader, headerWords } from './collective-header.js';
import {
  type AbortReason,
  type Growable,
  type ShmGroupInit,
  EPOCH,
  HDR,
  HDR_WORDS,
  MAX_ELEMENTS,
  SMALL_BYTES,
  abortShmGroup,
  align8,
  groupBarrier,
  throwIfAborted,
} from './shm-group.js';

export {
  type AbortReason,
  type ShmGroupInit,
  type ShmGroupOptions,
  abortShmGroup,
  createShmGroup,
  resetShmGroup,
  shmGroupAbortState,
} from './shm-group.js';

type View = new (buffer: SharedArrayBuffer, byteOffset: number, length: number) => TypedArray;

/** One rank of a shared-memory group. Meant for worker threads (it blocks in Atomics.wait). */
export class ShmCommunicator implements Communicator {
  readonly rank: number;
  readonly size: number;
  private readonly init: ShmGroupInit;
  private readonly ctl: Int32Array;
  private readonly table: number;
  private seq = 0;
  private epoch = 0;

  constructor(init: ShmGroupInit, rank: number) {
    if (typeof init !== 'object' || init === null || !(init.control instanceof SharedArrayBuffer) || !(init.arena instanceof SharedArrayBuffer)) {
      throw new TypeError('ShmCommunicator init: expected the object returned by createShmGroup');
    }
    this.init = init;
    this.size = init.size;
    this.rank = assertRoot(rank, init.size, 'ShmCommunicator rank');
    this.ctl = new Int32Array(init.control);
    this.table = HDR + 2 * init.size * HDR_WORDS;
  }

  /** Aborts the whole group (every rank's pending and later collectives throw until a reset). */
  abort(reason: AbortReason = 'aborted'): void {
    abortShmGroup(this.init, reason, this.rank);
  }

  async barrier(options: CollectiveOptions = {}): Promise<void> {
    this.begin('barrier', options, () => ({}));
  }

  async broadcast<T extends TypedArray>(buf: T, options: RootOptions = {}): Promise<T> {
    const { headers, deadline, root, cap: cap0 } = this.begin('broadcast', options, () => {
      const b = assertCommBuffer(buf, 'broadcast buf');
      return { dtype: bufferDType(b, undefined, 'broadcast'), length: b.length, root: options.root ?? 0 };
    });
    this.agree(headers, 'broadcast', ['dtype', 'length']);
    if (this.size === 1 || buf.length === 0) return buf;
    const bytes = buf.length * buf.BYTES_PER_ELEMENT;
    const cap = this.ensureArena(bytes, cap0, deadline);
    this.rounds(bytes, cap, deadline, (lo, hi) => {
      if (this.rank === root) this.copyIn(buf, 0, lo, hi);
    }, (lo, hi) => {
      if (this.rank !== root) this.copyOut(buf, 0, lo, hi);
    });
    return buf;
  }

  async scatter(parts: readonly TypedArray[] | null, options: RootOptions = {}): Promise<TypedArray> {
    const isRoot = typeof options === 'object' && options !== null && this.rank === (options.root ?? 0);
    const { headers, deadline, root, parity, cap: cap0 } = this.begin('scatter', options, () => {
      if (!isRoot) return { root: options.root ?? 0 };
      if (!Array.isArray(parts) || parts.length !== this.size) {
        throw new TypeError(
          `scatter parts: expected an array of ${this.size} typed arrays on the root, got ${Array.isArray(parts) ? `${parts.length}` : String(parts)}`,
        );
      }
      const list = parts as readonly TypedArray[];
      const dtype = bufferDType(assertCommBuffer(list[0], 'scatter parts[0]'), undefined, 'scatter');
      list.forEach((p, r) => {
        if (bufferDType(assertCommBuffer(p, `scatter parts[${r}]`), undefined, 'scatter') !== dtype) {
          throw new TypeError(`scatter parts[${r}]: expected a ${storageOf(dtype).name} like parts[0], got a ${p.constructor.name}`);
        }
      });
      return { dtype, root: options.root ?? 0 };
    }, (p) => {
      if (isRoot && Array.isArray(parts)) parts.forEach((x, r) => (this.ctl[this.table + p * this.size + r] = x.length));
    });
    const dtype = DTYPES[headers[root]!.dtype - 1] ?? 'uint8';
    const lengths = headers.map((_, r) => this.ctl[this.table + parity * this.size + r]!);
    const mine = new (storageOf(dtype))(lengths[this.rank]!);
    if (this.size === 1) {
      mine.set(parts![0]!);
      return mine;
    }
    const offsets = this.offsets(lengths, mine.BYTES_PER_ELEMENT);
    const total = offsets[this.size]!;
    const cap = this.ensureArena(total, cap0, deadline);
    this.rounds(total, cap, deadline, (lo, hi) => {
      if (this.rank === root) parts!.forEach((x, r) => this.copyIn(x, offsets[r]!, lo, hi));
    }, (lo, hi) => this.copyOut(mine, offsets[this.rank]!, lo, hi));
    return mine;
  }

  async gather(buf: TypedArray, options: RootOptions = {}): Promise<TypedArray[] | null> {
    const all = this.gatherTo('gather', buf, options);
    return this.rank === (options.root ?? 0) ? all : null;
  }

  async allGather(buf: TypedArray, options: CollectiveOptions = {}): Promise<TypedArray[]> {
    return this.gatherTo('allGather', buf, options)!;
  }

  async reduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reduceTo('reduce', buf, options);
  }

  async allReduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reduceTo('allReduce', buf, options);
  }

  private gatherTo(kind: 'gather' | 'allGather', buf: TypedArray, options: RootOptions): TypedArray[] | null {
    const { headers, deadline, root, cap: cap0 } = this.begin(kind, options, () => {
      const b = assertCommBuffer(buf, `${kind} buf`);
      return { dtype: bufferDType(b, undefined, kind), length: b.length, root: kind === 'gather' ? options.root ?? 0 : 0 };
    });
    this.agree(headers, kind, ['dtype']);
    const receives = kind === 'allGather' || this.rank === root;
    const Ctor = storageOf(DTYPES[headers[0]!.dtype - 1] ?? 'uint8');
    const out = headers.map((h, r) => (r === this.rank ? buf.slice() : new Ctor(receives ? h.length : 0)));
    if (this.size === 1) return out;
    const offsets = this.offsets(headers.map((h) => h.length), buf.BYTES_PER_ELEMENT);
    const total = offsets[this.size]!;
    const cap = this.ensureArena(total, cap0, deadline);
    this.rounds(total, cap, deadline, (lo, hi) => this.copyIn(buf, offsets[this.rank]!, lo, hi), (lo, hi) => {
      if (receives) out.forEach((o, r) => r !== this.rank && this.copyOut(o, offsets[r]!, lo, hi));
    });
    return receives ? out : null;
  }

  private reduceTo<T extends TypedArray>(kind: 'reduce' | 'allReduce', buf: T, options: ReduceOptions): T {
    // A small buffer goes into this rank's small slot before barrier A: then that one barrier is all.
    const small = this.size > 1 && buf.length * buf.BYTES_PER_ELEMENT <= SMALL_BYTES;
    const { headers, deadline, root, parity, cap: cap0 } = this.begin(kind, options, () => {
      const b = assertCommBuffer(buf, `${kind} buf`);
      const dtype = bufferDType(b, options.dtype, `${kind} options.dtype`);
      const op = assertReduceOp(options.op ?? 'sum', `${kind} options.op`, dtype);
      return { dtype, length: b.length, op, root: kind === 'reduce' ? options.root ?? 0 : 0 };
    }, (p) => {
      if (small) this.smallSlot(buf, p, this.rank).set(buf);
    });
    this.agree(headers, kind, ['dtype', 'length', 'op']);
    const op = assertReduceOp(options.op ?? 'sum', `${kind} options.op`);
    const n = this.size;
    const L = buf.length;
    if (n === 1 || L === 0) return buf;
    if (small) {
      // Every rank's length agreed, so every rank took this path. Slots of this parity are not
      // written again before every rank has passed the next collective's barrier A.
      if (kind === 'reduce' && this.rank !== root) return buf;
      const acc = this.smallSlot(buf, parity, 0).slice();
      for (let r = 1; r < n; r++) combineInto(op, acc, this.smallSlot(buf, parity, r), { dtype: options.dtype === 'bool' ? 'bool' : undefined });
      if (op === 'avg') finishAvg(acc, n, 0, L);
      buf.set(acc);
      return buf;
    }
    const bpe = buf.BYTES_PER_ELEMENT;
    const cap = this.ensureArena(n * align8(L * bpe), cap0, deadline);
    const slotBytes = Math.floor(cap / (n * 8)) * 8;
    const E = slotBytes / bpe;
    const Ctor = buf.constructor as View;
    const dtype = options.dtype === 'bool' ? 'bool' : undefined;
    for (let e0 = 0; e0 < L; e0 += E) {
      if (e0 > 0) this.sync(deadline);
      const m = Math.min(E, L - e0);
      const slot = (r: number): TypedArray => new Ctor(this.init.arena, r * slotBytes, m);
      slot(this.rank).set(buf.subarray(e0, e0 + m));
      this.sync(deadline);
      const c0 = Math.floor((m * this.rank) / n);
      const c1 = Math.floor((m * (this.rank + 1)) / n);
      const acc = slot(0);
      for (let r = 1; r < n; r++) combineInto(op, acc, slot(r), { start: c0, end: c1, dtype });
      if (op === 'avg') finishAvg(acc, n, c0, c1);
      this.sync(deadline);
      if (kind === 'allReduce' || this.rank === root) buf.set(acc, e0);
    }
    return buf;
  }

  /**
   * Writes this rank's header (after `check`, whose error is held back until every rank has
   * arrived, so one rank's bad argument fails every rank at the same collective), meets the
   * others at barrier A and checks that all called the same collective with the same root.
   */
  private begin(kind: CollectiveName, options: RootOptions, check: () => CollectiveArgs, beforeArrive?: (parity: number) => void) {
    throwIfAborted(this.init, this.rank);
    const epoch = Atomics.load(this.ctl, EPOCH);
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.seq = 0;
    }
    const seq = ++this.seq;
    const parity = seq & 1;
    const call = checkCall(kind, options, check, this.size, MAX_ELEMENTS, this.init.timeoutMs);
    let error = call.error;
    if (error === null) {
      try {
        beforeArrive?.(parity);
      } catch (e) {
        error = e;
      }
    }
    const deadline = performance.now() + call.timeoutMs;
    // Read before barrier A: rank 0 grows the arena only after A, so every rank sees the same value.
    const cap = this.init.arena.byteLength;
    const h = HDR + (parity * this.size + this.rank) * HDR_WORDS;
    headerWords(seq, kind, call.args, error !== null).forEach((w, i) => (this.ctl[h + i] = w));
    this.sync(deadline);
    const headers: CollectiveHeader[] = [];
    for (let r = 0; r < this.size; r++) headers.push(decodeHeader(this.ctl, HDR + (parity * this.size + r) * HDR_WORDS));
    const root = agreeOnCall(headers, this.rank, kind, `collective #${seq}`, error);
    return { headers, deadline, root, parity, cap };
  }

  /** A view of rank r's small slot of the given parity, shaped like buf. */
  private smallSlot(buf: TypedArray, parity: number, r: number): TypedArray {
    return new (buf.constructor as View)(this.init.small, (parity * this.size + r) * SMALL_BYTES, buf.length);
  }

  /** Throws on every rank unless the named header fields are equal on every rank. */
  private agree(headers: CollectiveHeader[], kind: string, fields: ('dtype' | 'length' | 'op')[]): void {
    agreeOnFields(headers, kind, fields);
  }

  /** Capacity this collective may use; grows the arena first (rank 0, then barrier G) if needed. */
  private ensureArena(needBytes: number, cap: number, deadline: number): number {
    const arena = this.init.arena as SharedArrayBuffer & Growable;
    const want = Math.min(align8(needBytes), this.init.maxArenaBytes);
    if (want <= cap || !arena.growable || arena.grow === undefined) return cap;
    if (this.rank === 0) {
      try {
        arena.grow(Math.min(this.init.maxArenaBytes, Math.max(want, 2 * cap)));
      } catch {
        // out of memory: keep the old capacity and move the data in more rounds
      }
    }
    this.sync(deadline);
    return arena.byteLength;
  }

  /** Byte offsets (8-aligned) of consecutive segments of the given element lengths, plus the end. */
  private offsets(lengths: number[], bpe: number): number[] {
    const out = [0];
    for (const len of lengths) out.push(out[out.length - 1]! + align8(len * bpe));
    return out;
  }

  /** Moves `total` bytes of segments through the arena, `cap` bytes per round. */
  private rounds(total: number, cap: number, deadline: number, write: (lo: number, hi: number) => void, read: (lo: number, hi: number) => void): void {
    for (let lo = 0; lo < total; lo += cap) {
      const hi = Math.min(total, lo + cap);
      if (lo > 0) this.sync(deadline); // everyone has read the previous round
      write(lo, hi);
      this.sync(deadline);
      read(lo, hi);
    }
  }

  /** Copies the part of `src` (a segment at byte `off`) that falls in [lo, hi) into the arena. */
  private copyIn(src: TypedArray, off: number, lo: number, hi: number): void {
    const bpe = src.BYTES_PER_ELEMENT;
    const a = Math.max(lo, off);
    const b = Math.min(hi, off + src.length * bpe);
    if (b <= a) return;
    const Ctor = src.constructor as View;
    new Ctor(this.init.arena, a - lo, (b - a) / bpe).set(src.subarray((a - off) / bpe, (b - off) / bpe));
  }

  private copyOut(dst: TypedArray, off: number, lo: number, hi: number): void {
    const bpe = dst.BYTES_PER_ELEMENT;
    const a = Math.max(lo, off);
    const b = Math.min(hi, off + dst.length * bpe);
    if (b <= a) return;
    const Ctor = dst.constructor as View;
    dst.set(new Ctor(this.init.arena, a - lo, (b - a) / bpe), (a - off) / bpe);
  }

  private sync(deadline: number): void {
    groupBarrier(this.init, this.rank, deadline, this.seq);
  }
}
