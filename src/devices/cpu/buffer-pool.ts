// Buffers by (dtype, size), reused across a program's steps and across calls. Each executable
// owns one pool; a buffer is handed out by `take` and comes back by `give`.
import { storageOf, type DType, type TypedArray } from '../../tensor/dtype.js';

export class BufferPool {
  private readonly free = new Map<string, TypedArray[]>();
  /** Buffers this pool created (a pool that reuses well stops counting after the first call). */
  allocations = 0;
  /** Bytes held in free lists. */
  private heldBytes = 0;

  take(dtype: DType, size: number): TypedArray {
    const list = this.free.get(keyOf(dtype, size));
    const reused = list?.pop();
    if (reused !== undefined) {
      this.heldBytes -= reused.byteLength;
      return reused;
    }
    this.allocations++;
    return new (storageOf(dtype))(size);
  }

  /** A free buffer of exactly this dtype and size, or undefined (nothing is allocated). */
  takeFree(dtype: DType, size: number): TypedArray | undefined {
    const reused = this.free.get(keyOf(dtype, size))?.pop();
    if (reused !== undefined) this.heldBytes -= reused.byteLength;
    return reused;
  }

  /** Free buffers of this dtype and size. */
  freeCount(dtype: DType, size: number): number {
    return this.free.get(keyOf(dtype, size))?.length ?? 0;
  }

  give(dtype: DType, buffer: TypedArray): void {
    const key = keyOf(dtype, buffer.length);
    let list = this.free.get(key);
    if (list === undefined) {
      list = [];
      this.free.set(key, list);
    }
    list.push(buffer);
    this.heldBytes += buffer.byteLength;
  }

  /** Bytes currently idle in the pool. */
  get idleBytes(): number {
    return this.heldBytes;
  }

  clear(): void {
    this.free.clear();
    this.heldBytes = 0;
  }
}

function keyOf(dtype: DType, size: number): string {
  return `${dtype}:${size}`;
}
