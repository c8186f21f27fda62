// Host <-> device copies on the context's stream. Large uploads go through two pinned staging
// buffers in turn (the CPU fills one while the copy engine drains the other); small ones are copied
// into a private host buffer kept alive until the stream is next synchronized (fewer driver calls
// than the ring). Either way the upload is asynchronous and the caller's array may change as soon
// as upload returns. Host memory registered with registerHost (e.g. a SharedArrayBuffer holding
// Data) is copied directly at full DMA speed. Downloads copy straight into the result, then wait.
import type { CudaDriver } from './ffi/driver.js';
import type { CUevent, CUstream, HostPointer } from './ffi/types.js';

const CHUNK = 8 << 20;
/** Uploads up to this size go straight to the driver (fewer calls than the staging ring). */
const SMALL_UPLOAD = 1 << 20;

interface Slot { ptr: HostPointer; bytes: Uint8Array; event: CUevent; pending: boolean }

export class Staging {
  private slots: Slot[] | null = null;
  private next = 0;
  /** Registered host ranges: the buffer and the registered view. */
  private readonly registered = new Map<ArrayBufferLike, { view: Uint8Array; refs: number }>();
  private closed = false;
  /** Private copies of small uploads, alive until the stream is synchronized. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(private readonly cu: CudaDriver, private readonly stream: CUstream) {}

  private slot(): Slot {
    if (!this.slots) {
      this.slots = [0, 1].map(() => {
        const { ptr, buffer } = this.cu.memAllocHost(CHUNK);
        return { ptr, bytes: new Uint8Array(buffer), event: this.cu.eventCreate(2), pending: false };
      });
    }
    const s = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    if (s.pending) {
      this.cu.eventSynchronize(s.event);
      s.pending = false;
    }
    return s;
  }

  /** Whether `view` lies in host memory registered with registerHost. */
  isRegistered(view: ArrayBufferView): boolean {
    const r = this.registered.get(view.buffer);
    if (!r) return false;
    return view.byteOffset >= r.view.byteOffset && view.byteOffset + view.byteLength <= r.view.byteOffset + r.view.byteLength;
  }

  /** Page-locks a host array's whole buffer so later uploads from it are direct DMA (refcounted). */
  registerHost(view: ArrayBufferView): void {
    const r = this.registered.get(view.buffer);
    if (r) {
      r.refs++;
      return;
    }
    const whole = new Uint8Array(view.buffer, 0, view.buffer.byteLength);
    this.cu.memHostRegister(whole);
    this.registered.set(view.buffer, { view: whole, refs: 1 });
  }

  unregisterHost(view: ArrayBufferView): void {
    const r = this.registered.get(view.buffer);
    if (!r || --r.refs > 0) return;
    this.cu.streamSynchronize(this.stream);
    this.cu.memHostUnregister(r.view);
    this.registered.delete(view.buffer);
  }

  /** Copies `src` to device address `dst`, asynchronously on the stream. */
  upload(dst: bigint, src: ArrayBufferView): void {
    const total = src.byteLength;
    if (total === 0) return;
    if (this.isRegistered(src)) {
      this.cu.memcpyHtoDAsync(dst, src, this.stream);
      return;
    }
    const bytes = new Uint8Array(src.buffer, src.byteOffset, total);
    if (total <= SMALL_UPLOAD) {
      if (this.pendingBytes > 64 * SMALL_UPLOAD) this.synchronized();
      const copy = new Uint8Array(new ArrayBuffer(total)); // off the V8 heap, so it never moves
      copy.set(bytes);
      this.pending.push(copy);
      this.pendingBytes += total;
      this.cu.memcpyHtoDAsync(dst, copy, this.stream);
      return;
    }
    for (let off = 0; off < total; off += CHUNK) {
      const n = Math.min(CHUNK, total - off);
      const s = this.slot();
      s.bytes.set(bytes.subarray(off, off + n));
      this.cu.memcpyHtoDAsync(dst + BigInt(off), s.bytes, this.stream, n);
      this.cu.eventRecord(s.event, this.stream);
      s.pending = true;
    }
  }

  /** Copies `dst.byteLength` bytes from device address `src` after all queued work. */
  download(dst: ArrayBufferView, src: bigint): void {
    const total = dst.byteLength;
    if (total === 0) {
      this.synchronized();
      return;
    }
    this.cu.memcpyDtoHAsync(dst, src, this.stream);
    this.synchronized();
  }

  /** Waits for the stream; private upload copies are no longer needed. */
  synchronized(): void {
    this.cu.streamSynchronize(this.stream);
    this.pending = [];
    this.pendingBytes = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots ?? []) {
      this.cu.eventDestroy(s.event);
      this.cu.memFreeHost(s.ptr);
    }
    for (const r of this.registered.values()) this.cu.memHostUnregister(r.view);
    this.registered.clear();
    this.slots = null;
  }
}
