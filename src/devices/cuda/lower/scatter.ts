// incTake on the GPU (take's gradient / embedding backward, and set/incSubtensor on a take):
// out = a device copy of x, then the scatter kernel of codegen/scatter.ts adds (atomicAdd, so
// repeated indices sum; float32, float64 and int32) or stores y's values at the indexed positions.
// Indices are downloaded and checked on the host first (as for take), so a bad index throws the
// reference's OpRuntimeError rather than faulting. For a set with repeated indices the host also
// picks each index's last occurrence, which is what the reference's sequential loop leaves, and
// only those positions are written. Adds into uint8 / bool (no atomics) run on the host.
import { shapeToString, sizeOf, type NDArray } from '../../../tensor/ndarray.js';
import { OpRuntimeError } from '../../../ops/op.js';
import { broadcastStrides } from '../../../ops/broadcast.js';
import type { IncTakeAttrs } from '../../../ops/indexing.js';
import { atomicAddable, incTakeKernel } from '../codegen/scatter.js';
import { hostFallback } from './host.js';
import { i64, ptr, type Lowering } from './types.js';

/** The indices wrapped into [0, n), or the reference's error for the first one out of range. */
function normalized(idx: NDArray, n: number, axis: number, xShape: readonly number[]): Int32Array {
  const out = new Int32Array(idx.size);
  for (let k = 0; k < idx.size; k++) {
    const i = idx.data[k]!;
    const j = i < 0 ? i + n : i;
    if (j < 0 || j >= n) {
      throw new OpRuntimeError('incTake',
        `index ${i} (at position ${k} of the indices) is out of range for axis ${axis} of size ${n} (shape ${shapeToString(xShape)})`);
    }
    out[k] = j;
  }
  return out;
}

/** Positions k holding the last occurrence of their index, ascending; null when no index repeats. */
function lastOccurrences(norm: Int32Array): Int32Array | null {
  const seen = new Set<number>();
  const keep: number[] = [];
  for (let k = norm.length - 1; k >= 0; k--) {
    if (seen.has(norm[k]!)) continue;
    seen.add(norm[k]!);
    keep.push(k);
  }
  return keep.length === norm.length ? null : Int32Array.from(keep.reverse());
}

/** Inputs (x, y, indices). */
export const lowerIncTake: Lowering = (lc, step) => {
  const { axis, set } = step.attrs as IncTakeAttrs;
  const dt = lc.slotDtype(step.output);
  if (!set && !atomicAddable(dt)) return hostFallback(lc, step);
  const regionNdim = lc.slotNdim(step.inputs[0]!) - 1 + lc.slotNdim(step.inputs[2]!);
  const kernel = incTakeKernel(lc.mb, dt, lc.slotDtype(step.inputs[1]!), lc.slotDtype(step.inputs[2]!), regionNdim, set);
  return (s, st) => {
    const xShape = s.shape(st.inputs[0]!);
    const yShape = s.shape(st.inputs[1]!);
    const idx = s.host(st.inputs[2]!);
    const n = xShape[axis]!;
    const norm = normalized(idx, n, axis, xShape);
    const rs = [...xShape.slice(0, axis), ...idx.shape, ...xShape.slice(axis + 1)];
    const fits = yShape.length <= rs.length && yShape.every((d, i) => d === 1 || d === rs[rs.length - yShape.length + i]);
    if (!fits) {
      throw new OpRuntimeError('incTake', `y of shape ${shapeToString(yShape)} does not broadcast to the selected region of shape ` +
        `${shapeToString(rs)} (x has shape ${shapeToString(xShape)})`);
    }
    const x = s.dev(st.inputs[0]!);
    const out = s.alloc(dt, xShape);
    if (out.size === 0) return { dev: out };
    s.ctx.cu.memcpyDtoDAsync(out.ptr, x.ptr, out.bytes, s.ctx.stream);
    if (sizeOf(rs) === 0) return { dev: out };
    const sel = set ? lastOccurrences(norm) : null;
    const selDev = sel ? s.temp('int32', [sel.length]) : null;
    if (sel && selDev) s.ctx.staging.upload(selDev.ptr, sel);
    const outer = sizeOf(xShape.slice(0, axis));
    const inner = sizeOf(xShape.slice(axis + 1));
    const nSel = sel ? sel.length : idx.size;
    s.launch(kernel, s.ctx.gridFor(outer * nSel * inner), 256, [
      ptr(out), ptr(s.dev(st.inputs[1]!)), ptr(s.dev(st.inputs[2]!)), ptr(selDev ? selDev.ptr : 0n),
      i64(outer), i64(idx.size), i64(nSel), i64(n), i64(inner),
      ...rs.map(i64), ...broadcastStrides(yShape, rs).map(i64),
    ]);
    selDev?.release();
    return { dev: out };
  };
};
