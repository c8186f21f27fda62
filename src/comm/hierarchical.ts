// Collectives over every rank of every node: inside the node through the node's own communicator
// (shared memory between its workers), across nodes by the node's leader (local rank 0) through a
// cross-node communicator (MPI, reached through the controller: node-link.ts), then inside the
// node again. Global rank = node * workers per node + local rank, so the global rank order is
// node-major, which is the order the controller hands out rows in.
//
// Each step is a collective of one group only: the local steps are the node's own (nodes run
// them independently), the cross step is the leaders'. Every rank knows every root, so all ranks
// of a node take the same steps in the same order and the groups' own headers keep checking that.
//
// A reduction larger than `chunkBytes` (4 MiB by default) goes in pieces that pipeline: piece k's
// all-reduce across nodes (MPI on the controller's thread) runs while the node reduces piece k + 1
// and broadcasts piece k - 1, at most PIPELINE_DEPTH pieces across nodes at a time. Each piece is a
// collective of its own in every group (its own sequence number and deadline). Every element is
// combined in the same order as unchunked (the node's ranks in rank order, then MPI's order for its
// length, which is the same for two nodes; with more, MPI may pick another algorithm for a piece).
import { type TypedArray, storageOf } from '../tensor/dtype.js';
import {
  type CollectiveOptions, type Communicator, type ReduceOptions, type RootOptions, assertCommBuffer, assertRoot, bufferDType,
} from './communicator.js';
import { assertReduceOp, finishAvg } from './reduce-ops.js';

/** The shape of the job: nodes, and workers per node (equal on every node). */
export interface NodeLayout {
  readonly nodeRank: number;
  readonly nodeCount: number;
}

const timeoutOf = (o: CollectiveOptions): CollectiveOptions => (o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });

/** Bytes per piece of a reduction across nodes, unless the fork says otherwise (commChunkBytes). */
export const DEFAULT_CHUNK_BYTES = 4 << 20;
/** Pieces across nodes at a time: piece k's MPI call overlaps piece k + 1's reduction and piece k - 1's broadcast. */
const PIPELINE_DEPTH = 2;

/** Options of a HierarchicalCommunicator. */
export interface HierarchicalOptions {
  /** Bytes per piece of a reduction across nodes (default DEFAULT_CHUNK_BYTES); the same on every rank of the job. */
  readonly chunkBytes?: number;
}

/** Checks a piece size: a positive integer number of bytes (a multiple of 64 keeps every dtype and cache line whole). */
export function assertChunkBytes(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 64 || value % 64 !== 0) {
    throw new RangeError(`${what}: expected a positive multiple of 64 bytes, got ${String(value)}`);
  }
  return value;
}

/** [start, end) pieces of `length` elements of `bytesPerElement` bytes, `chunkBytes` each (the last one shorter); one piece when it fits. */
export function piecesOf(length: number, bytesPerElement: number, chunkBytes: number): [number, number][] {
  const per = Math.max(1, Math.floor(chunkBytes / bytesPerElement));
  const out: [number, number][] = [];
  for (let lo = 0; lo < length; lo += per) out.push([lo, Math.min(length, lo + per)]);
  return out.length ? out : [[0, 0]];
}

/** True for a communicator whose reductions can leave their result on every node's leader. */
export function spansNodes(comm: Communicator | null): comm is HierarchicalCommunicator {
  return comm instanceof HierarchicalCommunicator;
}

/** One rank of the job-wide group: a node's communicator, and (on the node's leader) the leaders' one. */
export class HierarchicalCommunicator implements Communicator {
  /** Global rank: node * localSize + local rank. */
  readonly rank: number;
  /** Every rank of every node. */
  readonly size: number;

  /**
   * @param local the node's group (this rank's local rank is local.rank)
   * @param cross the leaders' group (rank = node rank), on local rank 0 only; null elsewhere
   */
  /** Bytes per piece of a reduction across nodes. */
  readonly chunkBytes: number;

