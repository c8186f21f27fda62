// A caching device allocator: freed blocks go to a free list per size class and are handed out
// again without cuMemAlloc, so a function called in a loop allocates from the driver only on its
// first calls. All work runs on one stream per context, so a block freed while a kernel still
// reads it can be reused at once: the next user is ordered after that kernel on the stream.
// Size classes are quarter powers of two (at most 25% waste), at least 512 bytes. Under the 'split'
// fit (SYNK_CUDA_ALLOC_FIT=split) requests of 1 MiB and more are served instead from segments cut into chunks
// (arena.ts): best fit, the rest split off, freed neighbours merged, sizes in 512-byte steps.
import { CudaOutOfMemoryError } from './ffi/errors.js';
import { Arena, type Segment } from './arena.js';

/** What the allocator needs from the driver (a fake in tests). */
export interface MemoryBackend {
  memAlloc(bytes: number): bigint;
  memFree(ptr: bigint): void;
  memGetInfo(): { free: number; total: number };
}

/** One device allocation, shared by every array that views it (reshapes alias their input). */
export class Block {
  refs = 1;
  constructor(readonly ptr: bigint, readonly size: number, readonly pool: CachingAllocator | null) {}

  retain(): void {
    this.refs++;
  }

  /** Drops one reference; the last one returns the block to its pool. */
  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.pool?.recycle(this);
  }
}

export interface AllocatorStats {
  /** Bytes in blocks handed out and not yet returned. */
  readonly inUse: number;
  /** Bytes held in free lists. */
  readonly cached: number;
  /** cuMemAlloc calls made so far. */
  readonly driverAllocs: number;
  /** Allocations served from a free list. */
  readonly reused: number;
  /** The most bytes in use at once since the device was made (or since resetPeak). */
  readonly peakInUse: number;
  /** Bytes held from the driver now by this allocator and every private pool made from it (graphs'), in use or cached. */
  readonly driverHeld: number;
  /** The most bytes held from the driver at once (this allocator and its pools) since the device was made or resetPeak. */
  readonly peakDriverHeld: number;
}

/** A cached block taken off a free list: its address and its own size class. */
interface Cached { readonly ptr: bigint; readonly size: number }

/** What an allocator and its private pools hold from the driver, shared between them: every pointer and its size. */
interface DriverLedger { held: number; peak: number; readonly blocks: Map<bigint, number> }

/** Under loose fit, requests of at least this many bytes may take a larger cached block (smaller ones: exact class only); split fit: the arena's. */
export const LOOSE_FIT_MIN_BYTES = 2 ** 20;
/** Under split fit, a segment asked of the driver is the request rounded up to this (the rest serves later requests). */
export const SEGMENT_ROUND_BYTES = 2 * 2 ** 20;

/** How cached memory serves requests: 'exact' size classes, 'loose' (up to LOOSE_FIT_RATIO), or 'split' (arena.ts). */
export type AllocFit = 'exact' | 'loose' | 'split';
/** Under loose fit, the largest cached block a request may take, as a multiple of its own size class. */
export const LOOSE_FIT_RATIO = 2;

export function sizeClass(bytes: number): number {
  if (bytes <= 512) return 512;
  const quarter = Math.max(512, 2 ** Math.floor(Math.log2(bytes)) / 4);
  return Math.ceil(bytes / quarter) * quarter;
}

export class CachingAllocator {
  private readonly free = new Map<number, bigint[]>();
  private inUse = 0;
  private cached = 0;
  private driverAllocs = 0;
  private reused = 0;
  private peakInUse = 0;
  private closed = false;
  private diverted: CachingAllocator | null = null;
  /** Requests of LOOSE_FIT_MIN_BYTES and more under split fit: segments from the driver, or chunks borrowed from the donor. */
  private readonly arena = new Arena();

  /** `freeAfterClose`: a private pool (a CUDA graph's) whose blocks go back to the driver when returned after close(). */
  constructor(
    private readonly backend: MemoryBackend,
    private readonly freeAfterClose = false,
    private readonly ledger: DriverLedger = { held: 0, peak: 0, blocks: new Map() },
    private readonly donor: CachingAllocator | null = null,
    /** See AllocFit; a pool inherits its donor's fit. */
    private readonly fit: AllocFit = donor?.fit ?? 'exact',
  ) {}

