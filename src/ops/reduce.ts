// Reductions over one, several or all axes, with keepdims.
import { NDArray } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { floatResult, isBool, type DType } from '../tensor/dtype.js';
import { OpTypeError, OpRuntimeError, type OpDef } from './op.js';
import { reduceArray, reducedShape } from './layout.js';
import { nanMax, nanMin } from './scalar-math.js';

export type ReduceAttrs = {
  /** Normalised (non-negative, sorted, unique) axes; all axes when the user gave none. */
  readonly axes: readonly number[];
  readonly keepdims: boolean;
};

function reducedType(op: string, inputs: readonly TensorType[], attrs: ReduceAttrs, dtype: DType): TensorType {
  const t = inputs[0]!;
  for (const a of attrs.axes) if (!Number.isInteger(a) || a < 0 || a >= t.ndim)
    throw new OpTypeError(op, inputs, `axis ${a} is out of range for ndim ${t.ndim}`);
  if (new Set(attrs.axes).size !== attrs.axes.length) throw new OpTypeError(op, inputs, `axes ${JSON.stringify(attrs.axes)} repeat an axis`);
  const pattern: boolean[] = [];
  t.broadcastable.forEach((b, i) => {
    if (!attrs.axes.includes(i)) pattern.push(b);
    else if (attrs.keepdims) pattern.push(true);
  });
  return new TensorType(dtype, pattern);
}

type Rule = 'same' | 'float' | 'int32' | 'bool' | 'sumLike';

function outDtype(rule: Rule, d: DType): DType {
  switch (rule) {
    case 'same': return d;
    case 'float': return floatResult(d);
    case 'int32': return 'int32';
    case 'bool': return 'bool';
    case 'sumLike': return isBool(d) || d === 'uint8' ? 'int32' : d; // NumPy sums small ints into a wider int
    default: return rule satisfies never;
  }
}

function reduction(name: string, rule: Rule, init: number, combine: (a: number, x: number) => number,
  finish: ((acc: number, n: number) => number) | undefined, emptyError?: boolean): OpDef<ReduceAttrs> {
  return {
    name,
    inferType: (inputs, attrs) => reducedType(name, inputs, attrs, outDtype(rule, inputs[0]!.dtype)),
    perform(inputs, attrs, out) {
      const a = inputs[0]!;
      if (emptyError && attrs.axes.some((ax) => a.shape[ax] === 0)) throw new OpRuntimeError(name, 'zero-size reduction has no identity');
      return reduceArray(a, attrs.axes, attrs.keepdims, out.dtype, init, combine, finish);
    },
  } satisfies OpDef<ReduceAttrs>;
}

/** var's divisor: n - ddof, never negative (NumPy: ddof >= n gives inf, or NaN for no deviation). */
function divisor(n: number, ddof: number): number {
  return Math.max(n - ddof, 0);
}

function argReduction(name: string, better: (a: number, b: number) => boolean): OpDef<ReduceAttrs> {
  return {
    name,
    inferType(inputs, attrs) {
      if (attrs.axes.length !== 1 && attrs.axes.length !== inputs[0]!.ndim) throw new OpTypeError(name, inputs, 'takes one axis or all axes');
      return reducedType(name, inputs, attrs, 'int32');
    },
    perform(inputs, attrs) {
      const a = inputs[0]!;
      const all = attrs.axes.length === a.ndim;
      if (attrs.axes.some((ax) => a.shape[ax] === 0)) throw new OpRuntimeError(name, 'attempt to get the arg of an empty sequence');
      const axis = all ? 0 : attrs.axes[0]!;
      const src = all ? a.reshape([a.size]) : a;
      const outer = src.shape.slice(0, axis).reduce((x, y) => x * y, 1);
      const n = src.shape[axis]!;
      const inner = src.shape.slice(axis + 1).reduce((x, y) => x * y, 1);
      const out = new Int32Array(outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let best = 0;
          let bestV = src.data[o * n * inner + i]!;
          for (let k = 1; k < n && bestV === bestV; k++) {
            const v = src.data[(o * n + k) * inner + i]!;
            if (v !== v || better(v, bestV)) { best = k; bestV = v; }
          }
          out[o * inner + i] = best;
        }
      }
      return new NDArray('int32', reducedShape(a.shape, attrs.axes, attrs.keepdims), out);
    },
  } satisfies OpDef<ReduceAttrs>;
}

