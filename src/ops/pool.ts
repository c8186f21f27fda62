// 2-d pooling over the last two axes (NCHW or any input with ndim >= 2): max and average, each
// with a gradient op of its own (same attrs) so fast devices can implement the backward pass.
// Max pooling routes the gradient to the first maximum of each window (the first NaN, if any);
// its gradient op's gradient is a gather at those positions, so second order works too.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { floatResult, isBool, isFloat } from '../tensor/dtype.js';
import { OpRuntimeError, OpTypeError, type OpDef } from './op.js';

export type PoolAttrs = {
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  /** Implicit padding on both sides (ignored by max, zeros for average); each less than the kernel. */
  readonly padding: readonly [number, number];
};
export type AvgPoolAttrs = PoolAttrs & {
  /** Divide by the full kernel area (true, default) or by the number of non-padding elements. */
  readonly countIncludePad: boolean;
};

function outSize(n: number, k: number, s: number, p: number): number {
  return Math.floor((n + 2 * p - k) / s) + 1;
}

function checkPool(op: string, inputs: readonly TensorType[], a: PoolAttrs, arity: number): TensorType {
  if (inputs.length !== arity) throw new OpTypeError(op, inputs, `expects ${arity} inputs, got ${inputs.length}`);
  const x = inputs[0]!;
  if (x.ndim < 2) throw new OpTypeError(op, inputs, 'pools the last two axes, so the input needs ndim >= 2');
  if (isBool(x.dtype)) throw new OpTypeError(op, inputs, 'input must be numeric, not bool');
  const pair = (v: unknown, min: number) => Array.isArray(v) && v.length === 2 && v.every((d) => Number.isInteger(d) && d >= min);
  if (!pair(a.kernel, 1)) throw new OpTypeError(op, inputs, `kernel must be two integers >= 1, got ${JSON.stringify(a.kernel)}`);
  if (!pair(a.stride, 1)) throw new OpTypeError(op, inputs, `stride must be two integers >= 1, got ${JSON.stringify(a.stride)}`);
  if (!pair(a.padding, 0) || a.padding[0] >= a.kernel[0] || a.padding[1] >= a.kernel[1]) {
    throw new OpTypeError(op, inputs, `padding must be two integers >= 0 and less than the kernel ${a.kernel.join('x')}, got ${JSON.stringify(a.padding)}`);
  }
  for (const ax of [0, 1] as const) {
    // A size-1 (broadcastable) spatial axis gives a statically known output size.
    if (x.broadcastable[x.ndim - 2 + ax] && outSize(1, a.kernel[ax], a.stride[ax], a.padding[ax]) <= 0) {
      throw new OpTypeError(op, inputs, `output size is not positive: a size-1 axis with kernel ${a.kernel[ax]} and padding ${a.padding[ax]}`);
    }
  }
  return x;
}

/** The pooling geometry of an input shape (shared with the GPU lowering). */
export interface Windows { lead: number; h: number; w: number; oh: number; ow: number }

/** Resolves the windows of an input shape, or throws the op's OpRuntimeError. */
export function windows(op: string, shape: readonly number[], a: PoolAttrs): Windows {
  const h = shape[shape.length - 2]!;
  const w = shape[shape.length - 1]!;
  const oh = outSize(h, a.kernel[0], a.stride[0], a.padding[0]);
  const ow = outSize(w, a.kernel[1], a.stride[1], a.padding[1]);
  if (oh <= 0 || ow <= 0)
    throw new OpRuntimeError(op, `output size ${oh}x${ow} is not positive (input ${shapeToString(shape)}, kernel ${a.kernel.join('x')}, `
      + `stride ${a.stride.join('x')}, padding ${a.padding.join('x')})`);
  return { lead: shape.slice(0, -2).reduce((x, y) => x * y, 1), h, w, oh, ow };
}

export function outShape(shape: readonly number[], g: Windows): number[] {
  return [...shape.slice(0, -2), g.oh, g.ow];
}

/** Calls f(outIndex, inputIndices) for each window, inputIndices being the non-padding positions in row-major order. */
function forEachWindow(g: Windows, a: PoolAttrs, f: (o: number, idx: readonly number[]) => void): void {
  const idx: number[] = [];
  for (let l = 0; l < g.lead; l++) {
    for (let i = 0; i < g.oh; i++) {
      for (let j = 0; j < g.ow; j++) {
        idx.length = 0;
        const h0 = i * a.stride[0] - a.padding[0];
        const w0 = j * a.stride[1] - a.padding[1];
        for (let p = Math.max(0, h0); p < Math.min(g.h, h0 + a.kernel[0]); p++) {
          for (let q = Math.max(0, w0); q < Math.min(g.w, w0 + a.kernel[1]); q++) idx.push((l * g.h + p) * g.w + q);
        }
        f((l * g.oh + i) * g.ow + j, idx);
      }
    }
  }
}

/** Index of the first maximum of x over idx (the first NaN wins). */
function argmaxOf(x: ArrayLike<number>, idx: readonly number[]): number {
  let best = idx[0]!;
  let bv = x[best]!;
  for (let k = 1; k < idx.length && bv === bv; k++) {
    const v = x[idx[k]!]!;
    if (v > bv || v !== v) { best = idx[k]!; bv = v; }
  }
  return best;
}

