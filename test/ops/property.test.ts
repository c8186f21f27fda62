// Property tests: random graphs of elementwise ops, broadcasting (inputs with size-1 and missing
// leading axes), reductions over random axes (with and without keepdims), basic slices with any
// step, integer indices, take and set/inc on a take with repeated indices. Every device present
// runs each graph in float64 (checked against the JavaScript model in property-model.ts, and that
// writing into the result changes neither the inputs nor the next call's result) and in
// float32 (checked against the float64 reference device); their gradients are checked against the
// reference device's. fast-check draws one seed per graph; the run's seed is fixed, and a failure
// names both (and prints the graph).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { ReferenceDevice } from '../../src/devices/reference/reference-device.js';
import type { Device } from '../../src/devices/device.js';
import { deviceCases, type DeviceCase } from '../helpers/devices.js';
import { rng } from '../helpers/allclose.js';
import * as M from './property-model.js';

const RUN_SEED = 20250611;

type Unary = 'neg' | 'abs' | 'tanh' | 'sin' | 'cos' | 'sigmoid' | 'relu' | 'square' | 'sqrtAbs';
type Binary = 'add' | 'sub' | 'mul' | 'maximum' | 'minimum' | 'safeDiv';
type Node =
  | { readonly k: 'leaf'; readonly input: number }
  | { readonly k: 'unary'; readonly op: Unary; readonly x: Node }
  | { readonly k: 'binary'; readonly op: Binary; readonly a: Node; readonly b: Node }
  | { readonly k: 'where'; readonly ca: Node; readonly cb: Node; readonly a: Node; readonly b: Node }
  | { readonly k: 'reduce'; readonly op: M.ReduceName | 'var'; readonly axes: readonly number[]; readonly keepdims: boolean; readonly ddof: number
      readonly x: Node }
  | { readonly k: 'pow'; readonly exponent: number; readonly ones: number; readonly x: Node }
  | { readonly k: 'flatten'; readonly ndim: number; readonly x: Node }
  | { readonly k: 'slice'; readonly axis: number; readonly start: number | null; readonly stop: number | null; readonly step: number
      readonly first: number; readonly length: number; readonly x: Node }
  | { readonly k: 'index'; readonly axis: number; readonly i: number; readonly x: Node }
  | { readonly k: 'take'; readonly axis: number; readonly indices: readonly number[]; readonly x: Node }
  | { readonly k: 'update'; readonly axis: number; readonly indices: readonly number[]; readonly set: boolean; readonly x: Node; readonly y: Node };

interface Input { readonly shape: readonly number[]; readonly broadcastable: readonly boolean[]; readonly values: Float64Array }

const UNARY: readonly Unary[] = ['neg', 'abs', 'tanh', 'sin', 'cos', 'sigmoid', 'relu', 'square', 'sqrtAbs'];
const BINARY: readonly Binary[] = ['add', 'sub', 'mul', 'maximum', 'minimum', 'safeDiv'];

/** Draws a graph top-down: node(shape) yields a value whose shape broadcasts to `shape`. */
class GraphGen {
  readonly inputs: Input[] = [];
  private readonly r: () => number;
  constructor(seed: number) { this.r = rng(seed); }

  int(lo: number, hi: number): number { return lo + Math.floor(this.r() * (hi - lo + 1)); }
  pick<X>(xs: readonly X[]): X { return xs[this.int(0, xs.length - 1)]!; }
  chance(p: number): boolean { return this.r() < p; }

  shape(): number[] {
    return Array.from({ length: this.int(0, 3) }, () => (this.chance(0.06) ? 0 : this.int(1, 4)));
  }

  /** An input: exactly `shape` when full, else some axes size 1 and some leading axes missing. */
  leaf(shape: readonly number[], full = false): Node {
    const lead = full || !this.chance(0.3) ? 0 : this.int(0, shape.length);
    const own = shape.slice(lead).map((d) => (!full && this.chance(0.3) ? 1 : d));
    const broadcastable = own.map((d) => d === 1 && this.chance(0.5));
    const values = new Float64Array(M.sizeOf(own)).map(() => Math.fround(2 * this.r() - 1));
    this.inputs.push({ shape: own, broadcastable, values });
    return { k: 'leaf', input: this.inputs.length - 1 };
  }

