// An independent JavaScript model of the ops the property tests draw (test/ops/property.test.ts):
// float64 arrays with NumPy broadcasting, reductions, basic slices, integer indices, take and
// set/inc on a take. Nothing here uses src/: it is the expectation the library is checked against.

export interface Arr { readonly shape: readonly number[]; readonly data: Float64Array }

export const sizeOf = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

export function broadcastShape(shapes: readonly (readonly number[])[]): number[] {
  const ndim = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(ndim).fill(1);
  for (const s of shapes) {
    s.forEach((d, i) => {
      const j = ndim - s.length + i;
      if (d !== 1) {
        if (out[j] !== 1 && out[j] !== d) throw new Error(`model: shapes ${JSON.stringify(shapes)} do not broadcast`);
        out[j] = d;
      }
    });
  }
  return out;
}

/** Calls visit(flat output index, multi-index) for every element of `shape` in row-major order. */
function forEachIndex(shape: readonly number[], visit: (flat: number, index: readonly number[]) => void): void {
  const n = sizeOf(shape);
  const index = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    visit(k, index);
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      if (++index[ax]! < shape[ax]!) break;
      index[ax] = 0;
    }
  }
}

/** Flat offset into `a` of an index of the broadcast output shape (right-aligned, size-1 axes pinned). */
function offsetIn(a: Arr, index: readonly number[], strides: readonly number[]): number {
  let off = 0;
  const lead = index.length - a.shape.length;
  for (let i = 0; i < a.shape.length; i++) off += (a.shape[i] === 1 ? 0 : index[lead + i]!) * strides[i]!;
  return off;
}

export function map(args: readonly Arr[], f: (...v: number[]) => number): Arr {
  const shape = broadcastShape(args.map((a) => a.shape));
  const data = new Float64Array(sizeOf(shape));
  const strides = args.map((a) => stridesOf(a.shape));
  forEachIndex(shape, (k, index) => { data[k] = f(...args.map((a, j) => a.data[offsetIn(a, index, strides[j]!)]!)); });
  return { shape, data };
}

export type ReduceName = 'sum' | 'mean' | 'max' | 'min' | 'prod';

export function reduce(a: Arr, op: ReduceName, axes: readonly number[], keepdims: boolean): Arr {
  const kept = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const init = op === 'max' ? -Infinity : op === 'min' ? Infinity : op === 'prod' ? 1 : 0;
  const acc = new Float64Array(sizeOf(kept)).fill(init);
  const keptStrides = stridesOf(kept);
  forEachIndex(a.shape, (k, index) => {
    let o = 0;
    index.forEach((c, i) => { if (!axes.includes(i)) o += c * keptStrides[i]!; });
    const v = a.data[k]!;
    acc[o] = op === 'max' ? Math.max(acc[o]!, v) : op === 'min' ? Math.min(acc[o]!, v) : op === 'prod' ? acc[o]! * v : acc[o]! + v;
  });
  const count = axes.reduce((n, ax) => n * a.shape[ax]!, 1);
  if (op === 'mean') for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! / count;
  return { shape: keepdims ? kept : a.shape.filter((_, i) => !axes.includes(i)), data: acc };
}

/** numpy.var over `axes` with `ddof`: the squared deviations summed, over max(n - ddof, 0). */
export function variance(a: Arr, axes: readonly number[], keepdims: boolean, ddof: number): Arr {
  const mean = reduce(a, 'mean', axes, true);
  const dev = map([a, mean], (x, m) => (x - m) * (x - m));
  const s = reduce(dev, 'sum', axes, keepdims);
  const n = axes.reduce((k, ax) => k * a.shape[ax]!, 1);
  return { shape: s.shape, data: s.data.map((v) => v / Math.max(n - ddof, 0)) };
}

/** The same data in another shape of equal size. */
export function reshape(a: Arr, shape: readonly number[]): Arr {
  if (sizeOf(shape) !== a.data.length) throw new Error(`model: cannot reshape ${a.data.length} elements into ${JSON.stringify(shape)}`);
  return { shape, data: a.data };
}

/** Elements start, start + step, ... (`length` of them) along `axis`; the axis is kept. */
export function slice(a: Arr, axis: number, start: number, step: number, length: number): Arr {
  const shape = a.shape.map((d, i) => (i === axis ? length : d));
  const data = new Float64Array(sizeOf(shape));
  const st = stridesOf(a.shape);
  forEachIndex(shape, (k, index) => {
    let off = 0;
    index.forEach((c, i) => { off += (i === axis ? start + c * step : c) * st[i]!; });
    data[k] = a.data[off]!;
  });
  return { shape, data };
}

/** a[..., i, ...] on `axis` (negative i counts from the end); the axis is dropped. */
export function index(a: Arr, axis: number, i: number): Arr {
  const j = i < 0 ? i + a.shape[axis]! : i;
  const s = slice(a, axis, j, 1, 1);
  return { shape: a.shape.filter((_, k) => k !== axis), data: s.data };
}

const wrap = (i: number, n: number): number => (i < 0 ? i + n : i);

/** numpy.take(a, indices, axis) with 1-d indices. */
export function take(a: Arr, axis: number, indices: readonly number[]): Arr {
  const shape = a.shape.map((d, i) => (i === axis ? indices.length : d));
  const data = new Float64Array(sizeOf(shape));
  const st = stridesOf(a.shape);
  forEachIndex(shape, (k, idx) => {
    let off = 0;
    idx.forEach((c, i) => { off += (i === axis ? wrap(indices[c]!, a.shape[axis]!) : c) * st[i]!; });
    data[k] = a.data[off]!;
  });
  return { shape, data };
}

/** A copy of x with x.take(indices, axis) set to (or incremented by) y broadcast to the region, in row-major order. */
export function updateTake(x: Arr, axis: number, indices: readonly number[], y: Arr, set: boolean): Arr {
  const region = x.shape.map((d, i) => (i === axis ? indices.length : d));
  const yb = map([y, { shape: region, data: new Float64Array(sizeOf(region)) }], (v) => v);
  const data = x.data.slice();
  const st = stridesOf(x.shape);
  forEachIndex(region, (k, idx) => {
    let off = 0;
    idx.forEach((c, i) => { off += (i === axis ? wrap(indices[c]!, x.shape[axis]!) : c) * st[i]!; });
    data[off] = set ? yb.data[k]! : data[off]! + yb.data[k]!;
  });
  return { shape: x.shape, data };
}

/**
 * Python's floor division and modulo of finite doubles from exact integer arithmetic: with a common
 * binary exponent, a = A 2^e and b = B 2^e for integers A, B; q = floor(A / B) and r = (A - qB) 2^e,
 * rounded once. For |q| < 2^50 NumPy's floor_divide and mod give exactly these.
 */
export function exactDivMod(a: number, b: number): { q: number; r: number } {
  const [ma, ea] = integerMantissa(a);
  const [mb, eb] = integerMantissa(b);
  const e = Math.min(ea, eb);
  const A = ma * 2n ** BigInt(ea - e);
  const B = mb * 2n ** BigInt(eb - e);
  let q = A / B; // truncates toward zero
  if (A % B !== 0n && (A < 0n) !== (B < 0n)) q -= 1n;
  const r = Number(A - q * B) * 2 ** e;
  return { q: Number(q), r: r === 0 ? (b < 0 ? -0 : 0) : r };
}

/** [m, e] with v = m 2^e exactly, m an integer. */
function integerMantissa(v: number): [bigint, number] {
  let e = 0;
  let m = v;
  while (!Number.isInteger(m)) { m *= 2; e--; }
  return [BigInt(m), e];
}
