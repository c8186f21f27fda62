// softmax, logSoftmax and the fused cross-entropy pick, one pass per row (slice along the axis),
// with the same max shift and Inf/NaN behaviour as the reference (src/ops/nn.ts).
import { NDArray } from '../../tensor/ndarray.js';
import { TensorType } from '../../tensor/type.js';
import type { TypedArray } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import { getOpDef } from '../../ops/apply.js';
import type { AxisAttrs } from '../../ops/nn.js';
import type { Kernel } from './kernel-types.js';

/** The stable shift of one slice: its max, or 0 when that is not finite (as the reference). */
function shift(x: TypedArray, base: number, n: number, stride: number): number {
  let m = -Infinity;
  for (let k = 0, p = base; k < n; k++, p += stride) {
    const v = x[p]!;
    if (v > m) m = v;
  }
  return Number.isFinite(m) ? m : 0;
}

function alongAxis(kind: 'softmax' | 'logSoftmax'): Kernel<AxisAttrs> {
  return (step) => {
    const dtype = step.outType.dtype;
    const axis = step.attrs.axis;
    return (inputs, rt) => {
      const a = inputs[0]!;
      const n = a.shape[axis]!;
      let inner = 1;
      for (let i = axis + 1; i < a.ndim; i++) inner *= a.shape[i]!;
      const outer = n * inner === 0 ? 0 : a.size / (n * inner);
      const res = rt.output(dtype, a.shape, true);
      const x = a.data;
      const y = res.data;
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * n * inner + i;
          const m = shift(x, base, n, inner);
          let s = 0;
          if (kind === 'softmax') {
            for (let k = 0, p = base; k < n; k++, p += inner) {
              const e = Math.exp(x[p]! - m);
              s += e;
              y[p] = e;
            }
            for (let k = 0, p = base; k < n; k++, p += inner) y[p] = y[p]! / s;
          } else {
            for (let k = 0, p = base; k < n; k++, p += inner) s += Math.exp(x[p]! - m);
            const l = Math.log(s);
            for (let k = 0, p = base; k < n; k++, p += inner) y[p] = x[p]! - m - l;
          }
        }
      }
      return res;
    };
  };
}

export const softmaxKernel = alongAxis('softmax');
export const logSoftmaxKernel = alongAxis('logSoftmax');

/**
 * takeRowwise(logSoftmax(z, last axis), t) in one pass: z[r, t_r] - max_r - log(sum exp(z[r] - max_r)).
 * Invalid indices or shapes go through the two reference performs, which raise the usual errors.
 */
export const crossEntropyKernel: Kernel<Attrs> = (step) => {
  const dtype = step.outType.dtype;
  const zType = step.inputTypes[0]!;
  const lsm = getOpDef('logSoftmax');
  const pick = getOpDef('takeRowwise');
  const slow = (z: NDArray, t: NDArray): NDArray =>
    pick.perform([lsm.perform([z], { axis: zType.ndim - 1 }, new TensorType(zType.dtype, zType.broadcastable)), t], {}, step.outType);
  return (inputs, rt) => {
    const [z, t] = inputs as [NDArray, NDArray];
    const c = z.shape[z.ndim - 1]!;
    const rows = t.size;
    const shapeOk = t.ndim === z.ndim - 1 && t.shape.every((d, i) => d === z.shape[i]);
    if (!shapeOk) return slow(z, t);
    const T = t.data;
    for (let r = 0; r < rows; r++) {
      const k = T[r]!;
      if (!(k >= 0 && k < c)) return slow(z, t);
    }
    const res = rt.output(dtype, t.shape);
    const x = z.data;
    const y = res.data;
    for (let r = 0; r < rows; r++) {
      const base = r * c;
      const m = shift(x, base, c, 1);
      let s = 0;
      for (let k = 0; k < c; k++) s += Math.exp(x[base + k]! - m);
      y[r] = x[base + T[r]!]! - m - Math.log(s);
    }
    return res;
  };
};