  /** A value of exactly `shape` (a drawn node plus a full input, so structural ops see every axis). */
  exact(shape: readonly number[], depth: number): Node {
    return { k: 'binary', op: 'add', a: this.node(shape, depth), b: this.leaf(shape, true) };
  }

  node(shape: readonly number[], depth: number, root = false): Node {
    if (depth <= 0 || (!root && this.chance(0.2))) return this.leaf(shape);
    const d = depth - 1;
    const kind = this.pick(['unary', 'binary', 'binary', 'where', 'reduce', 'slice', 'index', 'take', 'update', 'pow', 'flatten'] as const);
    switch (kind) {
      case 'unary': return { k: 'unary', op: this.pick(UNARY), x: this.node(shape, d) };
      case 'binary': return { k: 'binary', op: this.pick(BINARY), a: this.node(shape, d), b: this.node(shape, d) };
      case 'where': return { k: 'where', ca: this.leaf(shape), cb: this.leaf(shape), a: this.node(shape, d), b: this.node(shape, d) };
      case 'reduce': {
        // Either new axes reduced away, or existing axes reduced with keepdims (size 1 broadcasts).
        const keepdims = shape.length > 0 && this.chance(0.4);
        const inner = [...shape];
        const axes: number[] = [];
        if (keepdims) {
          for (let ax = 0; ax < shape.length; ax++) if (axes.length === 0 || this.chance(0.3)) { axes.push(ax); inner[ax] = this.int(1, 4); }
        } else {
          for (let n = this.int(1, 2); n > 0; n--) inner.splice(this.int(0, inner.length), 0, this.chance(0.06) ? 0 : this.int(1, 4));
          const added = inner.length - shape.length;
          for (const ax of this.positionsOfNew(inner, shape, added)) axes.push(ax);
        }
        const empty = axes.some((ax) => inner[ax] === 0);
        const op = this.pick<M.ReduceName | 'var'>(empty ? ['sum', 'mean', 'prod'] : ['sum', 'mean', 'max', 'min', 'prod', 'var']);
        // ddof up to n + 1: var is inf (or NaN) once ddof >= n, as NumPy
        const n = axes.reduce((k, ax) => k * inner[ax]!, 1);
        return { k: 'reduce', op, axes, keepdims, ddof: op === 'var' ? this.int(0, n + 1) : 0, x: this.exact(inner, d) };
      }
      case 'pow': {
        // A constant exponent with up to ndim size-1 axes (pow(x, [[2]]) broadcasts x up to 2-d).
        return { k: 'pow', exponent: this.pick([2, 2, 3]), ones: this.int(0, shape.length), x: this.node(shape, d) };
      }
      case 'flatten': {
        // flatten(x, ndim) giving `shape`: its last axis split in two (zeros anywhere allowed).
        if (shape.length === 0) return { k: 'unary', op: this.pick(UNARY), x: this.node(shape, d) };
        const last = shape[shape.length - 1]!;
        const divisors = last === 0 ? [0] : Array.from({ length: last }, (_, i) => i + 1).filter((v) => last % v === 0);
        const a = this.pick(divisors);
        const b = last === 0 ? this.int(0, 3) : last / a;
        const inner = [...shape.slice(0, -1), a, b];
        // Of an input itself sometimes: the result is then a view of the caller's array (it must come back as a copy).
        return { k: 'flatten', ndim: shape.length, x: this.chance(0.3) ? this.leaf(inner, true) : this.exact(inner, d) };
      }
      case 'slice': {
        if (shape.length === 0) return { k: 'unary', op: this.pick(UNARY), x: this.node(shape, d) };
        const axis = this.int(0, shape.length - 1);
        const length = shape[axis]!;
        const step = this.pick([1, 1, 2, 3, -1, -2]);
        const offset = this.int(0, 2);
        const size = offset + Math.abs(step) * Math.max(length - 1, 0) + 1 + this.int(0, 2);
        const first = step > 0 ? offset : size - 1 - offset;
        const last = first + step * (length - 1);
        const stop = length === 0 ? first : last + Math.sign(step);
        const inner = shape.map((v, i) => (i === axis ? size : v));
        return { k: 'slice', axis, start: first, stop: stop < 0 ? null : stop, step, first, length, x: this.exact(inner, d) };
      }
      case 'index': {
        const axis = this.int(0, shape.length);
        const size = this.int(1, 4);
        const inner = [...shape.slice(0, axis), size, ...shape.slice(axis)];
        return { k: 'index', axis, i: this.int(-size, size - 1), x: this.exact(inner, d) };
      }
      case 'take':
      case 'update': {
        if (shape.length === 0) return { k: 'binary', op: this.pick(BINARY), a: this.node(shape, d), b: this.node(shape, d) };
        const axis = this.int(0, shape.length - 1);
        const size = this.int(1, 4);
        if (kind === 'take') {
          const indices = Array.from({ length: shape[axis]! }, () => this.int(-size, size - 1));
          return { k: 'take', axis, indices, x: this.exact(shape.map((v, i) => (i === axis ? size : v)), d) };
        }
        // set / inc on a take of `shape` itself; repeated indices are likely (last write wins / accumulate).
        const indices = Array.from({ length: this.int(0, 4) }, () => this.int(-shape[axis]!, shape[axis]! - 1));
        if (shape[axis] === 0) indices.length = 0;
        const region = shape.map((v, i) => (i === axis ? indices.length : v));
        return { k: 'update', axis, indices, set: this.chance(0.5), x: this.exact(shape, d), y: this.node(region, d) };
      }
      default: return kind satisfies never;
    }
  }

