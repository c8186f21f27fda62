// Which Data the workers hold a handle of (the fast call path names Data by id), and when they let go.
//
// A handle keeps the Data's shared buffer alive in every worker, so the set must not only grow:
//  - a Data freed or reallocated (freeMemory, setValue, setLength, setShape) is released at once,
//    in a message of its own sent on a later turn of the event loop;
//  - a Data the controller collected (e.g. the one made for an NDArray input of each call) is
//    released with the next handles sent, or in a message of its own once RELEASE_FLUSH_BYTES wait;
//  - at most MAX_HELD handles (and MAX_HELD_BYTES) are kept: the least recently used beyond that are
//    released (a later call with one of them sends its handle again; only the handle travels).
// New handles count towards the controller's next forced collection (collect-garbage.ts), which is
// what finds the temporary Data of past calls dead.
// A Data between "handles sent" and "its call queued" is reserved: its release waits, so a call
// never finds its handle gone.
import type { Data } from './data.js';
import type { DataMsg } from './protocol.js';
import { maybeGarbageSoon } from './collect-garbage.js';

export const MAX_HELD = 256;
/** Beyond this many bytes held, the least recently used handles are released too (the Data in use stays). */
export const MAX_HELD_BYTES = 2 ** 30;
export const RELEASE_FLUSH_BYTES = 64 * 2 ** 20;

interface Held {
  version: number;
  bytes: number;
}

const caches = new Set<WorkerDataCache>();
const watched = new WeakSet<Data>();
const collected = new FinalizationRegistry<number>((id) => {
  for (const cache of caches) cache.release(id, false);
});

export class WorkerDataCache {
  /** id -> what the workers hold, least recently used first. */
  private readonly held = new Map<number, Held>();
  /** id -> bytes, waiting to be released. */
  private readonly pending = new Map<number, number>();
  private pendingBytes = 0;
  private heldBytes = 0;
  private readonly reserved = new Map<number, number>();
  private flushQueued = false;
  private closed = false;

  constructor(private readonly send: (msg: DataMsg) => Promise<unknown>) {
    caches.add(this);
  }

  /** How many handles the workers hold (for tests of the pruning). */
  get size(): number {
    return this.held.size;
  }

  /** Sends the handles of `datas` the workers lack (with pending releases) and reserves them until `started`. */
  async prepare(datas: readonly Data[]): Promise<void> {
    const fresh = new Map<number, Data>();
    for (const d of datas) {
      const h = this.held.get(d.id);
      if (h && h.version === d.version) {
        this.held.delete(d.id); // most recently used goes last
        this.held.set(d.id, h);
      } else fresh.set(d.id, d);
    }
    for (const d of datas) this.reserved.set(d.id, (this.reserved.get(d.id) ?? 0) + 1);
    try {
      for (const d of fresh.values()) {
        this.dropPending(d.id); // the new handle replaces the old one
        this.forget(d.id);
        this.held.set(d.id, { version: d.version, bytes: d.byteLength });
        this.heldBytes += d.byteLength;
        maybeGarbageSoon(d.byteLength);
        if (!watched.has(d)) {
          watched.add(d);
          collected.register(d, d.id);
        }
      }
      this.evict();
      const flush = this.pendingBytes >= RELEASE_FLUSH_BYTES || this.pending.size >= MAX_HELD;
      if (fresh.size === 0 && !flush) return;
      await this.send({ kind: 'data', handles: [...fresh.values()].map((d) => d.handle()), release: this.takeReleasable() });
    } catch (e) {
      this.started(datas.map((d) => d.id));
      for (const id of fresh.keys()) this.forget(id); // the workers may not have them
      throw e;
    }
  }

  /** The call using `ids` is queued (or will not be made): their releases may go. */
  started(ids: readonly number[]): void {
    let waiting = false;
    for (const id of ids) {
      const left = (this.reserved.get(id) ?? 1) - 1;
      if (left > 0) this.reserved.set(id, left);
      else this.reserved.delete(id);
      if (this.pending.has(id)) waiting = true;
    }
    if (waiting) this.scheduleFlush(); // a release held back while the call was being sent
  }

  /** The workers must drop Data `id`'s handle: now (`prompt`: it was freed) or with the next message. */
  release(id: number, prompt: boolean): void {
    const h = this.held.get(id);
    if (!h || this.closed) return;
    this.forget(id);
    this.pending.set(id, h.bytes);
    this.pendingBytes += h.bytes;
    if (prompt || this.pendingBytes >= RELEASE_FLUSH_BYTES) this.scheduleFlush();
  }

  /** The fork ends: its workers' handles go with them. */
  close(): void {
    this.closed = true;
    caches.delete(this);
    this.held.clear();
    this.heldBytes = 0;
    this.pending.clear();
    this.pendingBytes = 0;
  }

  private forget(id: number): void {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    this.heldBytes -= h.bytes;
  }

  private evict(): void {
    for (const [id] of this.held) {
      if (this.held.size <= MAX_HELD && this.heldBytes <= MAX_HELD_BYTES) break;
      if (!this.reserved.has(id)) this.release(id, false);
    }
  }

  private dropPending(id: number): void {
    const bytes = this.pending.get(id);
    if (bytes === undefined) return;
    this.pending.delete(id);
    this.pendingBytes -= bytes;
  }

  /** Pending releases not reserved by a call in flight (those wait for the next message). */
  private takeReleasable(): number[] {
    const out: number[] = [];
    for (const id of this.pending.keys()) if (!this.reserved.has(id)) out.push(id);
    for (const id of out) this.dropPending(id);
    return out;
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      if (this.closed) return;
      const release = this.takeReleasable();
      // A failed send means the pool failed: closing it frees every handle anyway.
      if (release.length > 0) void this.send({ kind: 'data', handles: [], release }).catch(() => undefined);
    }).unref();
  }
}
