// Shape ops: concatenate, alloc (broadcast a value to a shape), arange, oneHot, repeat, tile.
import { NDArray, shapeToString, sizeOf, stridesOf } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { castScalar, isFloat, isInteger, upcast, type DType } from '../tensor/dtype.js';
import { OpTypeError, OpRuntimeError, resolveIntArg, type IntArg, type OpDef } from './op.js';
import { forEachBroadcast } from './broadcast.js';

/** Checks that symbolic IntArgs refer to int scalar inputs at or after `first`. */
function checkIntArgs(op: string, inputs: readonly TensorType[], args: readonly IntArg[], first: number): void {
  for (const a of args) {
    if (typeof a === 'number') continue;
    const t = inputs[a.input];
    if (a.input < first || t === undefined) throw new OpTypeError(op, inputs, `argument refers to missing input ${a.input}`);
    if (t.ndim !== 0 || !isInteger(t.dtype)) throw new OpTypeError(op, inputs, `symbolic argument must be an int32 or uint8 scalar, got ${t}`);
  }
}

const store = (dtype: DType) => (isFloat(dtype) ? (v: number) => v : (v: number) => castScalar(v, dtype));

/** Reshapes g to `dims` (each repeated axis split in two), sums over `sumAxes`, and restores x's pattern. */
export const shapeOps = {
  /** Joins tensors of equal ndim along an existing axis (sizes must agree on every other axis). */
  concatenate: {
    name: 'concatenate',
    inferType(inputs, attrs) {
      if (inputs.length === 0) throw new OpTypeError('concatenate', inputs, 'needs at least one tensor');
      const ndim = inputs[0]!.ndim;
      if (ndim === 0) throw new OpTypeError('concatenate', inputs, 'zero-dimensional tensors cannot be concatenated');
      if (inputs.some((t) => t.ndim !== ndim)) throw new OpTypeError('concatenate', inputs, 'all inputs must have the same ndim');
      if (!Number.isInteger(attrs.axis) || attrs.axis < 0 || attrs.axis >= ndim)
        throw new OpTypeError('concatenate', inputs, `axis ${attrs.axis} is out of range for ndim ${ndim}`);
      const pattern = inputs[0]!.broadcastable.map((_, i) =>
        i === attrs.axis ? inputs.length === 1 && inputs[0]!.broadcastable[i]! : inputs.some((t) => t.broadcastable[i]));
      return new TensorType(upcast(...inputs.map((t) => t.dtype)), pattern);
    },
    perform(inputs, attrs, out) {
      const ax = attrs.axis;
      const first = inputs[0]!;
      for (const a of inputs) {
        if (a.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
          throw new OpRuntimeError('concatenate', `shapes ${inputs.map((b) => shapeToString(b.shape)).join(', ')} differ outside axis ${ax}`);
        }
      }
      const total = inputs.reduce((n, a) => n + a.shape[ax]!, 0);
      const shape = first.shape.map((d, i) => (i === ax ? total : d));
      const res = new NDArray(out.dtype, shape);
      const outer = sizeOf(shape.slice(0, ax));
      const inner = sizeOf(shape.slice(ax + 1));
      const put = store(out.dtype);
      let col = 0;
      for (const a of inputs) {
        const block = a.shape[ax]! * inner;
        for (let p = 0; p < outer; p++) {
          const dst = p * total * inner + col;
          for (let k = 0; k < block; k++) res.data[dst + k] = put(a.data[p * block + k]!);
        }
        col += block;
      }
      return res;
    },
  } satisfies OpDef<{ readonly axis: number }>,

  /** Theano's alloc: the value broadcast to the shape `dims` (NumPy's broadcast_to, copied). */
  alloc: {
    name: 'alloc',
    inferType(inputs, attrs) {
      const v = inputs[0]!;
      checkIntArgs('alloc', inputs, attrs.dims, 1);
      for (const d of attrs.dims) if (typeof d === 'number' && (!Number.isInteger(d) || d < 0)) throw new OpTypeError('alloc', inputs, `bad dimension ${d}`);
      if (v.ndim > attrs.dims.length)
        throw new OpTypeError('alloc', inputs, `the value has ndim ${v.ndim}, more than the ${attrs.dims.length} requested dimensions`);
      return new TensorType(v.dtype, attrs.dims.map((d) => d === 1));
    },
    perform(inputs, attrs, out) {
      const v = inputs[0]!;
      const dims = attrs.dims.map((d) => resolveIntArg(d, inputs));
      const lead = dims.length - v.ndim;
      if (dims.some((d) => d < 0) || v.shape.some((d, i) => d !== 1 && d !== dims[lead + i])) {
        throw new OpRuntimeError('alloc', `cannot broadcast a value of shape ${shapeToString(v.shape)} to ${shapeToString(dims)}`);
      }
      const res = new NDArray(out.dtype, dims);
      const put = store(out.dtype);
      forEachBroadcast(dims, [v.shape], (i, off) => { res.data[i] = put(v.data[off[0]!]!); });
      return res;
    },
  } satisfies OpDef<{ readonly dims: readonly IntArg[] }>,

  /** NumPy's arange: start, start + step, ... below stop (above it for a negative step). */
  arange: {
    name: 'arange',
    inferType(inputs, attrs) {
      const args = [attrs.start, attrs.stop, attrs.step];
      checkIntArgs('arange', inputs, args, 0);
      for (const a of args) if (typeof a === 'number' && !Number.isFinite(a)) throw new OpTypeError('arange', inputs, `arguments must be finite, got ${a}`);
      if (attrs.step === 0) throw new OpTypeError('arange', inputs, 'step cannot be zero');
      if (attrs.dtype === 'bool') throw new OpTypeError('arange', inputs, 'dtype bool is not supported');
      const { start, stop, step } = attrs;
      const known = typeof start === 'number' && typeof stop === 'number' && typeof step === 'number';
      return new TensorType(attrs.dtype, [known && Math.max(0, Math.ceil((stop - start) / step)) === 1]);
    },
    perform(inputs, attrs, out) {
      const [start, stop, step] = [attrs.start, attrs.stop, attrs.step].map((a) => resolveIntArg(a, inputs)) as [number, number, number];
      if (step === 0) throw new OpRuntimeError('arange', 'step is zero');
      const n = Math.max(0, Math.ceil((stop - start) / step));
      const res = new NDArray(out.dtype, [n]);
      const put = store(out.dtype);
      for (let i = 0; i < n; i++) res.data[i] = put(start + i * step);
      return res;
    },
  } satisfies OpDef<{ readonly start: IntArg; readonly stop: IntArg; readonly step: IntArg; readonly dtype: DType }>,

  /** One-hot encoding: a new last axis of size n with 1 at each index. */
  oneHot: {
    name: 'oneHot',
    inferType(inputs, attrs) {
      const idx = inputs[0]!;
      checkIntArgs('oneHot', inputs, [attrs.n], 1);
      if (!isInteger(idx.dtype)) throw new OpTypeError('oneHot', inputs, `indices must be an integer tensor (int32 or uint8), got ${idx}`);
      if (typeof attrs.n === 'number' && (!Number.isInteger(attrs.n) || attrs.n < 0))
        throw new OpTypeError('oneHot', inputs, `n must be a non-negative integer, got ${attrs.n}`);
      return new TensorType(attrs.dtype, [...idx.broadcastable, attrs.n === 1]);
    },
    perform(inputs, attrs, out) {
      const idx = inputs[0]!;
      const n = resolveIntArg(attrs.n, inputs);
      if (n < 0) throw new OpRuntimeError('oneHot', `n must be non-negative, got ${n}`);
      const res = new NDArray(out.dtype, [...idx.shape, n]);
      for (let k = 0; k < idx.size; k++) {
        const i = idx.data[k]!;
        if (i < 0 || i >= n) throw new OpRuntimeError('oneHot', `index ${i} (at position ${k}) is out of range for n = ${n}`);
        res.data[k * n + i] = 1;
      }
      return res;
    },
  } satisfies OpDef<{ readonly n: IntArg; readonly dtype: DType }>,

  /** Repeats each element `repeats` times along an axis (NumPy's repeat with a scalar count). */
  repeat: {
    name: 'repeat',
    inferType(inputs, attrs) {
      const x = inputs[0]!;
      if (!Number.isInteger(attrs.repeats) || attrs.repeats < 0)
        throw new OpTypeError('repeat', inputs, `repeats must be a non-negative integer, got ${attrs.repeats}`);
      if (!Number.isInteger(attrs.axis) || attrs.axis < 0 || attrs.axis >= x.ndim)
        throw new OpTypeError('repeat', inputs, `axis ${attrs.axis} is out of range for ndim ${x.ndim}`);
      return new TensorType(x.dtype, x.broadcastable.map((b, i) => (i === attrs.axis ? b && attrs.repeats === 1 : b)));
    },
    perform(inputs, attrs, out) {
      const x = inputs[0]!;
      const { axis, repeats } = attrs;
      const res = new NDArray(out.dtype, x.shape.map((d, i) => (i === axis ? d * repeats : d)));
      const outer = sizeOf(x.shape.slice(0, axis));
      const n = x.shape[axis]!;
      const inner = sizeOf(x.shape.slice(axis + 1));
      const put = store(out.dtype);
      let o = 0;
      for (let p = 0; p < outer; p++) for (let k = 0; k < n; k++) {
        const src = (p * n + k) * inner;
        for (let r = 0; r < repeats; r++) for (let q = 0; q < inner; q++) res.data[o++] = put(x.data[src + q]!);
      }
      return res;
    },
  } satisfies OpDef<{ readonly repeats: number; readonly axis: number }>,

  /** NumPy's tile with one count per axis (the builder aligns reps and ndim). */
  tile: {
    name: 'tile',
    inferType(inputs, attrs) {
      const x = inputs[0]!;
      if (attrs.reps.length !== x.ndim)
        throw new OpTypeError('tile', inputs, `reps ${JSON.stringify(attrs.reps)} must have one entry per axis (ndim ${x.ndim})`);
      for (const r of attrs.reps) if (!Number.isInteger(r) || r < 0)
        throw new OpTypeError('tile', inputs, `reps must be non-negative integers, got ${JSON.stringify(attrs.reps)}`);
      return new TensorType(x.dtype, x.broadcastable.map((b, i) => b && attrs.reps[i] === 1));
    },
    perform(inputs, attrs, out) {
      const x = inputs[0]!;
      const shape = x.shape.map((d, i) => d * attrs.reps[i]!);
      const res = new NDArray(out.dtype, shape);
      const strides = stridesOf(x.shape);
      const counter = new Array<number>(shape.length).fill(0);
      const put = store(out.dtype);
      for (let k = 0; k < res.size; k++) {
        let src = 0;
        for (let ax = 0; ax < shape.length; ax++) src += (counter[ax]! % x.shape[ax]!) * strides[ax]!;
        res.data[k] = put(x.data[src]!);
        for (let ax = shape.length - 1; ax >= 0; ax--) {
          if (++counter[ax]! < shape[ax]!) break;
          counter[ax] = 0;
        }
      }
      return res;
    },
  } satisfies OpDef<{ readonly reps: readonly number[] }>,
};