  /** Axes of `inner` that were inserted into `outer` (inner has `added` more axes). */
  private positionsOfNew(inner: readonly number[], outer: readonly number[], added: number): number[] {
    // Insertions were made at random positions; recover one consistent set: any `added` axes whose
    // removal leaves `outer` (the drawn sizes are only used through this set, so any choice is valid).
    const choose = (i: number, j: number, left: number): number[] | null => {
      if (i === inner.length) return j === outer.length && left === 0 ? [] : null;
      if (left > 0) { const rest = choose(i + 1, j, left - 1); if (rest) return [i, ...rest]; }
      if (j < outer.length && inner[i] === outer[j]) { const rest = choose(i + 1, j + 1, left); if (rest) return rest; }
      return null;
    };
    return choose(0, 0, added)!;
  }
}

const describeNode = (n: Node): string => {
  switch (n.k) {
    case 'leaf': return `in${n.input}`;
    case 'unary': return `${n.op}(${describeNode(n.x)})`;
    case 'binary': return `${n.op}(${describeNode(n.a)}, ${describeNode(n.b)})`;
    case 'where': return `where(${describeNode(n.ca)} > ${describeNode(n.cb)}, ${describeNode(n.a)}, ${describeNode(n.b)})`;
    case 'reduce': {
      const extra = `${n.keepdims ? ', keepdims' : ''}${n.op === 'var' ? `, ddof ${n.ddof}` : ''}`;
      return `${n.op}(${describeNode(n.x)}, axes ${JSON.stringify(n.axes)}${extra})`;
    }
    case 'pow': return `pow(${describeNode(n.x)}, ${n.exponent} with ${n.ones} size-1 axes)`;
    case 'flatten': return `flatten(${describeNode(n.x)}, ${n.ndim})`;
    case 'slice': return `${describeNode(n.x)}[axis ${n.axis}: ${n.start}:${n.stop}:${n.step}]`;
    case 'index': return `${describeNode(n.x)}[axis ${n.axis}: ${n.i}]`;
    case 'take': return `take(${describeNode(n.x)}, ${JSON.stringify(n.indices)}, ${n.axis})`;
    case 'update': return `${n.set ? 'set' : 'inc'}(${describeNode(n.x)}.take(${JSON.stringify(n.indices)}, ${n.axis}), ${describeNode(n.y)})`;
    default: return n satisfies never;
  }
};

const UNARY_JS: Record<Unary, (v: number) => number> = {
  neg: (v) => -v, abs: Math.abs, tanh: Math.tanh, sin: Math.sin, cos: Math.cos, sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  relu: (v) => (v > 0 ? v : 0), square: (v) => v * v, sqrtAbs: (v) => Math.sqrt(Math.abs(v)),
};
const BINARY_JS: Record<Binary, (a: number, b: number) => number> = {
  add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, maximum: Math.max, minimum: Math.min, safeDiv: (a, b) => a / (b * b + 0.5),
};