export const reduceOps = {
  sum: reduction('sum', 'sumLike', 0, (a, x) => a + x, undefined),
  prod: reduction('prod', 'sumLike', 1, (a, x) => a * x, undefined),
  mean: reduction('mean', 'float', 0, (a, x) => a + x, (acc, n) => acc / n),
  max: reduction('max', 'same', -Infinity, nanMax, undefined, true),
  min: reduction('min', 'same', Infinity, nanMin, undefined, true),
  all: reduction('all', 'bool', 1, (a, x) => (a !== 0 && x !== 0 ? 1 : 0), undefined),
  any: reduction('any', 'bool', 0, (a, x) => (a !== 0 || x !== 0 ? 1 : 0), undefined),
  argmax: argReduction('argmax', (a, b) => a > b),
  argmin: argReduction('argmin', (a, b) => a < b),

  /** Variance with `ddof` (0: population, 1: sample). */
  var: {
    name: 'var',
    inferType(inputs, attrs) {
      if (typeof attrs.ddof !== 'number' || !Number.isFinite(attrs.ddof)) {
        throw new OpTypeError('var', inputs, `ddof must be a finite number, got ${String(attrs.ddof)}`);
      }
      return reducedType('var', inputs, attrs, floatResult(inputs[0]!.dtype));
    },
    perform(inputs, attrs, out) {
      const a = inputs[0]!;
      const mean = reduceArray(a, attrs.axes, true, 'float64', 0, (s, x) => s + x, (s, n) => s / n);
      const dev = new NDArray('float64', a.shape);
      const kept = mean.shape;
      // squared deviations, then their (n - ddof)-normalised sum
      let idx = 0;
      const strides = kept.map((_, i) => kept.slice(i + 1).reduce((x, y) => x * y, 1));
      const counter = new Array<number>(a.ndim).fill(0);
      for (let i = 0; i < a.size; i++) {
        let off = 0;
        for (let ax = 0; ax < a.ndim; ax++) off += kept[ax] === 1 ? 0 : counter[ax]! * strides[ax]!;
        const d = a.data[i]! - mean.data[off]!;
        dev.data[idx++] = d * d;
        for (let ax = a.ndim - 1; ax >= 0; ax--) { if (++counter[ax]! < a.shape[ax]!) break; counter[ax] = 0; }
      }
      return reduceArray(dev, attrs.axes, attrs.keepdims, out.dtype, 0, (s, x) => s + x, (s, n) => s / divisor(n, attrs.ddof));
    },
  } satisfies OpDef<ReduceAttrs & { readonly ddof: number }>,

  /** log(sum(exp(x))) computed stably by shifting by the max. */
  logsumexp: {
    name: 'logsumexp',
    inferType: (inputs, attrs) => reducedType('logsumexp', inputs, attrs, floatResult(inputs[0]!.dtype)),
    perform(inputs, attrs, out) {
      const a = inputs[0]!;
      const m = reduceArray(a, attrs.axes, true, 'float64', -Infinity, nanMax);
      const shifted = new NDArray('float64', a.shape);
      const kept = m.shape;
      const strides = kept.map((_, i) => kept.slice(i + 1).reduce((x, y) => x * y, 1));
      const counter = new Array<number>(a.ndim).fill(0);
      for (let i = 0; i < a.size; i++) {
        let off = 0;
        for (let ax = 0; ax < a.ndim; ax++) off += kept[ax] === 1 ? 0 : counter[ax]! * strides[ax]!;
        const mv = m.data[off]!;
        shifted.data[i] = Number.isFinite(mv) ? Math.exp(a.data[i]! - mv) : a.data[i] === mv ? 1 : 0;
        for (let ax = a.ndim - 1; ax >= 0; ax--) { if (++counter[ax]! < a.shape[ax]!) break; counter[ax] = 0; }
      }
      const s = reduceArray(shifted, attrs.axes, true, 'float64', 0, (acc, x) => acc + x);
      const res = new NDArray(out.dtype, reducedShape(a.shape, attrs.axes, attrs.keepdims));
      for (let i = 0; i < res.size; i++) {
        const mv = m.data[i]!;
        res.data[i] = Number.isFinite(mv) ? mv + Math.log(s.data[i]!) : mv;
      }
      return res;
    },
  } satisfies OpDef<ReduceAttrs>,
};
