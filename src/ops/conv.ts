// 2-d convolution (NCHW input, OIHW filters; stride, padding, dilation, groups) and its two
// gradients as ops of their own, so a fast device can implement each one (cuDNN-style: forward,
// backward-data, backward-filter). All three take the same attrs. The three are bilinear and
// each one's gradient is expressed through the others, so gradients of gradients work.
import { NDArray, shapeToString } from '../tensor/ndarray.js';
import { TensorType } from '../tensor/type.js';
import { isFloat, upcast } from '../tensor/dtype.js';
import { OpRuntimeError, OpTypeError, type OpDef } from './op.js';
import { checkOperandPrecision, roundOperands, type OperandPrecision } from './operand-precision.js';

export type Conv2dAttrs = {
  readonly stride: readonly [number, number];
  /** Zero padding on each side of the height and width axes, or 'same' (stride 1 only; an odd total puts the extra row/column at the end). */
  readonly padding: readonly [number, number] | 'same';
  readonly dilation: readonly [number, number];
  readonly groups: number;
  /** 'bf16': the first two operands are rounded to bfloat16 and the products summed in float32 or wider (see operand-precision.ts). */
  readonly precision?: OperandPrecision;
};

/** Every size and offset of one convolution, resolved from the input and filter shapes. */
export interface ConvGeometry {
  n: number; cin: number; h: number; w: number;
  cout: number; cg: number; og: number; kh: number; kw: number;
  oh: number; ow: number; pt: number; pl: number;
  sh: number; sw: number; dh: number; dw: number;
}

/** Resolves a convolution's sizes, or throws an OpRuntimeError naming the op and the shapes. */
export function convGeometry(op: string, x: readonly number[], f: readonly number[], attrs: Conv2dAttrs): ConvGeometry {
  const [n, cin, h, w] = x as [number, number, number, number];
  const [cout, cg, kh, kw] = f as [number, number, number, number];
  const [sh, sw] = attrs.stride;
  const [dh, dw] = attrs.dilation;
  const g = attrs.groups;
  const shapes = `input ${shapeToString(x)}, filters ${shapeToString(f)}`;
  if (cin % g !== 0 || cout % g !== 0) throw new OpRuntimeError(op, `groups ${g} must divide the input channels and the filter count (${shapes})`);
  if (cg !== cin / g) throw new OpRuntimeError(op, `filters expect ${cg} channels per group, input has ${cin} channels in ${g} group(s) (${shapes})`);
  let pt: number, pb: number, pl: number, pr: number;
  if (attrs.padding === 'same') {
    const th = dh * (kh - 1);
    const tw = dw * (kw - 1);
    pt = Math.floor(th / 2); pb = th - pt; pl = Math.floor(tw / 2); pr = tw - pl;
  } else {
    [pt, pl] = attrs.padding; pb = pt; pr = pl;
  }
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (oh <= 0 || ow <= 0) throw new OpRuntimeError(op, `output size ${oh}x${ow} is not positive (${shapes}, ${describeAttrs(attrs)})`);
  return { n, cin, h, w, cout, cg, og: cout / g, kh, kw, oh, ow, pt, pl, sh, sw, dh, dw };
}

function describeAttrs(a: Conv2dAttrs): string {
  return `stride ${a.stride.join('x')}, padding ${a.padding === 'same' ? 'same' : a.padding.join('x')}, dilation ${a.dilation.join('x')}, groups ${a.groups}`;
}

/** Calls f(xIndex, wIndex, yIndex) for every product term of the convolution (padding skipped). */
function forEachTap(g: ConvGeometry, f: (xi: number, wi: number, yi: number) => void): void {
  for (let b = 0; b < g.n; b++) {
    for (let o = 0; o < g.cout; o++) {
      const c0 = Math.floor(o / g.og) * g.cg;
      for (let i = 0; i < g.oh; i++) {
        for (let j = 0; j < g.ow; j++) {
          const yi = ((b * g.cout + o) * g.oh + i) * g.ow + j;
          for (let c = 0; c < g.cg; c++) {
            const xBase = (b * g.cin + c0 + c) * g.h;
            const wBase = (o * g.cg + c) * g.kh;
            for (let p = 0; p < g.kh; p++) {
              const hi = i * g.sh - g.pt + p * g.dh;
              if (hi < 0 || hi >= g.h) continue;
              for (let q = 0; q < g.kw; q++) {
                const wi = j * g.sw - g.pl + q * g.dw;
                if (wi < 0 || wi >= g.w) continue;
                f((xBase + hi) * g.w + wi, (wBase + p) * g.kw + q, yi);
              }
            }
          }
        }
      }
    }
  }
}

function checkAttrs(op: string, inputs: readonly TensorType[], a: Conv2dAttrs, arity: number): void {
  if (inputs.length !== arity) throw new OpTypeError(op, inputs, `expects ${arity} inputs, got ${inputs.length}`);
  if (inputs.some((t) => t.ndim !== 4)) throw new OpTypeError(op, inputs, 'every operand must be 4-d (input NCHW, filters OIHW)');
  if (inputs.some((t) => !isFloat(t.dtype))) throw new OpTypeError(op, inputs, 'operands must be float32 or float64');
  const pair = (v: unknown, min: number) => Array.isArray(v) && v.length === 2 && v.every((d) => Number.isInteger(d) && d >= min);
  if (!pair(a.stride, 1)) throw new OpTypeError(op, inputs, `stride must be two integers >= 1, got ${JSON.stringify(a.stride)}`);
  if (!pair(a.dilation, 1)) throw new OpTypeError(op, inputs, `dilation must be two integers >= 1, got ${JSON.stringify(a.dilation)}`);
  if (a.padding !== 'same' && !pair(a.padding, 0))
    throw new OpTypeError(op, inputs, `padding must be two integers >= 0 or 'same', got ${JSON.stringify(a.padding)}`);
  if (a.padding === 'same' && (a.stride[0] !== 1 || a.stride[1] !== 1))
    throw new OpTypeError(op, inputs, `padding 'same' needs stride 1, got ${a.stride.join('x')}`);
  if (!Number.isInteger(a.groups) || a.groups < 1) throw new OpTypeError(op, inputs, `groups must be an integer >= 1, got ${a.groups}`);
  checkOperandPrecision(op, inputs, a.precision);
}