/** The model's value; `scale` collects the largest magnitude of any intermediate (float32 error bound). */
function evaluate(n: Node, inputs: readonly M.Arr[], scale: { max: number }): M.Arr {
  const ev = (x: Node) => evaluate(x, inputs, scale);
  let out: M.Arr;
  switch (n.k) {
    case 'leaf': out = inputs[n.input]!; break;
    case 'unary': out = M.map([ev(n.x)], UNARY_JS[n.op]); break;
    case 'binary': out = M.map([ev(n.a), ev(n.b)], BINARY_JS[n.op]); break;
    case 'where': out = M.map([ev(n.ca), ev(n.cb), ev(n.a), ev(n.b)], (p, q, a, b) => (p > q ? a : b)); break;
    case 'reduce': out = n.op === 'var' ? M.variance(ev(n.x), n.axes, n.keepdims, n.ddof) : M.reduce(ev(n.x), n.op, n.axes, n.keepdims); break;
    case 'pow': {
      const x = ev(n.x);
      const e: M.Arr = { shape: new Array<number>(n.ones).fill(1), data: Float64Array.of(n.exponent) };
      out = M.map([x, e], (v, p) => (p === 2 ? v * v : v * v * v));
      break;
    }
    case 'flatten': {
      const x = ev(n.x);
      out = M.reshape(x, [...x.shape.slice(0, n.ndim - 1), M.sizeOf(x.shape.slice(n.ndim - 1))]);
      break;
    }
    case 'slice': out = M.slice(ev(n.x), n.axis, n.first, n.step, n.length); break;
    case 'index': out = M.index(ev(n.x), n.axis, n.i); break;
    case 'take': out = M.take(ev(n.x), n.axis, n.indices); break;
    case 'update': out = M.updateTake(ev(n.x), n.axis, n.indices, ev(n.y), n.set); break;
    default: return n satisfies never;
  }
  for (const v of out.data) if (Number.isFinite(v)) scale.max = Math.max(scale.max, Math.abs(v));
  return out;
}

function build(n: Node, vars: readonly T.Variable[]): T.Variable {
  const b = (x: Node) => build(x, vars);
  switch (n.k) {
    case 'leaf': return vars[n.input]!;
    case 'unary': return n.op === 'sqrtAbs' ? T.sqrt(T.abs(b(n.x))) : T[n.op](b(n.x));
    case 'binary': return n.op === 'safeDiv' ? T.div(b(n.a), T.add(T.square(b(n.b)), 0.5)) : T[n.op](b(n.a), b(n.b));
    case 'where': return T.where(T.gt(b(n.ca), b(n.cb)), b(n.a), b(n.b));
    case 'reduce': return n.op === 'var' ? T.variance(b(n.x), n.axes, n.keepdims, n.ddof) : T[n.op](b(n.x), n.axes, n.keepdims);
    case 'pow': {
      const x = b(n.x);
      return T.pow(x, T.constant(NDArray.full(new Array<number>(n.ones).fill(1), n.exponent, x.dtype)));
    }
    case 'flatten': return T.flatten(b(n.x), n.ndim);
    case 'slice': {
      const x = b(n.x);
      return x.get(...x.broadcastable.map((_, i) => (i === n.axis ? [n.start, n.stop, n.step] as const : null)));
    }
    case 'index': {
      const x = b(n.x);
      return x.get(...x.broadcastable.map((_, i) => (i === n.axis ? n.i : null)).slice(0, n.axis + 1));
    }
    case 'take': return b(n.x).take(T.constant(NDArray.from(n.indices, { dtype: 'int32', shape: [n.indices.length] })), n.axis);
    case 'update': {
      const sliced = b(n.x).take(T.constant(NDArray.from(n.indices, { dtype: 'int32', shape: [n.indices.length] })), n.axis);
      return n.set ? T.setSubtensor(sliced, b(n.y)) : T.incSubtensor(sliced, b(n.y));
    }
    default: return n satisfies never;
  }
}