  constructor(
    private readonly local: Communicator, private readonly cross: Communicator | null, readonly layout: NodeLayout, options: HierarchicalOptions = {},
  ) {
    this.chunkBytes = assertChunkBytes(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, 'HierarchicalCommunicator chunkBytes');
    if ((local.rank === 0) !== (cross !== null)) throw new Error('HierarchicalCommunicator: the leaders\' group is given on local rank 0 and only there');
    if (cross && (cross.rank !== layout.nodeRank || cross.size !== layout.nodeCount)) {
      const says = `node ${layout.nodeRank} of ${layout.nodeCount}`;
      throw new Error(`HierarchicalCommunicator: the leaders' group is rank ${cross.rank} of ${cross.size}, the layout says ${says}`);
    }
    this.rank = layout.nodeRank * local.size + local.rank;
    this.size = layout.nodeCount * local.size;
  }

  /** The node's own group (this rank's local rank is node.rank). */
  get node(): Communicator {
    return this.local;
  }

  /** The leaders' group across nodes, on the node's leader only (null elsewhere). */
  get leaders(): Communicator | null {
    return this.cross;
  }

  /** Whether this rank is its node's leader (local rank 0). */
  get isLeader(): boolean {
    return this.cross !== null;
  }

  private place(root: number): { node: number; localRoot: number } {
    return { node: Math.floor(root / this.local.size), localRoot: root % this.local.size };
  }

  async barrier(options: CollectiveOptions = {}): Promise<void> {
    await this.local.barrier(timeoutOf(options));
    if (this.cross) await this.cross.barrier(timeoutOf(options));
    await this.local.barrier(timeoutOf(options));
  }

  async broadcast<T extends TypedArray>(buf: T, options: RootOptions = {}): Promise<T> {
    const root = assertRoot(options.root ?? 0, this.size, 'broadcast options.root');
    const { node, localRoot } = this.place(root);
    const t = timeoutOf(options);
    if (node === this.layout.nodeRank && localRoot !== 0) await this.local.broadcast(buf, { ...t, root: localRoot });
    if (this.cross) await this.cross.broadcast(buf, { ...t, root: node });
    await this.local.broadcast(buf, { ...t, root: 0 });
    return buf;
  }

