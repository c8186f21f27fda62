// Indexing on the device: basic slicing as a view when the slice is contiguous and aligned, else a
// strided copy; set/inc of a slice as a copy of x then a strided copy (or add) of y into the region, concatenation as copies into regions of the output,
// and gathers along an axis / per row. A bad index raises the reference's error, never a GPU fault:
// take's indices are checked on the host (downloaded when only on the device); the per-row gathers
// of losses (takeRowwise, scatterRowwise) check on the device, in their kernels, so nothing waits.
import { shapeToString, sizeOf, type NDArray } from '../../../tensor/ndarray.js';
import type { DType } from '../../../tensor/dtype.js';
import { OpRuntimeError, type IntArg } from '../../../ops/op.js';
import { broadcastStrides } from '../../../ops/broadcast.js';
import { pySlice, type IndexEntry } from '../../../ops/indexing.js';
import { checkRowwise, checkRowwiseShape, rowwiseIndexError } from '../../../ops/nn.js';
import type { ProgramStep } from '../../../compile/program.js';
import { copyKernel, fillKernel, rowwiseKernels, takeKernel } from '../codegen/misc.js';
import { gatherStrided, stridedCopy } from './layout.js';
import { storageBytes } from '../storage.js';
import { contiguousStrides, f64, i32, i64, ptr, type Lowering, type RunState } from './types.js';
import type { KernelArg } from '../ffi/kernel-params.js';

interface Region { offset: number; shape: number[]; strides: number[] }

/** The elements x[entries] as an offset and per-kept-axis lengths and strides (NumPy basic indexing). */
function regionOf(op: string, s: RunState, st: ProgramStep, shape: readonly number[], entries: readonly IndexEntry[]): Region {
  const r = (a: IntArg | null): number | null => (a === null ? null : s.intArg(a, st));
  const strides = contiguousStrides(shape);
  const out: Region = { offset: 0, shape: [], strides: [] };
  shape.forEach((dim, axis) => {
    const e = entries[axis];
    if (e === undefined) {
      out.shape.push(dim);
      out.strides.push(strides[axis]!);
    } else if (e.kind === 'index') {
      const i = r(e.index)!;
      const j = i < 0 ? i + dim : i;
      if (j < 0 || j >= dim) throw new OpRuntimeError(op, `index ${i} is out of range for axis ${axis} of size ${dim} (shape ${shapeToString(shape)})`);
      out.offset += j * strides[axis]!;
    } else {
      const step = r(e.step);
      if (step === 0) throw new OpRuntimeError(op, `slice step on axis ${axis} is zero`);
      const p = pySlice(dim, r(e.start), r(e.stop), step);
      if (p.length > 0) out.offset += p.start * strides[axis]!;
      out.shape.push(p.length);
      out.strides.push(p.step * strides[axis]!);
    }
  });
  return out;
}

/** Whether the region's elements lie one after another in row-major order (axes of length 1 aside). */
function isContiguous(reg: Region): boolean {
  let expect = 1;
  for (let i = reg.shape.length - 1; i >= 0; i--) {
    const d = reg.shape[i]!;
    if (d === 1) continue;
    if (reg.strides[i] !== expect) return false;
    expect *= d;
  }
  return true;
}

/**
 * The byte alignment a slice must keep to be a view rather than a copy: the allocator's, so that every
 * consumer (vectorised kernels, cuBLASLt's and cuDNN's alignment-specific engines) sees what a fresh array gives.
 */
const VIEW_ALIGNMENT = 256;

export const lowerSubtensor: Lowering = (lc, step) => {
  const { entries } = step.attrs as { entries: readonly IndexEntry[] };
  const xdt = lc.slotDtype(step.inputs[0]!);
  const dt = lc.slotDtype(step.output);
  const kernel = copyKernel(lc.mb, xdt, dt, lc.slotNdim(step.output));
  // A contiguous slice held as its input is held (same dtype and storage, row-major) shares the input's block, when that
  // input is an intermediate: a view of an argument (a shared variable's buffer) as a result would keep a CUDA graph from
  // capturing the function (graph.ts), so slices of arguments stay copies.
  const mayView = xdt === dt && lc.slotStorage(step.output) === lc.slotStorage(step.inputs[0]!) && lc.slotLayout(step.output) === 'nchw' &&
    lc.program.slots[step.inputs[0]!]?.kind === 'step';
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const reg = regionOf('subtensor', s, st, x.shape, entries);
    if (mayView && x.layout === 'nchw' && x.storage === lc.slotStorage(step.output) && sizeOf(reg.shape) > 0 && isContiguous(reg) &&
        (x.ptr + BigInt(reg.offset * storageBytes(x.storage))) % BigInt(VIEW_ALIGNMENT) === 0n) {
      return { dev: x.slice(reg.offset, reg.shape) };
    }
    return { dev: gatherStrided(s, kernel, x, dt, reg.shape, reg.offset, reg.strides) };
  };
};