  /**
   * A private pool over the same driver memory: blocks it hands out never reach this allocator's
   * free lists, so a CUDA graph that bakes their addresses in can replay into them safely. The pool
   * first takes over blocks cached here (a graph is captured right after a plain run of the same
   * program, whose freed blocks have exactly the sizes the capture asks for), so capturing does not
   * double the memory a program holds. Taking them is safe: their last users were queued on the
   * same stream, before the graph's first replay.
   */
  makePool(): CachingAllocator {
    return new CachingAllocator(this.backend, true, this.ledger, this);
  }

  /**
   * A cached block for a request of class `size`: of that class, or under loose fit (requests of LOOSE_FIT_MIN_BYTES
   * and more) the smallest cached class up to LOOSE_FIT_RATIO times it, which keeps its own size for its return.
   * A private pool takes blocks from its donor this way, for good.
   */
  private takeCached(size: number): Cached | undefined {
    const exact = this.free.get(size)?.pop();
    if (exact !== undefined) {
      this.cached -= size;
      return { ptr: exact, size };
    }
    if (this.fit !== 'loose' || size < LOOSE_FIT_MIN_BYTES) return undefined;
    let best = 0;
    for (const [s, list] of this.free) if (s > size && s <= size * LOOSE_FIT_RATIO && list.length > 0 && (best === 0 || s < best)) best = s;
    if (best === 0) return undefined;
    this.cached -= best;
    return { ptr: this.free.get(best)!.pop()!, size: best };
  }

  /** While set, every allocation comes from `pool` (a graph being captured); null restores this allocator. */
  divert(pool: CachingAllocator | null): CachingAllocator | null {
    const before = this.diverted;
    this.diverted = pool;
    return before;
  }