  /** Every rank's `buf` combined by `op` into every rank's `buf`. */
  async allReduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reducePieces(buf, options, true);
  }

  /**
   * Every rank's `buf` combined by `op` into the `buf` of every node's leader (local rank 0); the
   * others' are unchanged. What a node's controller needs: its rank 0 answers for the node.
   */
  async reduceToLeaders<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    return this.reducePieces(buf, options, false);
  }

  /**
   * The node's reduction to its leader, the leaders' all-reduce, and (`thenBroadcast`) the leader's
   * broadcast to the node, piece by piece: see the file's comment. Non-leaders' pieces are unchanged
   * until their broadcast.
   */
  private async reducePieces<T extends TypedArray>(buf: T, options: ReduceOptions, thenBroadcast: boolean): Promise<T> {
    assertCommBuffer(buf, 'reduce buf');
    const dtype = bufferDType(buf, options.dtype, 'reduce options.dtype');
    const op = assertReduceOp(options.op ?? 'sum', 'reduce options.op', dtype);
    const sumOp = op === 'avg' ? 'sum' : op;
    const t = timeoutOf(options);
    const pieces = piecesOf(buf.length, buf.BYTES_PER_ELEMENT, this.chunkBytes).map(([lo, hi]) => buf.subarray(lo, hi) as T);
    const across: Promise<unknown>[] = [];
    let finished = 0;
    const finish = async (): Promise<void> => {
      const piece = pieces[finished]!;
      if (this.cross) {
        await across[finished];
        if (op === 'avg') finishAvg(piece, this.size);
      }
      if (thenBroadcast) await this.local.broadcast(piece, { ...t, root: 0 });
      finished++;
    };
    for (let k = 0; k < pieces.length; k++) {
      const piece = pieces[k]!;
      await this.local.reduce(piece, { ...t, op: sumOp, dtype, root: 0 }); // non-roots' piece is unchanged
      if (this.cross) {
        const sent = this.cross.allReduce(piece, { ...t, op: sumOp, dtype });
        sent.catch(() => undefined); // awaited in finish(); a failure there ends the call (and, on a deadline, the job)
        across.push(sent);
      }
      if (k + 1 - finished >= PIPELINE_DEPTH) await finish();
    }
    while (finished < pieces.length) await finish();
    return buf;
  }

  async reduce<T extends TypedArray>(buf: T, options: ReduceOptions = {}): Promise<T> {
    const root = assertRoot(options.root ?? 0, this.size, 'reduce options.root');
    const { node, localRoot } = this.place(root);
    const work = buf.slice() as T;
    await this.reduceToLeaders(work, options);
    // The root node's leader holds the result; a root elsewhere in the node receives it from there.
    if (node === this.layout.nodeRank && localRoot !== 0) await this.local.broadcast(work, { ...timeoutOf(options), root: 0 });
    if (this.rank === root) buf.set(work);
    return buf;
  }

  /** Every rank's `buf` in global rank order, on every node's leader; null elsewhere. */
  async gatherToLeaders(buf: TypedArray, options: CollectiveOptions = {}): Promise<TypedArray[] | null> {
    const t = timeoutOf(options);
    const parts = await this.local.gather(buf, { ...t, root: 0 });
    if (!this.cross) return null;
    const mine = parts!;
    const Ctor = buf.constructor as new (n: number) => TypedArray;
    const packed = new Ctor(mine.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of mine) { packed.set(p, at); at += p.length; }
    const lengths = await this.cross.allGather(Int32Array.from(mine, (p) => p.length), t);
    const blocks = await this.cross.allGather(packed, t);
    const out: TypedArray[] = [];
    blocks.forEach((block, node) => {
      let offset = 0;
      for (const n of lengths[node]!) { out.push(block.subarray(offset, offset + n)); offset += n; }
    });
    return out;
  }

  async allGather(buf: TypedArray, options: CollectiveOptions = {}): Promise<TypedArray[]> {
    assertCommBuffer(buf, 'allGather buf');
    const t = timeoutOf(options);
    const all = await this.gatherToLeaders(buf, t);
    const counts = new Int32Array(this.size);
    if (all) all.forEach((p, r) => (counts[r] = p.length));
    await this.local.broadcast(counts, { ...t, root: 0 });
    const Ctor = storageOf(bufferDType(buf, undefined, 'allGather')) as unknown as new (n: number) => TypedArray;
    const packed = new Ctor(counts.reduce((s, n) => s + n, 0));
    if (all) { let at = 0; for (const p of all) { packed.set(p, at); at += p.length; } }
    await this.local.broadcast(packed, { ...t, root: 0 });
    const out: TypedArray[] = [];
    let at = 0;
    for (const n of counts) { out.push(packed.subarray(at, at + n)); at += n; }
    return out;
  }

  async gather(buf: TypedArray, options: RootOptions = {}): Promise<TypedArray[] | null> {
    const root = assertRoot(options.root ?? 0, this.size, 'gather options.root');
    const all = await this.allGather(buf, timeoutOf(options));
    return this.rank === root ? all : null;
  }

  /** The root's parts go out by broadcast (every rank then takes its own): simple, and rare in the runtime. */
  async scatter(parts: readonly TypedArray[] | null, options: RootOptions = {}): Promise<TypedArray> {
    const root = assertRoot(options.root ?? 0, this.size, 'scatter options.root');
    const t = timeoutOf(options);
    const isRoot = this.rank === root;
    if (isRoot && (!Array.isArray(parts) || parts.length !== this.size)) {
      const got = Array.isArray(parts) ? parts.length : String(parts);
      throw new TypeError(`scatter parts: expected an array of ${this.size} typed arrays on the root, got ${got}`);
    }
    // counts[size] carries the dtype code, so the other ranks can allocate the packed buffer.
    const counts = new Int32Array(this.size + 1);
    const codes = [Float32Array, Float64Array, Int32Array, Uint8Array];
    if (isRoot) {
      parts!.forEach((p, r) => (counts[r] = assertCommBuffer(p, `scatter parts[${r}]`).length));
      counts[this.size] = codes.findIndex((C) => parts![0] instanceof C);
    }
    await this.broadcast(counts, { ...t, root });
    const Ctor = codes[counts[this.size]!]!;
    const total = counts.subarray(0, this.size).reduce((s, n) => s + n, 0);
    const packed = new Ctor(total);
    if (isRoot) { let at = 0; for (const p of parts!) { packed.set(p as never, at); at += p.length; } }
    await this.broadcast(packed, { ...t, root });
    let start = 0;
    for (let r = 0; r < this.rank; r++) start += counts[r]!;
    return packed.slice(start, start + counts[this.rank]!);
  }
}
