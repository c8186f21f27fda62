// Row selection on the GPU for batchS over GPU-resident shared variables: a contiguous range is
// one device-to-device copy on the stream; an index list is uploaded and gathered by the same
// generated take kernel that T.take uses. Bounds are checked on the host before anything runs.
import { shapeToString, sizeOf } from '../../tensor/ndarray.js';
import { NDArray } from '../../tensor/ndarray.js';
import type { DType } from '../../tensor/dtype.js';
import type { CudaContext } from './context.js';
import type { CudaArray } from './cuda-array.js';
import { ModuleBuilder } from './codegen/module.js';
import { takeKernel } from './codegen/misc.js';
import { uploadArray } from './executable.js';
import { i64, ptr } from './lower/types.js';
import type { CUfunction } from './ffi/types.js';
import type { Rows } from '../rows.js';

/** Per context, the gather kernel of each dtype (int32 indices). */
const gathers = new WeakMap<CudaContext, Map<DType, { name: string; fn: CUfunction }>>();

function gatherKernel(ctx: CudaContext, dtype: DType): { name: string; fn: CUfunction } {
  let byType = gathers.get(ctx);
  if (!byType) gathers.set(ctx, (byType = new Map()));
  let entry = byType.get(dtype);
  if (!entry) {
    const mb = new ModuleBuilder();
    const name = takeKernel(mb, dtype, 'int32');
    let fn: CUfunction | undefined;
    for (const unit of mb.units()) for (const [k, f] of ctx.kernels.load(unit)) if (k === name) fn = f;
    if (!fn) throw new Error(`internal: gather kernel ${name} was not built`);
    byType.set(dtype, (entry = { name, fn }));
  }
  return entry;
}

/** The rows `selection` (a [start, stop) range or an index list) of `x` along axis 0, as a new array. */
export function takeDeviceRows(ctx: CudaContext, x: CudaArray, selection: Rows, what: string): CudaArray {
  if (x.shape.length === 0) throw new TypeError(`${what}: a scalar has no rows to select`);
  const n = x.shape[0]!;
  const tail = x.shape.slice(1);
  const rowElems = sizeOf(tail);
  const bytesPerRow = rowElems * (x.bytes / Math.max(1, x.size));
  if (selection.kind === 'range') {
    const rows = selection;
    if (rows.start < 0 || rows.stop > n || rows.start > rows.stop) throw new RangeError(`${what}: rows ${rows.start}..${rows.stop} are outside 0..${n}`);
    const out = ctx.alloc(x.dtype, [rows.stop - rows.start, ...tail]);
    if (out.bytes > 0) ctx.cu.memcpyDtoDAsync(out.ptr, x.ptr + BigInt(rows.start * bytesPerRow), out.bytes, ctx.stream);
    return out;
  }
  const rows = selection.indices;
  rows.forEach((r, i) => {
    if (r < 0 || r >= n) throw new RangeError(`${what}: row index ${r} (position ${i}) is outside 0..${n - 1} of shape ${shapeToString(x.shape)}`);
  });
  const out = ctx.alloc(x.dtype, [rows.length, ...tail]);
  if (out.size === 0) return out;
  const idx = uploadArray(ctx, new NDArray('int32', [rows.length], Int32Array.from(rows)));
  const k = gatherKernel(ctx, x.dtype);
  ctx.launch(k.fn, ctx.gridFor(out.size), 256, [ptr(out), ptr(x), ptr(idx), i64(1), i64(rows.length), i64(n), i64(rowElems)]);
  idx.release(); // the allocator hands the block out again only to later work on the same stream
  return out;
}