/** Static checks possible from broadcastable (size-1) channel axes; everything else is checked at run time. */
function checkStatic(op: string, inputs: readonly TensorType[], x: TensorType, w: TensorType, a: Conv2dAttrs): void {
  if (a.groups > 1 && x.broadcastable[1]) throw new OpTypeError(op, inputs, `groups ${a.groups} does not divide the input's 1 channel`);
  if (a.groups > 1 && w.broadcastable[0]) throw new OpTypeError(op, inputs, `groups ${a.groups} does not divide the filter count 1`);
}

function convType(x: TensorType, w: TensorType): TensorType {
  return new TensorType(upcast(x.dtype, w.dtype), [x.broadcastable[0]!, w.broadcastable[0]!, false, false]);
}

function accumulate(out: TensorType, shape: readonly number[], fill: (acc: Float64Array) => void): NDArray {
  const res = new NDArray(out.dtype, shape);
  const acc = new Float64Array(res.size);
  fill(acc);
  res.data.set(acc);
  return res;
}

function checkGradShape(op: string, g: ConvGeometry, gy: NDArray): void {
  const want = [g.n, g.cout, g.oh, g.ow];
  if (gy.ndim !== 4 || gy.shape.some((d, i) => d !== want[i])) {
    throw new OpRuntimeError(op, `output gradient has shape ${shapeToString(gy.shape)}, the convolution gives ${shapeToString(want)}`);
  }
}

export const convOps: Record<'conv2d' | 'conv2dInputGrad' | 'conv2dFilterGrad', OpDef<Conv2dAttrs>> = {
  /** y[n, o, i, j] = sum_{c, p, q} x[n, g(o)·C/G + c, i·s - pad + p·d, j·s - pad + q·d] · w[o, c, p, q]. */
  conv2d: {
    name: 'conv2d',
    inferType(inputs, attrs) {
      checkAttrs('conv2d', inputs, attrs, 2);
      const [x, w] = inputs as [TensorType, TensorType];
      checkStatic('conv2d', inputs, x, w, attrs);
      return convType(x, w);
    },
    perform(inputs, attrs, out) {
      const [x, w] = roundOperands(inputs, attrs.precision) as [NDArray, NDArray];
      const g = convGeometry('conv2d', x.shape, w.shape, attrs);
      const X = x.data, W = w.data;
      return accumulate(out, [g.n, g.cout, g.oh, g.ow], (y) => forEachTap(g, (xi, wi, yi) => { y[yi]! += X[xi]! * W[wi]!; }));
    },
  } satisfies OpDef<Conv2dAttrs>,

  /** The gradient of conv2d with respect to its input: inputs (gy, w, xLike), xLike only gives the shape. */
  conv2dInputGrad: {
    name: 'conv2dInputGrad',
    inferType(inputs, attrs) {
      checkAttrs('conv2dInputGrad', inputs, attrs, 3);
      const [gy, w, x] = inputs as [TensorType, TensorType, TensorType];
      checkStatic('conv2dInputGrad', inputs, x, w, attrs);
      return new TensorType(upcast(gy.dtype, w.dtype), x.broadcastable);
    },
    perform(inputs, attrs, out) {
      const [gy, w, x] = roundOperands(inputs, attrs.precision) as [NDArray, NDArray, NDArray];
      const g = convGeometry('conv2dInputGrad', x.shape, w.shape, attrs);
      checkGradShape('conv2dInputGrad', g, gy);
      const G = gy.data, W = w.data;
      return accumulate(out, x.shape, (gx) => forEachTap(g, (xi, wi, yi) => { gx[xi]! += G[yi]! * W[wi]!; }));
    },
  } satisfies OpDef<Conv2dAttrs>,

  /** The gradient of conv2d with respect to its filters: inputs (x, gy, wLike), wLike only gives the shape. */
  conv2dFilterGrad: {
    name: 'conv2dFilterGrad',
    inferType(inputs, attrs) {
      checkAttrs('conv2dFilterGrad', inputs, attrs, 3);
      const [x, gy, w] = inputs as [TensorType, TensorType, TensorType];
      checkStatic('conv2dFilterGrad', inputs, x, w, attrs);
      return new TensorType(upcast(x.dtype, gy.dtype), w.broadcastable);
    },
    perform(inputs, attrs, out) {
      const [x, gy, w] = roundOperands(inputs, attrs.precision) as [NDArray, NDArray, NDArray];
      const g = convGeometry('conv2dFilterGrad', x.shape, w.shape, attrs);
      checkGradShape('conv2dFilterGrad', g, gy);
      const X = x.data, G = gy.data;
      return accumulate(out, w.shape, (gw) => forEachTap(g, (xi, wi, yi) => { gw[wi]! += X[xi]! * G[yi]!; }));
    },
  } satisfies OpDef<Conv2dAttrs>,
};