export const lowerIncSubtensor: Lowering = (lc, step) => {
  const { entries, set } = step.attrs as { entries: readonly IndexEntry[]; set: boolean };
  const dt = lc.slotDtype(step.output);
  const xdt = lc.slotDtype(step.inputs[0]!);
  const ydt = lc.slotDtype(step.inputs[1]!);
  const xNdim = lc.slotNdim(step.inputs[0]!);
  const regionNdim = xNdim - entries.filter((e) => e.kind === 'index').length;
  const copyX = xdt === dt ? null : copyKernel(lc.mb, xdt, dt, xNdim);
  const copyY = copyKernel(lc.mb, ydt, dt, regionNdim);
  return (s, st) => {
    const x = s.dev(st.inputs[0]!);
    const y = s.dev(st.inputs[1]!);
    const reg = regionOf('incSubtensor', s, st, x.shape, entries);
    const rs = reg.shape;
    const fits = y.shape.length <= rs.length && y.shape.every((d, i) => d === 1 || d === rs[rs.length - y.shape.length + i]);
    if (!fits) {
      throw new OpRuntimeError('incSubtensor', `y of shape ${shapeToString(y.shape)} does not broadcast to the selected region of shape ` +
        `${shapeToString(rs)} (x has shape ${shapeToString(x.shape)})`);
    }
    const out = s.alloc(dt, x.shape);
    if (copyX) stridedCopy(s, copyX, out, x, x.shape, 0, contiguousStrides(x.shape), 0, contiguousStrides(x.shape));
    else if (x.bytes > 0) s.ctx.cu.memcpyDtoDAsync(out.ptr, x.ptr, x.bytes, s.ctx.stream);
    stridedCopy(s, copyY, out, y, rs, 0, broadcastStrides(y.shape, rs), reg.offset, reg.strides, !set);
    return { dev: out };
  };
};

export const lowerConcatenate: Lowering = (lc, step) => {
  const { axis } = step.attrs as { axis: number };
  const dt = lc.slotDtype(step.output);
  const ndim = lc.slotNdim(step.output);
  const kernels = step.inputs.map((i) => copyKernel(lc.mb, lc.slotDtype(i), dt, ndim));
  return (s, st) => {
    const shapes = st.inputs.map((i) => s.shape(i));
    const first = shapes[0]!;
    for (const sh of shapes) {
      if (sh.some((d, i) => i !== axis && d !== first[i])) {
        throw new OpRuntimeError('concatenate', `shapes ${shapes.map(shapeToString).join(', ')} differ outside axis ${axis}`);
      }
    }
    const total = shapes.reduce((n, sh) => n + sh[axis]!, 0);
    const outShape = first.map((d, i) => (i === axis ? total : d));
    const out = s.alloc(dt, outShape);
    const dStrides = contiguousStrides(outShape);
    let col = 0;
    st.inputs.forEach((slot, k) => {
      const sh = shapes[k]!;
      if (sizeOf(sh) > 0) stridedCopy(s, kernels[k]!, out, s.dev(slot), sh, 0, contiguousStrides(sh), col * dStrides[axis]!, dStrides);
      col += sh[axis]!;
    });
    return { dev: out };
  };
};

function checkIndices(op: string, idx: NDArray, n: number, axis: number, xShape: readonly number[]): void {
  for (let k = 0; k < idx.size; k++) {
    const i = idx.data[k]!;
    const j = i < 0 ? i + n : i;
    if (j < 0 || j >= n) {
      throw new OpRuntimeError(op,
        `index ${i} (at position ${k} of the indices) is out of range for axis ${axis} of size ${n} (shape ${shapeToString(xShape)})`);
    }
  }
}

