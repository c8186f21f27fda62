// Ops the gradient machinery itself relies on: shape queries, broadcasting to / summing back to
// another variable's shape, constant fills, dimshuffle and reshape.
import { NDArray, shapeToString, sizeOf } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import type { DType } from '../tensor/dtype.js';
import { castScalar } from '../tensor/dtype.js';
import { OpTypeError, OpRuntimeError, resolveIntArg, type IntArg, type OpDef } from './op.js';
import { broadcastShapes, mapBroadcast } from './broadcast.js';
import { reduceArray, transposeArray } from './layout.js';

export type DimshufflePattern = readonly (number | 'x')[];

export const structuralOps = {
  shapeI: {
    name: 'shapeI',
    inferType(inputs, attrs) {
      const t = inputs[0]!;
      if (attrs.axis < 0 || attrs.axis >= t.ndim) throw new OpTypeError('shapeI', inputs, `axis ${attrs.axis} out of range`);
      return TensorType.ofNdim('int32', 0);
    },
    perform: (inputs, attrs) => NDArray.scalar(inputs[0]!.shape[attrs.axis]!, 'int32'),
  } satisfies OpDef<{ readonly axis: number }>,

  /** Sums g over the axes where `like` is (or would broadcast as) size 1, giving like's shape. */
  sumToLike: {
    name: 'sumToLike',
    inferType(inputs) {
      const [g, like] = inputs as [TensorType, TensorType];
      if (like.ndim > g.ndim) throw new OpTypeError('sumToLike', inputs, 'target has more axes than the gradient');
      return new TensorType(g.dtype, like.broadcastable);
    },
    perform(inputs, _attrs, out) {
      const [g, like] = inputs as [NDArray, NDArray];
      const lead = g.ndim - like.ndim;
      const axes: number[] = [];
      for (let i = 0; i < g.ndim; i++) {
        if (i < lead) axes.push(i);
        else if (like.shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
        else if (like.shape[i - lead] !== g.shape[i])
          throw new OpRuntimeError('sumToLike', `cannot reduce ${shapeToString(g.shape)} to ${shapeToString(like.shape)}`);
      }
      if (axes.length === 0) return g;
      const r = reduceArray(g, axes, false, out.dtype, 0, (a, x) => a + x);
      return r.reshape(like.shape);
    },
  } satisfies OpDef,

  /** Broadcasts g to the shape of `like`. */
  broadcastLike: {
    name: 'broadcastLike',
    inferType(inputs) {
      const [g, like] = inputs as [TensorType, TensorType];
      if (g.ndim > like.ndim) throw new OpTypeError('broadcastLike', inputs, 'source has more axes than the target');
      return new TensorType(g.dtype, like.broadcastable);
    },
    perform(inputs, _attrs, out) {
      const [g, like] = inputs as [NDArray, NDArray];
      const shape = broadcastShapes('broadcastLike', [g.shape, like.shape]);
      if (shape.some((d, i) => d !== like.shape[i]))
        throw new OpRuntimeError('broadcastLike', `cannot broadcast ${shapeToString(g.shape)} to ${shapeToString(like.shape)}`);
      if (g.ndim === like.ndim && g.shape.every((d, i) => d === like.shape[i])) return g;
      return mapBroadcast('broadcastLike', [g, like], out.dtype, (a) => a);
    },
  } satisfies OpDef,

  /** An array shaped like the input, filled with a constant. */
  fillLike: {
    name: 'fillLike',
    inferType: (inputs, attrs) => new TensorType(attrs.dtype, inputs[0]!.broadcastable),
    perform: (inputs, attrs) => NDArray.full(inputs[0]!.shape, attrs.value, attrs.dtype),
  } satisfies OpDef<{ readonly value: number; readonly dtype: DType }>,

  /** Theano's dimshuffle: output axis i is input axis pattern[i], or a new size-1 axis for 'x'. */
  dimshuffle: {
    name: 'dimshuffle',
    inferType(inputs, attrs) {
      const t = inputs[0]!;
      const used = attrs.pattern.filter((p): p is number => p !== 'x');
      if (new Set(used).size !== used.length) throw new OpTypeError('dimshuffle', inputs, `pattern ${JSON.stringify(attrs.pattern)} repeats an axis`);
      for (const p of used) if (!Number.isInteger(p) || p < 0 || p >= t.ndim)
        throw new OpTypeError('dimshuffle', inputs, `axis ${p} in pattern ${JSON.stringify(attrs.pattern)} is out of range for ndim ${t.ndim}`);
      for (let i = 0; i < t.ndim; i++) {
        if (!used.includes(i) && !t.broadcastable[i])
          throw new OpTypeError('dimshuffle', inputs, `axis ${i} is dropped by pattern ${JSON.stringify(attrs.pattern)} but is not broadcastable`);
      }
      return new TensorType(t.dtype, attrs.pattern.map((p) => (p === 'x' ? true : t.broadcastable[p]!)));
    },
    perform(inputs, attrs) {
      const a = inputs[0]!;
      const perm = attrs.pattern.filter((p): p is number => p !== 'x');
      for (let i = 0; i < a.ndim; i++) if (!perm.includes(i) && a.shape[i] !== 1)
        throw new OpRuntimeError('dimshuffle', `dropped axis ${i} has size ${a.shape[i]}, not 1`);
      const isIdentity = perm.every((p, i) => p === i);
      const moved = isIdentity ? a : transposeArray(a, perm);
      return moved.reshape(attrs.pattern.map((p) => (p === 'x' ? 1 : a.shape[p]!)));
    },
  } satisfies OpDef<{ readonly pattern: DimshufflePattern }>,

  /** Reshape with dims known at build time or read from inputs; one dim may be -1. */
  reshape: {
    name: 'reshape',
    inferType(inputs, attrs) {
      const t = inputs[0]!;
      if (attrs.dims.filter((d) => d === -1).length > 1) throw new OpTypeError('reshape', inputs, 'at most one dimension may be -1');
      for (const d of attrs.dims) if (typeof d === 'number' && (!Number.isInteger(d) || d < -1)) throw new OpTypeError('reshape', inputs, `bad dimension ${d}`);
      return new TensorType(t.dtype, attrs.dims.map((d) => d === 1));
    },
    perform(inputs, attrs) {
      const a = inputs[0]!;
      const dims = attrs.dims.map((d) => resolveIntArg(d, inputs));
      const known = dims.filter((d) => d !== -1).reduce((x, y) => x * y, 1);
      // As NumPy: when the other dims multiply to 0, any size fits -1 (flatten uses no -1 for this).
      if (known === 0 && dims.includes(-1)) {
        const why = '-1 is ambiguous when the other dimensions multiply to 0';
        throw new OpRuntimeError('reshape', `cannot reshape array of size ${a.size} into ${shapeToString(dims)}: ${why}`);
      }
      const shape = dims.map((d) => (d === -1 ? a.size / known : d));
      if (!shape.every((d) => Number.isInteger(d) && d >= 0) || sizeOf(shape) !== a.size) {
        throw new OpRuntimeError('reshape', `cannot reshape array of shape ${shapeToString(a.shape)} (size ${a.size}) into ${shapeToString(dims)}`);
      }
      return a.reshape(shape);
    },
  } satisfies OpDef<{ readonly dims: readonly IntArg[] }>,

  /** Marks axes as broadcastable (run time checks they have size 1): Theano's addbroadcast / unbroadcast. */
  rebroadcast: {
    name: 'rebroadcast',
    inferType(inputs, attrs) {
      const t = inputs[0]!;
      for (const a of attrs.axes) if (a < 0 || a >= t.ndim) throw new OpTypeError('rebroadcast', inputs, `axis ${a} out of range`);
      return new TensorType(t.dtype, t.broadcastable.map((b, i) => (attrs.axes.includes(i) ? attrs.broadcastable : b)));
    },
    perform(inputs, attrs) {
      const a = inputs[0]!;
      if (attrs.broadcastable) for (const ax of attrs.axes) if (a.shape[ax] !== 1)
        throw new OpRuntimeError('rebroadcast', `axis ${ax} was marked broadcastable but has size ${a.shape[ax]}`);
      return a;
    },
  } satisfies OpDef<{ readonly axes: readonly number[]; readonly broadcastable: boolean }>,

  /** A constant value as a step (produced by folding); kept as an op so graphs print it. */
  scalarFromNumber: {
    name: 'scalarFromNumber',
    inferType: (_inputs, attrs) => TensorType.ofNdim(attrs.dtype, 0),
    perform: (_inputs, attrs) => NDArray.scalar(castScalar(attrs.value, attrs.dtype), attrs.dtype),
  } satisfies OpDef<{ readonly value: number; readonly dtype: DType }>,
};