/** Refuses an output gradient whose shape is not the pooling's output shape. */
export function checkOut(op: string, shape: readonly number[], g: Windows, gy: readonly number[]): void {
  const want = outShape(shape, g);
  if (gy.length !== want.length || gy.some((d, i) => d !== want[i])) {
    throw new OpRuntimeError(op, `output gradient has shape ${shapeToString(gy)}, pooling ${shapeToString(shape)} gives ${shapeToString(want)}`);
  }
}

const pooledPattern = (x: TensorType) => [...x.broadcastable.slice(0, -2), false, false];
export const poolOps: Record<'maxPool2d' | 'maxPool2dGrad' | 'maxPool2dGradGrad', OpDef<PoolAttrs>>
  & Record<'avgPool2d' | 'avgPool2dGrad', OpDef<AvgPoolAttrs>> = {
  maxPool2d: {
    name: 'maxPool2d',
    inferType: (inputs, attrs) => {
      const x = checkPool('maxPool2d', inputs, attrs, 1);
      return new TensorType(x.dtype, pooledPattern(x));
    },
    perform(inputs, attrs, out) {
      const x = inputs[0]!;
      const g = windows('maxPool2d', x.shape, attrs);
      const res = new NDArray(out.dtype, outShape(x.shape, g));
      forEachWindow(g, attrs, (o, idx) => { res.data[o] = x.data[argmaxOf(x.data, idx)]!; });
      return res;
    },
  } satisfies OpDef<PoolAttrs>,

  /** Inputs (x, gy): gy routed to the first maximum of each window of x (summed where windows overlap). */
  maxPool2dGrad: {
    name: 'maxPool2dGrad',
    inferType: (inputs, attrs) => {
      const x = checkPool('maxPool2dGrad', inputs, attrs, 2);
      return new TensorType(inputs[1]!.dtype, x.broadcastable);
    },
    perform(inputs, attrs, out) {
      const [x, gy] = inputs as [NDArray, NDArray];
      const g = windows('maxPool2dGrad', x.shape, attrs);
      checkOut('maxPool2dGrad', x.shape, g, gy.shape);
      const acc = new Float64Array(x.size);
      forEachWindow(g, attrs, (o, idx) => { acc[argmaxOf(x.data, idx)]! += gy.data[o]!; });
      const res = new NDArray(out.dtype, x.shape);
      res.data.set(acc);
      return res;
    },
  } satisfies OpDef<PoolAttrs>,

  /** Inputs (x, G) with G shaped like x: G read at the first maximum of each window of x (pooled shape). */
  maxPool2dGradGrad: {
    name: 'maxPool2dGradGrad',
    inferType: (inputs, attrs) => {
      const x = checkPool('maxPool2dGradGrad', inputs, attrs, 2);
      return new TensorType(inputs[1]!.dtype, pooledPattern(x));
    },
    perform(inputs, attrs, out) {
      const [x, gx] = inputs as [NDArray, NDArray];
      if (gx.ndim !== x.ndim || gx.shape.some((d, i) => d !== x.shape[i]))
        throw new OpRuntimeError('maxPool2dGradGrad', `gradient ${shapeToString(gx.shape)} and input ${shapeToString(x.shape)} differ in shape`);
      const g = windows('maxPool2dGradGrad', x.shape, attrs);
      const res = new NDArray(out.dtype, outShape(x.shape, g));
      forEachWindow(g, attrs, (o, idx) => { res.data[o] = gx.data[argmaxOf(x.data, idx)]!; });
      return res;
    },
  } satisfies OpDef<PoolAttrs>,

  avgPool2d: {
    name: 'avgPool2d',
    inferType: (inputs, attrs) => {
      const x = checkPool('avgPool2d', inputs, attrs, 1);
      return new TensorType(floatResult(x.dtype), pooledPattern(x));
    },
    perform(inputs, attrs, out) {
      const x = inputs[0]!;
      const g = windows('avgPool2d', x.shape, attrs);
      const res = new NDArray(out.dtype, outShape(x.shape, g));
      const area = attrs.kernel[0] * attrs.kernel[1];
      forEachWindow(g, attrs, (o, idx) => {
        let s = 0;
        for (const k of idx) s += x.data[k]!;
        res.data[o] = s / (attrs.countIncludePad ? area : idx.length);
      });
      return res;
    },
  } satisfies OpDef<AvgPoolAttrs>,

  /** Inputs (gy, xLike): each gy spread evenly (by the forward divisor) over its window; xLike gives the shape. */
  avgPool2dGrad: {
    name: 'avgPool2dGrad',
    inferType: (inputs, attrs) => {
      if (inputs.length !== 2) throw new OpTypeError('avgPool2dGrad', inputs, `expects 2 inputs, got ${inputs.length}`);
      const x = checkPool('avgPool2dGrad', [inputs[1]!], attrs, 1);
      return new TensorType(floatResult(inputs[0]!.dtype), x.broadcastable);
    },
    perform(inputs, attrs, out) {
      const [gy, x] = inputs as [NDArray, NDArray];
      const g = windows('avgPool2dGrad', x.shape, attrs);
      checkOut('avgPool2dGrad', x.shape, g, gy.shape);
      const acc = new Float64Array(x.size);
      const area = attrs.kernel[0] * attrs.kernel[1];
      forEachWindow(g, attrs, (o, idx) => {
        const v = gy.data[o]! / (attrs.countIncludePad ? area : idx.length);
        for (const k of idx) acc[k]! += v;
      });
      const res = new NDArray(out.dtype, x.shape);
      res.data.set(acc);
      return res;
    },
  } satisfies OpDef<AvgPoolAttrs>,
};
