// The CUDA device's array: a dtype, a shape and a view of a refcounted device block. Arrays are
// immutable once written, so reshapes share their input's block, and a small array keeps a host
// copy of its values (read by integer arguments and shape arithmetic without a device round trip).
// A contiguous slice shares its input's block too, at an offset (slice()).
// A float32 array may be stored in bfloat16 (the device's choice under the 'bf16' precision policy:
// lower/storage-plan.ts); its dtype stays float32, its storage says how its bytes hold the values.
import type { DType } from '../../tensor/dtype.js';
import { storageBytes, type Layout, type Storage } from './storage.js';
import { sizeOf, type NDArray } from '../../tensor/ndarray.js';
import type { DeviceArray } from '../device.js';
import type { Block } from './allocator.js';

/** Arrays no longer referenced give their block back, in case nobody called free(). */
const finalizer = new FinalizationRegistry<Block>((block) => block.release());

export class CudaArray implements DeviceArray {
  readonly shape: readonly number[];
  private released = false;

  constructor(
    readonly dtype: DType,
    shape: readonly number[],
    readonly block: Block,
    /** The context this array's memory belongs to. */
    readonly owner: object,
    /** The values on the host, when known and small. */
    readonly hostCopy?: NDArray,
    /** How the elements are held (bfloat16 only for float32 arrays). */
    readonly storage: Storage = dtype,
    /** The order of the elements in memory (storage.ts): 'nhwc' only for rank-4 arrays. */
    readonly layout: Layout = 'nchw',
    /** Where element 0 lies in the block (a contiguous slice of another array: CudaArray.slice). */
    readonly byteOffset = 0,
  ) {
    if (storage !== dtype && !(storage === 'bfloat16' && dtype === 'float32')) throw new TypeError(`cuda: a ${dtype} array cannot be held as ${storage}`);
    if (layout === 'nhwc' && shape.length !== 4) throw new TypeError(`cuda: only a rank-4 array can be held channels-last, not shape [${shape.join(', ')}]`);
    this.shape = Object.freeze([...shape]);
    finalizer.register(this, block, this);
  }

  /** The device address of element 0. */
  get ptr(): bigint {
    return this.byteOffset === 0 ? this.block.ptr : this.block.ptr + BigInt(this.byteOffset);
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  /** Bytes of the elements (the block may be larger). */
  get bytes(): number {
    return this.size * storageBytes(this.storage);
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Another array on the same block (another shape of the same size; the same shape for a channels-last array). */
  view(shape: readonly number[] = this.shape, hostCopy?: NDArray): CudaArray {
    if (this.released) throw new Error('cuda: use of a freed array');
    // A reshape reads the elements in row-major order, which a channels-last array does not have.
    if (this.layout !== 'nchw' && (shape.length !== 4 || shape.some((d, i) => d !== this.shape[i]))) {
      throw new Error(`internal: a reshape of a channels-last array to [${shape.join(', ')}]`);
    }
    this.block.retain();
    return new CudaArray(this.dtype, shape, this.block, this.owner, hostCopy ?? this.hostCopy?.reshape(shape), this.storage, this.layout, this.byteOffset);
  }

  /**
   * The `shape`-sized run of elements from `elementOffset` on, as an array on the same block: what a slice whose
   * elements lie contiguously (a row of a matrix, the means of batch norm's statistics) costs instead of a copy.
   * Row-major only, and in range (the caller checked the region).
   */
  slice(elementOffset: number, shape: readonly number[]): CudaArray {
    if (this.released) throw new Error('cuda: use of a freed array');
    if (this.layout !== 'nchw') throw new Error('internal: a slice of a channels-last array');
    if (!(Number.isInteger(elementOffset) && elementOffset >= 0 && elementOffset + sizeOf(shape) <= this.size)) {
      throw new Error(`internal: a slice of ${sizeOf(shape)} elements at ${elementOffset} of an array of ${this.size}`);
    }
    this.block.retain();
    const byteOffset = this.byteOffset + elementOffset * storageBytes(this.storage);
    return new CudaArray(this.dtype, shape, this.block, this.owner, undefined, this.storage, this.layout, byteOffset);
  }

  /** Another array on the same block whose contents were rewritten in place (a CUDA graph's update): no host copy. */
  rewritten(): CudaArray {
    if (this.released) throw new Error('cuda: use of a freed array');
    this.block.retain();
    return new CudaArray(this.dtype, this.shape, this.block, this.owner, undefined, this.storage, this.layout, this.byteOffset);
  }

  /** Drops this array's reference to its block (idempotent). */
  release(): void {
    if (this.released) return;
    this.released = true;
    finalizer.unregister(this);
    this.block.release();
  }
}