  /** A block of at least `bytes` (a null-pointer block for 0 bytes). */
  allocate(bytes: number): Block {
    if (this.diverted) return this.diverted.allocate(bytes);
    if (this.closed) throw new Error('cuda allocator: the device is closed');
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cuda allocator: bad size ${bytes}`);
    if (bytes === 0) return new Block(0n, 0, null);
    if (this.fit === 'split' && bytes >= LOOSE_FIT_MIN_BYTES) return this.allocateLarge(Arena.sizeOf(bytes), bytes);
    const size = sizeClass(bytes);
    const cached = this.takeCached(size) ?? this.donor?.takeCached(size);
    if (cached !== undefined) {
      this.reused++;
      return this.handOut(cached.ptr, cached.size);
    }
    return this.handOut(this.fromLedger(size, bytes), size);
  }

  /** A new allocation from the driver, entered in the ledger. */
  private fromLedger(size: number, requested: number): bigint {
    const ptr = this.fromDriver(size, requested);
    this.driverAllocs++;
    this.ledger.blocks.set(ptr, size);
    this.ledger.held += size;
    this.ledger.peak = Math.max(this.ledger.peak, this.ledger.held);
    return ptr;
  }

  /**
   * A chunk of the arena: a free one that fits, else one borrowed from the donor (a graph's pool after a plain
   * run: the run's freed memory, as makePool says), else a new segment from the driver.
   */
  private allocateLarge(size: number, requested: number): Block {
    const lent = this.arena.fits(size) ? null : this.donor?.lend(size);
    if (lent) this.arena.addSegment(lent.ptr, lent.size, 'borrowed');
    if (this.arena.fits(size)) {
      this.reused++;
    } else {
      const segment = Math.ceil(size / SEGMENT_ROUND_BYTES) * SEGMENT_ROUND_BYTES;
      this.arena.addSegment(this.fromLedger(segment, requested), segment, 'driver');
    }
    const got = this.arena.take(size)!;
    return this.handOut(got.ptr, got.size);
  }

  /** A free chunk of at least `size` bytes lent to a private pool until the pool gives it back (returnLent). */
  private lend(size: number): { ptr: bigint; size: number } | undefined {
    return this.closed ? undefined : this.arena.take(size);
  }

  /** A chunk lent by lend() comes back. */
  private returnLent(ptr: bigint): void {
    if (!this.closed) this.arena.put(ptr); // else the device went away: freeAll returned the segment
  }

  /** A segment free as a whole leaves the arena, back to the driver or to the donor it was borrowed from. */
  private releaseSegment(segment: Segment): void {
    this.arena.removeSegment(segment);
    if (segment.origin === 'driver') this.giveBack(segment.base, segment.size);
    else this.donor?.returnLent(segment.base);
  }

  private handOut(ptr: bigint, size: number): Block {
    this.inUse += size;
    if (this.inUse > this.peakInUse) this.peakInUse = this.inUse;
    return new Block(ptr, size, this);
  }

  private fromDriver(size: number, requested: number): bigint {
    try {
      return this.backend.memAlloc(size);
    } catch (e) {
      if (!(e instanceof CudaOutOfMemoryError)) throw e;
      this.trim();
      this.donor?.trim();
      try {
        return this.backend.memAlloc(size);
      } catch (again) {
        if (!(again instanceof CudaOutOfMemoryError)) throw again;
        let info = '';
        try {
          const m = this.backend.memGetInfo();
          info = `, ${m.free} of ${m.total} bytes free on the device`;
        } catch {
          info = '';
        }
        throw new CudaOutOfMemoryError(again.library, again.call, again.code, again.status,
          `out of GPU memory allocating ${requested} bytes (${this.inUse} bytes in use by this device's arrays${info})`,
          again.message);
      }
    }
  }

  /** Called by Block.release: the block goes back to its free list. */
  recycle(block: Block): void {
    if (block.size === 0) return;
    this.inUse -= block.size;
    if (this.arena.has(block.ptr)) {
      const whole = this.arena.put(block.ptr);
      if (whole && this.closed && this.freeAfterClose) this.releaseSegment(whole);
      return;
    }
    if (this.closed) {
      // A closed pool gives its memory back; a closed device's context went away with all of it.
      if (this.freeAfterClose) this.giveBack(block.ptr, block.size);
      return;
    }
    const list = this.free.get(block.size) ?? [];
    list.push(block.ptr);
    this.free.set(block.size, list);
    this.cached += block.size;
  }

  /** Returns every cached block to the driver; the bytes released. */
  trim(): number {
    let released = 0;
    for (const [size, list] of this.free) {
      for (const ptr of list) {
        this.giveBack(ptr, size);
        released += size;
      }
    }
    this.free.clear();
    this.cached = 0;
    for (const segment of this.arena.wholeFreeSegments()) {
      this.releaseSegment(segment);
      released += segment.size;
    }
    return released;
  }

  private giveBack(ptr: bigint, size: number): void {
    // A block freed by freeAll() already went back (its last holder may release it after the device closed).
    if (!this.ledger.blocks.delete(ptr)) return;
    this.backend.memFree(ptr);
    this.ledger.held -= size;
  }

  /**
   * Closes this allocator and returns every block it or any of its pools still holds from the
   * driver, in use or not (the device is going away). Without it, memory held by arrays and graphs
   * not yet collected would outlive the device while another user keeps the primary context.
   */
  freeAll(): void {
    this.close();
    for (const [ptr] of [...this.ledger.blocks]) {
      this.ledger.blocks.delete(ptr);
      try {
        this.backend.memFree(ptr);
      } catch {
        // the context is going away: what could not be freed goes with it
      }
    }
    this.ledger.held = 0;
  }

  get stats(): AllocatorStats {
    return {
      inUse: this.inUse, cached: this.cached + this.arena.cached, driverAllocs: this.driverAllocs, reused: this.reused, peakInUse: this.peakInUse,
      driverHeld: this.ledger.held, peakDriverHeld: this.ledger.peak,
    };
  }

  /** Starts the peaks (peakInUse, peakDriverHeld) again from what is in use and held now. */
  resetPeak(): void {
    this.peakInUse = this.inUse;
    this.ledger.peak = this.ledger.held;
  }

  /** Frees the cache; blocks still in use go away with the context. */
  close(): void {
    if (this.closed) return;
    this.trim();
    this.closed = true;
  }
}