function close(got: NDArray, want: M.Arr, rtol: number, atol: number, what: string): void {
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  for (let i = 0; i < want.data.length; i++) {
    const a = got.data[i]!;
    const e = want.data[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    assert.ok(ok, `${what}: element ${i} is ${a}, expected ${e}`);
  }
}

const devices: { c: DeviceCase; device: Device }[] = [];
const skipped: string[] = [];
for (const c of deviceCases()) {
  const made = c.create();
  if ('skip' in made) skipped.push(`${c.name}: ${made.skip}`);
  else devices.push({ c, device: made });
}
const oracle = new ReferenceDevice({ float64: true });

interface Drawn { readonly graph: Node; readonly inputs: readonly Input[]; readonly text: string }

function draw(seed: number): Drawn {
  const gen = new GraphGen(seed);
  const graph = gen.node(gen.shape(), gen.int(2, 4), true);
  return { graph, inputs: gen.inputs, text: describeNode(graph) };
}

const params = { seed: RUN_SEED, numRuns: 200, endOnFailure: true, includeErrorInReport: true };
// A GPU compiles new kernels for every graph (NVRTC, tens of milliseconds each): it runs only the
// first graphs of each property, which keeps the file under 20 s there too.
const GPU_GRAPHS = 15;
const devicesFor = (graph: number) => devices.filter(({ device }) => device.kind !== 'cuda' || graph < GPU_GRAPHS);
const graphSeed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

describe(`random graphs on every device (${devices.map((d) => d.c.name).join(', ')}${skipped.length ? `; skipped ${skipped.join('; ')}` : ''})`, () => {
  it('float64 results equal the JavaScript model', () => {
    let drawn = 0;
    fc.assert(fc.property(graphSeed, (seed) => {
      const { graph, inputs, text } = draw(seed);
      const want = evaluate(graph, inputs.map((x) => ({ shape: x.shape, data: x.values })), { max: 0 });
      const vars = inputs.map((x, i) => T.tensor({ dtype: 'float64', broadcastable: x.broadcastable, name: `in${i}` }));
      const out = build(graph, vars);
      const args = inputs.map((x) => new NDArray('float64', x.shape, x.values.slice()));
      for (const { c, device } of devicesFor(drawn++)) {
        const f = T.fn({ inputs: vars, outputs: out, device });
        const got = f(...args) as NDArray;
        close(got, want, 1e-9, 1e-9, `graph seed ${seed} on ${c.name}: ${text}`);
        // The result is the caller's: overwriting it changes neither the inputs nor the next call.
        got.data.fill(NaN);
        args.forEach((a, i) => assert.deepEqual(a.data, inputs[i]!.values, `graph seed ${seed} on ${c.name}: input ${i} changed: ${text}`));
        close(f(...args) as NDArray, want, 1e-9, 1e-9, `graph seed ${seed} on ${c.name}, second call: ${text}`);
      }
    }), params);
  });

  it('float32 results agree with the float64 reference device within float32 error', () => {
    let drawn = 0;
    fc.assert(fc.property(graphSeed, (seed) => {
      const { graph, inputs, text } = draw(seed);
      const scale = { max: 1 };
      const model = evaluate(graph, inputs.map((x) => ({ shape: x.shape, data: x.values })), scale);
      const vars = inputs.map((x, i) => T.tensor({ dtype: 'float32', broadcastable: x.broadcastable, name: `in${i}` }));
      const out = build(graph, vars);
      const args = inputs.map((x) => new NDArray('float32', x.shape, Float32Array.from(x.values)));
      const ref = T.fn({ inputs: vars, outputs: out, device: oracle })(...args) as NDArray;
      close(ref, model, 1e-9, 1e-9 * scale.max, `graph seed ${seed} on the float64 reference: ${text}`);
      const want = { shape: ref.shape, data: Float64Array.from(ref.data) };
      for (const { c, device } of devicesFor(drawn++)) {
        const got = T.fn({ inputs: vars, outputs: out, device })(...args) as NDArray;
        assert.equal(got.dtype, 'float32');
        // Every op rounds to float32 once: the error grows with the magnitudes met along the way.
        close(got, want, c.rtol, 20 * c.atol * scale.max, `graph seed ${seed} on ${c.name} (float32): ${text}`);
      }
    }), params);
  });

  it('float64 gradients agree with the reference device', () => {
    let drawn = 0;
    fc.assert(fc.property(graphSeed, (seed) => {
      const { graph, inputs, text } = draw(seed);
      const vars = inputs.map((x, i) => T.tensor({ dtype: 'float64', broadcastable: x.broadcastable, name: `in${i}` }));
      const out = build(graph, vars);
      const r = rng(seed ^ 0x5eed);
      const shape = broadcastShapeOf(graph, inputs);
      const probe = T.constant(NDArray.from(Array.from({ length: M.sizeOf(shape) }, () => 0.5 + r()), { dtype: 'float64', shape }));
      const grads = T.grad(T.sum(T.mul(out, probe)), vars, { disconnected: 'zero' });
      const args = inputs.map((x) => new NDArray('float64', x.shape, x.values.slice()));
      const ref = T.fn({ inputs: vars, outputs: grads, device: oracle })(...args) as NDArray[];
      for (const { c, device } of devicesFor(drawn++)) {
        if (c.name === 'reference') continue;
        const got = T.fn({ inputs: vars, outputs: grads, device })(...args) as NDArray[];
        got.forEach((g, k) => {
          close(g, { shape: ref[k]!.shape, data: Float64Array.from(ref[k]!.data) }, 1e-9, 1e-9, `graph seed ${seed} on ${c.name}, gradient ${k}: ${text}`);
        });
      }
    }), { ...params, numRuns: 100 });
  });
});

/** The output shape of a drawn graph (from the model, on its inputs). */
function broadcastShapeOf(graph: Node, inputs: readonly Input[]): readonly number[] {
  return evaluate(graph, inputs.map((x) => ({ shape: x.shape, data: x.values })), { max: 0 }).shape;
}

describe('float intDiv and mod against exact integer arithmetic', () => {
  it('q = floor(a / b) and r = a - q b exactly (then rounded once), on every device', () => {
    // Dividends of magnitude 1e-9 .. 1e6 (or zero) keep the exact integers of exactDivMod small.
    const finite = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }).filter((x) => x === 0 || Math.abs(x) >= 1e-9);
    const divisor = fc.double({ min: 1e-3, max: 1e3, noNaN: true }).chain((m) => fc.constantFrom(m, -m));
    // The hard cases: a within a few ulps of a multiple of b (where a / b rounds onto an integer),
    // and short decimals (7.5 // 0.1), besides arbitrary doubles.
    const nearMultiple = fc.tuple(divisor, fc.integer({ min: -100000, max: 100000 }), fc.integer({ min: -2, max: 2 }))
      .map(([b, k, ulps]) => [k === 0 ? 0 : nudge(k * b, ulps), b] as [number, number]); // no subnormal dividends
    const decimal = fc.tuple(fc.integer({ min: -100000, max: 100000 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 3 }), fc.boolean())
      .map(([i, j, p, neg]) => [i / 10 ** p, (neg ? -j : j) / 10 ** (p + 1)] as [number, number]);
    const pairs = fc.array(fc.oneof(fc.tuple(finite, divisor), nearMultiple, decimal), { minLength: 1, maxLength: 40 });
    const a = T.vector('a', 'float64');
    const b = T.vector('b', 'float64');
    const fns = devices.map(({ c, device }) => ({ name: c.name, f: T.fn({ inputs: [a, b], outputs: [T.intDiv(a, b), T.mod(a, b)], device }) }));
    fc.assert(fc.property(pairs, (list) => {
      const av = list.map(([x]) => x);
      const bv = list.map(([, y]) => y);
      const exact = list.map(([x, y]) => M.exactDivMod(x, y));
      for (const { name, f } of fns) {
        const [q, r] = f(av, bv) as NDArray[];
        list.forEach(([x, y], i) => {
          // === so that the sign of a zero quotient (copysign(0, a / b) in NumPy) does not matter here
          assert.ok(q!.data[i] === exact[i]!.q, `${name}: intDiv(${x}, ${y}) = ${q!.data[i]}, expected ${exact[i]!.q}`);
          assert.ok(r!.data[i] === exact[i]!.r, `${name}: mod(${x}, ${y}) = ${r!.data[i]}, expected ${exact[i]!.r}`);
        });
      }
    }), { seed: RUN_SEED, numRuns: 60, includeErrorInReport: true });
  });
});

/** v moved by `ulps` units in the last place (toward +inf for positive counts). */
function nudge(v: number, ulps: number): number {
  const f = new Float64Array([v]);
  const bits = new BigInt64Array(f.buffer);
  for (let k = 0; k < Math.abs(ulps); k++) {
    const up = ulps > 0;
    if (f[0] === 0) { f[0] = up ? Number.MIN_VALUE : -Number.MIN_VALUE; continue; }
    bits[0]! += (f[0]! > 0) === up ? 1n : -1n;
  }
  return f[0]!;
}
