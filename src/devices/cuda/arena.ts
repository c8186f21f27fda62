// The large-block part of the caching allocator under the 'split' fit (allocator.ts): device memory held
// as segments (what cuMemAlloc returned, or a chunk a CUDA graph's pool borrowed from its donor), each cut
// into chunks. A request takes the smallest free chunk that holds it (best fit) and leaves the rest free
// when the rest is worth keeping; a freed chunk merges with its free neighbours in the segment, so memory
// freed by one shape serves another (PyTorch's caching allocator does the same with its "split blocks").
// Only a segment that is free as a whole goes back to where it came from.

/** Where a segment's memory came from: the driver, or a chunk lent by another allocator's arena. */
export type SegmentOrigin = 'driver' | 'borrowed';

/** One extent of device memory and the chunks it is cut into. */
export interface Segment {
  readonly base: bigint;
  readonly size: number;
  readonly origin: SegmentOrigin;
}

interface Chunk {
  readonly ptr: bigint;
  size: number;
  free: boolean;
  prev: Chunk | null;
  next: Chunk | null;
  readonly segment: Segment;
}

/** Granularity of chunk sizes: the allocator's alignment (every chunk starts 256-byte aligned at least). */
export const CHUNK_ALIGN = 512;
/** A free remainder smaller than this stays with the chunk handed out (not worth a chunk of its own). */
export const MIN_SPLIT_BYTES = 2 ** 20;

const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

export class Arena {
  private readonly chunks = new Map<bigint, Chunk>();
  /** The free chunks, by size then address (binary search for the best fit). */
  private readonly free: Chunk[] = [];
  private freeBytes = 0;

  /** Bytes in free chunks. */
  get cached(): number {
    return this.freeBytes;
  }

  /** The size a request of `bytes` takes. */
  static sizeOf(bytes: number): number {
    return roundUp(bytes, CHUNK_ALIGN);
  }

  /** Whether a free chunk of at least `size` bytes is here (take would succeed). */
  fits(size: number): boolean {
    return this.free[this.lowerBound(size, 0n)] !== undefined;
  }

  /** Whether `ptr` is a chunk of this arena (in use or free). */
  has(ptr: bigint): boolean {
    return this.chunks.has(ptr);
  }

  /** Adds a segment as one free chunk. */
  addSegment(base: bigint, size: number, origin: SegmentOrigin): void {
    if (this.chunks.has(base)) throw new Error(`internal: arena segment at 0x${base.toString(16)} added twice`);
    const chunk: Chunk = { ptr: base, size, free: true, prev: null, next: null, segment: { base, size, origin } };
    this.chunks.set(base, chunk);
    this.insertFree(chunk);
  }

  /**
   * The smallest free chunk of at least `size` bytes (a multiple of CHUNK_ALIGN), marked in use, with what it
   * has beyond `size` split off as a free chunk when that is MIN_SPLIT_BYTES or more; undefined when none fits.
   */
  take(size: number): { ptr: bigint; size: number } | undefined {
    const i = this.lowerBound(size, 0n);
    const chunk = this.free[i];
    if (!chunk) return undefined;
    this.removeFree(i);
    chunk.free = false;
    const rest = chunk.size - size;
    if (rest >= MIN_SPLIT_BYTES) {
      const tail: Chunk = { ptr: chunk.ptr + BigInt(size), size: rest, free: true, prev: chunk, next: chunk.next, segment: chunk.segment };
      if (chunk.next) chunk.next.prev = tail;
      chunk.next = tail;
      chunk.size = size;
      this.chunks.set(tail.ptr, tail);
      this.insertFree(tail);
    }
    return { ptr: chunk.ptr, size: chunk.size };
  }

  /** Frees the chunk at `ptr`, merged with its free neighbours; the segment when it is now free as a whole. */
  put(ptr: bigint): Segment | null {
    let chunk = this.chunks.get(ptr);
    if (!chunk || chunk.free) throw new Error(`internal: arena chunk at 0x${ptr.toString(16)} is not in use`);
    const prev = chunk.prev;
    if (prev?.free) {
      this.removeFree(this.indexOf(prev));
      this.absorb(prev, chunk);
      chunk = prev;
    }
    const next = chunk.next;
    if (next?.free) {
      this.removeFree(this.indexOf(next));
      this.absorb(chunk, next);
    }
    chunk.free = true;
    this.insertFree(chunk);
    return chunk.prev === null && chunk.next === null ? chunk.segment : null;
  }

  /** Removes a segment that is free as a whole (put returned it, or wholeFreeSegments listed it). */
  removeSegment(segment: Segment): void {
    const chunk = this.chunks.get(segment.base);
    if (!chunk || !chunk.free || chunk.prev || chunk.next || chunk.segment !== segment) {
      throw new Error(`internal: arena segment at 0x${segment.base.toString(16)} is not free as a whole`);
    }
    this.removeFree(this.indexOf(chunk));
    this.chunks.delete(segment.base);
  }

  /** The segments that are free as a whole. */
  wholeFreeSegments(): Segment[] {
    return this.free.filter((c) => c.prev === null && c.next === null).map((c) => c.segment);
  }

  /** Every segment still here (in use or not). */
  segments(): Segment[] {
    return [...this.chunks.values()].filter((c) => c.prev === null).map((c) => c.segment);
  }

  /** `right` (the chunk after `left` in their segment) becomes part of `left`. */
  private absorb(left: Chunk, right: Chunk): void {
    left.size += right.size;
    left.next = right.next;
    if (right.next) right.next.prev = left;
    this.chunks.delete(right.ptr);
  }

  private lowerBound(size: number, ptr: bigint): number {
    let lo = 0;
    let hi = this.free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const c = this.free[mid]!;
      if (c.size < size || (c.size === size && c.ptr < ptr)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexOf(chunk: Chunk): number {
    const i = this.lowerBound(chunk.size, chunk.ptr);
    if (this.free[i] !== chunk) throw new Error(`internal: arena free list lost the chunk at 0x${chunk.ptr.toString(16)}`);
    return i;
  }

  private insertFree(chunk: Chunk): void {
    this.free.splice(this.lowerBound(chunk.size, chunk.ptr), 0, chunk);
    this.freeBytes += chunk.size;
  }

  private removeFree(i: number): void {
    const [chunk] = this.free.splice(i, 1);
    this.freeBytes -= chunk!.size;
  }
}