export const lowerTake: Lowering = (lc, step) => {
  const { axis } = step.attrs as { axis: number };
  const dt = lc.slotDtype(step.output);
  const kernel = takeKernel(lc.mb, dt, lc.slotDtype(step.inputs[1]!));
  return (s, st) => {
    const xShape = s.shape(st.inputs[0]!);
    const idxShape = s.shape(st.inputs[1]!);
    const n = xShape[axis]!;
    checkIndices('take', s.host(st.inputs[1]!), n, axis, xShape);
    const outShape = [...xShape.slice(0, axis), ...idxShape, ...xShape.slice(axis + 1)];
    const out = s.alloc(dt, outShape);
    if (out.size === 0) return { dev: out };
    const outer = sizeOf(xShape.slice(0, axis));
    const inner = sizeOf(xShape.slice(axis + 1));
    s.launch(kernel, s.ctx.gridFor(out.size), 256, [
      ptr(out), ptr(s.dev(st.inputs[0]!)), ptr(s.dev(st.inputs[1]!)), i64(outer), i64(sizeOf(idxShape)), i64(n), i64(inner),
    ]);
    return { dev: out };
  };
};

/**
 * The indices' range check: on the host when their values are there already, otherwise by the
 * kernel itself on the device (a download here would wait for all the work queued before it).
 */
function rowwiseCheck(s: RunState, op: string, tSlot: number, c: number, xShape: readonly number[]): KernelArg[] {
  const known = s.hostKnown(tSlot);
  if (known) {
    checkRowwise(op, xShape.slice(0, -1), known, c, xShape);
    return [ptr(0n), i32(0)];
  }
  const { flag, code } = s.deviceCheck((k) => rowwiseIndexError(op, k, c, xShape));
  return [ptr(flag), i32(code)];
}

export const lowerTakeRowwise: Lowering = (lc, step) => {
  const dt: DType = lc.slotDtype(step.output);
  const k = rowwiseKernels(lc.mb, dt, lc.slotDtype(step.inputs[1]!));
  return (s, st) => {
    const xShape = s.shape(st.inputs[0]!);
    const c = xShape[xShape.length - 1]!;
    const tShape = s.shape(st.inputs[1]!);
    checkRowwiseShape('takeRowwise', xShape.slice(0, -1), tShape, xShape);
    const out = s.alloc(dt, tShape);
    if (out.size === 0) return { dev: out };
    const check = rowwiseCheck(s, 'takeRowwise', st.inputs[1]!, c, xShape);
    s.launch(k.take, s.ctx.gridFor(out.size), 256, [ptr(out), ptr(s.dev(st.inputs[0]!)), ptr(s.dev(st.inputs[1]!)), i64(out.size), i64(c), ...check]);
    return { dev: out };
  };
};

export const lowerScatterRowwise: Lowering = (lc, step) => {
  const dt: DType = lc.slotDtype(step.output);
  const k = rowwiseKernels(lc.mb, dt, lc.slotDtype(step.inputs[1]!));
  const fill = fillKernel(lc.mb, dt);
  return (s, st) => {
    const like = s.shape(st.inputs[2]!);
    const gShape = s.shape(st.inputs[0]!);
    const c = like[like.length - 1]!;
    const tShape = s.shape(st.inputs[1]!);
    checkRowwiseShape('scatterRowwise', like.slice(0, -1), tShape, like);
    if (gShape.some((d, i) => d !== tShape[i])) {
      throw new OpRuntimeError('scatterRowwise', `values ${shapeToString(gShape)} and indices ${shapeToString(tShape)} differ in shape`);
    }
    const out = s.alloc(dt, like);
    if (out.size === 0) return { dev: out };
    s.launch(fill, s.ctx.gridFor(out.size), 256, [ptr(out), i64(out.size), f64(0)]);
    const rows = sizeOf(tShape);
    if (rows > 0) {
      const check = rowwiseCheck(s, 'scatterRowwise', st.inputs[1]!, c, like);
      s.launch(k.scatter, s.ctx.gridFor(rows), 256, [ptr(out), ptr(s.dev(st.inputs[0]!)), ptr(s.dev(st.inputs[1]!)), i64(rows), i64(c), ...check]);
    }
    return { dev: out };
  };
};
