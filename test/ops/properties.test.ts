// Properties of broadcasting, reductions over axes, basic slicing and indexing, one op family at a
// time, drawn by fast-check and checked on every device present (float64, so the expectations are
// exact up to summation order) against oracles written here from NumPy's rules: the broadcast shape
// from the operands' shapes, a reduction by walking every input element to its output position,
// Python's slice.indices for start/stop/step, and take / set / inc by plain index arithmetic. The
// refusals are properties too: shapes that do not broadcast, indices out of range. (property.test.ts
// draws whole graphs of these ops against property-model.ts; this file checks each rule directly,
// with the edge cases a graph rarely reaches: negative and out-of-range slice bounds, negative axes
// in any order, chained slices.) fast-check's seed is fixed; a failure names it and the drawn case.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import type { Device } from '../../src/devices/device.js';
import { deviceCases } from '../helpers/devices.js';
import { assertAllClose, rng } from '../helpers/allclose.js';

const SEED = 20261203;
const params = { seed: SEED, numRuns: 150, endOnFailure: true, includeErrorInReport: true };
const EXACT = { rtol: 1e-12, atol: 1e-12 };

const devices: { name: string; device: Device }[] = [];
const skipped: string[] = [];
for (const c of deviceCases()) {
  const made = c.create();
  if ('skip' in made) skipped.push(`${c.name}: ${made.skip}`);
  else devices.push({ name: c.name, device: made });
}
const onDevices = `on ${devices.map((d) => d.name).join(', ')}`;
for (const reason of skipped) describe(`op properties [${reason.split(':')[0]}]`, { skip: reason }, () => {});

// ---- the oracle's arrays: row-major data and a shape, nothing else -------------------------------

interface Arr { readonly shape: readonly number[]; readonly data: Float64Array }
const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The multi-index of flat position `flat` in a row-major array of `shape`. */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let ax = shape.length - 1, rest = flat; ax >= 0; ax--) {
    idx[ax] = rest % shape[ax]!;
    rest = Math.floor(rest / shape[ax]!);
  }
  return idx;
}

/** The flat position of multi-index `idx` in a row-major array of `shape`. */
const ravel = (idx: readonly number[], shape: readonly number[]): number => idx.reduce((flat, i, ax) => flat * shape[ax]! + i, 0);

function randomArr(shape: readonly number[], seed: number): Arr {
  const r = rng(seed);
  return { shape, data: Float64Array.from({ length: sizeOf(shape) }, () => Math.round((2 * r() - 1) * 64) / 16) };
}

const toNd = (a: Arr): NDArray => new NDArray('float64', a.shape, a.data.slice());
const fromNd = (a: NDArray): Arr => ({ shape: [...a.shape], data: Float64Array.from(a.data) });
const input = (a: Arr, name: string, broadcastable?: readonly boolean[]): T.Variable =>
  T.tensor({ dtype: 'float64', broadcastable: broadcastable ?? a.shape.map(() => false), name });

// A GPU compiles new kernels for every graph (NVRTC, tens of milliseconds each): it runs the first
// GPU_GRAPHS graphs of each property only, which keeps the file well under 20 s there too.
const GPU_GRAPHS = 12;
let gpuGraphsLeft = GPU_GRAPHS;
beforeEach(() => { gpuGraphsLeft = GPU_GRAPHS; });
const devicesNow = (): typeof devices => {
  const gpu = gpuGraphsLeft-- > 0;
  return devices.filter((d) => d.name !== 'cuda' || gpu);
};

/** Compiles `out` of `vars` for every device and checks each result against the oracle's. */
function checkEverywhere(vars: T.Variable[], out: T.Variable, args: readonly Arr[], want: Arr, what: string): void {
  for (const { name, device } of devicesNow()) {
    const got = T.fn({ inputs: vars, outputs: out, device })(...args.map(toNd)) as NDArray;
    assertAllClose(got, toNd(want), EXACT, `seed ${SEED} on ${name}: ${what}`);
  }
}

// ---- broadcasting --------------------------------------------------------------------------------

/** NumPy's broadcast shape of `shapes` (aligned on the right; sizes equal or 1), or null when they do not broadcast. */
function broadcastShape(shapes: readonly (readonly number[])[]): number[] | null {
  const ndim = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let k = 0; k < ndim; k++) {
    const sizes = shapes.map((s) => s[s.length - ndim + k] ?? 1).filter((d) => d !== 1);
    if (sizes.some((d) => d !== sizes[0])) return null;
    out.push(sizes[0] ?? 1);
  }
  return out;
}

/** Element `idx` of the broadcast result read from `a`: right-aligned, size-1 axes repeat. */
function readBroadcast(a: Arr, idx: readonly number[]): number {
  const own = idx.slice(idx.length - a.shape.length).map((i, ax) => (a.shape[ax] === 1 ? 0 : i));
  return a.data[ravel(own, a.shape)]!;
}

function mapBroadcast(arrs: readonly Arr[], f: (...v: number[]) => number): Arr {
  const shape = broadcastShape(arrs.map((a) => a.shape))!;
  const data = Float64Array.from({ length: sizeOf(shape) }, (_, flat) => {
    const idx = unravel(flat, shape);
    return f(...arrs.map((a) => readBroadcast(a, idx)));
  });
  return { shape, data };
}

interface Operand { readonly shape: readonly number[]; readonly broadcastable: readonly boolean[] }

/** Operand shapes that broadcast: from one target shape, some leading axes dropped and some axes set to 1. */
const operands = (count: number): fc.Arbitrary<Operand[]> =>
  fc.array(fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constant(0) }), { maxLength: 4 })
    .chain((target) => fc.array(
      fc.record({
        lead: fc.integer({ min: 0, max: target.length }),
        ones: fc.array(fc.boolean(), { minLength: target.length, maxLength: target.length }),
        marks: fc.array(fc.boolean(), { minLength: target.length, maxLength: target.length }),
      }).map(({ lead, ones, marks }): Operand => {
        const shape = target.map((d, ax) => (ones[ax] ? 1 : d)).slice(lead);
        return { shape, broadcastable: shape.map((d, ax) => d === 1 && marks[ax + lead]!) };
      }),
      { minLength: count, maxLength: count },
    ));

describe(`broadcasting ${onDevices}`, () => {
  it('binary ops give NumPy\'s broadcast shape and values, whichever operand has the size-1 or missing axes', () => {
    const ops = { add: (a: number, b: number) => a + b, mul: (a: number, b: number) => a * b, maximum: Math.max, sub: (a: number, b: number) => a - b };
    fc.assert(fc.property(operands(2), fc.constantFrom(...(Object.keys(ops) as (keyof typeof ops)[])), fc.nat(), (ops2, op, seed) => {
      const [a, b] = ops2.map((o, i) => randomArr(o.shape, seed + i));
      const vars = ops2.map((o, i) => input(randomArr(o.shape, 0), `in${i}`, o.broadcastable));
      checkEverywhere(vars, T[op](vars[0]!, vars[1]!), [a!, b!], mapBroadcast([a!, b!], ops[op]), `${op} of ${JSON.stringify(ops2)}`);
    }), params);
  });

  it('where(a > b, a * c, b - c) broadcasts three operands together', () => {
    fc.assert(fc.property(operands(3), fc.nat(), (ops3, seed) => {
      const arrs = ops3.map((o, i) => randomArr(o.shape, seed + i));
      const [a, b, c] = ops3.map((o, i) => input(arrs[i]!, `in${i}`, o.broadcastable));
      const out = T.where(T.gt(a!, b!), T.mul(a!, c!), T.sub(b!, c!));
      checkEverywhere([a!, b!, c!], out, arrs, mapBroadcast(arrs, (x, y, z) => (x! > y! ? x! * z! : y! - z!)), `where of ${JSON.stringify(ops3)}`);
    }), params);
  });

  it('shapes with unequal sizes other than 1 on an aligned axis are refused, naming both shapes', () => {
    // a and b agree except on one aligned axis, where their sizes differ and neither is 1
    const pair = fc.tuple(
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
      fc.nat(),
      fc.integer({ min: 2, max: 3 }),
      fc.integer({ min: 1, max: 2 }),
    )
      .map(([shape, at, size, offset]) => {
        const ax = at % shape.length;
        return { a: shape.map((d, i) => (i === ax ? size : d)), b: shape.map((d, i) => (i === ax ? size + offset : d)).slice(at % (ax + 1)) };
      });
    fc.assert(fc.property(pair, ({ a, b }) => {
      assert.equal(broadcastShape([a, b]), null, `the case itself: ${JSON.stringify({ a, b })}`);
      const x = input(randomArr(a, 1), 'x');
      const y = input(randomArr(b, 2), 'y');
      for (const { name, device } of devicesNow()) {
        const f = T.fn({ inputs: [x, y], outputs: T.add(x, y), device });
        assert.throws(() => f(toNd(randomArr(a, 1)), toNd(randomArr(b, 2))), /do not broadcast/, `seed ${SEED} on ${name}: ${JSON.stringify({ a, b })}`);
      }
    }), { ...params, numRuns: 30 });
  });
});

// ---- reductions over axes ------------------------------------------------------------------------

type Reduction = 'sum' | 'mean' | 'max' | 'min' | 'prod';
const START: Record<Reduction, number> = { sum: 0, mean: 0, max: -Infinity, min: Infinity, prod: 1 };
const STEP: Record<Reduction, (acc: number, v: number) => number> = {
  sum: (a, v) => a + v, mean: (a, v) => a + v, max: Math.max, min: Math.min, prod: (a, v) => a * v,
};

/** Reduces `x` over `axes` (non-negative, distinct) by walking every element to its output position. */
function reduceOracle(x: Arr, op: Reduction, axes: readonly number[], keepdims: boolean): Arr {
  const kept = x.shape.map((d, ax) => (axes.includes(ax) ? 1 : d));
  const acc = new Float64Array(sizeOf(kept)).fill(START[op]);
  for (let flat = 0; flat < x.data.length; flat++) {
    const pos = ravel(unravel(flat, x.shape).map((i, ax) => (axes.includes(ax) ? 0 : i)), kept);
    acc[pos] = STEP[op](acc[pos]!, x.data[flat]!);
  }
  const count = axes.reduce((n, ax) => n * x.shape[ax]!, 1);
  if (op === 'mean') for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! / count;
  return { shape: keepdims ? kept : x.shape.filter((_, ax) => !axes.includes(ax)), data: acc };
}

interface ReduceCase { readonly shape: number[]; readonly axes: number[] | null; readonly written: number[] | null; readonly keepdims: boolean }

/** A shape, a set of its axes (or null: all), each written as ax or ax - ndim, in any order. */
const reduceCase = (allowZero: boolean): fc.Arbitrary<ReduceCase> =>
  fc.array(fc.integer({ min: allowZero ? 0 : 1, max: 4 }), { minLength: 1, maxLength: 4 }).chain((shape) => fc.record({
    shape: fc.constant(shape),
    picked: fc.option(fc.shuffledSubarray(shape.map((_, ax) => ax), { minLength: 1 }), { freq: 5 }),
    negative: fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
    keepdims: fc.boolean(),
  })).map(({ shape, picked, negative, keepdims }) => ({
    shape, keepdims, axes: picked, written: picked === null ? null : picked.map((ax) => (negative[ax] ? ax - shape.length : ax)),
  }));

describe(`reductions over axes ${onDevices}`, () => {
  for (const op of ['sum', 'mean', 'prod', 'max', 'min'] as const) {
    const allowZero = op !== 'max' && op !== 'min'; // NumPy: a zero-size max has no identity
    it(`${op} over any axes (negative, unordered, all), with and without keepdims${allowZero ? ', zero-size axes included' : ''}`, () => {
      fc.assert(fc.property(reduceCase(allowZero), fc.nat(), (c, seed) => {
        const x = randomArr(c.shape, seed);
        const v = input(x, 'x');
        const out = c.written === null ? (c.keepdims ? T[op](v, null, true) : T[op](v)) : T[op](v, c.written, c.keepdims);
        const want = reduceOracle(x, op, c.axes ?? c.shape.map((_, ax) => ax), c.keepdims);
        checkEverywhere([v], out, [x], want, `${op} ${JSON.stringify(c)}`);
      }), params);
    });
  }

  it('argmax and argmin along one axis (negative allowed) pick the position NumPy picks', () => {
    const arg = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 })
      .chain((shape) => fc.tuple(fc.constant(shape), fc.integer({ min: -shape.length, max: shape.length - 1 }), fc.boolean()));
    fc.assert(fc.property(arg, fc.nat(), ([shape, axis, isMax], seed) => {
      const r = rng(seed);
      // Distinct values (random doubles): ties, where NumPy takes the first, are left to reduce.test.ts.
      const x: Arr = { shape, data: Float64Array.from({ length: sizeOf(shape) }, () => r()) };
      const ax = axis < 0 ? axis + shape.length : axis;
      const outShape = shape.filter((_, k) => k !== ax);
      const want: Arr = {
        shape: outShape,
        data: Float64Array.from({ length: sizeOf(outShape) }, (_, flat) => {
          const at = unravel(flat, outShape);
          let best = 0;
          for (let i = 1; i < shape[ax]!; i++) {
            const value = (j: number) => x.data[ravel([...at.slice(0, ax), j, ...at.slice(ax)], shape)]!;
            if (isMax ? value(i) > value(best) : value(i) < value(best)) best = i;
          }
          return best;
        }),
      };
      const v = input(x, 'x');
      checkEverywhere([v], (isMax ? T.argmax : T.argmin)(v, axis), [x], want, `${isMax ? 'argmax' : 'argmin'} ${JSON.stringify({ shape, axis })}`);
    }), params);
  });
});

// ---- basic slicing and integer indexing ----------------------------------------------------------

type Item = null | number | readonly [number | null, number | null, number];

/** The positions a Python slice start:stop:step picks on an axis of `length` (CPython's PySlice_AdjustIndices). */
function sliceIndices(start: number | null, stop: number | null, step: number, length: number): number[] {
  const clamp = (v: number | null, ifNull: number): number => {
    if (v === null) return ifNull;
    if (v < 0) return v + length >= 0 ? v + length : step < 0 ? -1 : 0;
    return v >= length ? (step < 0 ? length - 1 : length) : v;
  };
  const first = clamp(start, step < 0 ? length - 1 : 0);
  const end = clamp(stop, step < 0 ? -1 : length);
  const out: number[] = [];
  for (let i = first; step > 0 ? i < end : i > end; i += step) out.push(i);
  return out;
}

/** x.get(...items) by the oracle: per axis the positions kept (integer items drop their axis). */
function getOracle(x: Arr, items: readonly Item[]): Arr {
  const picks = x.shape.map((d, ax) => {
    const item = ax < items.length ? items[ax]! : null;
    if (item === null) return { keep: true, at: Array.from({ length: d }, (_, i) => i) };
    if (typeof item === 'number') return { keep: false, at: [item < 0 ? item + d : item] };
    return { keep: true, at: sliceIndices(item[0], item[1], item[2], d) };
  });
  const full = picks.map((p) => p.at.length);
  const data = Float64Array.from({ length: sizeOf(full) }, (_, flat) => {
    const idx = unravel(flat, full);
    return x.data[ravel(idx.map((i, ax) => picks[ax]!.at[i]!), x.shape)]!;
  });
  return { shape: full.filter((_, ax) => picks[ax]!.keep), data };
}

/** Items for some leading axes of `shape`: whole axes, in-range integers (negative too), slices with any bounds. */
const items = (shape: readonly number[]): fc.Arbitrary<Item[]> =>
  fc.integer({ min: 0, max: shape.length }).chain((count) => fc.tuple(...shape.slice(0, count).map((d): fc.Arbitrary<Item> => {
    const bound = fc.option(fc.integer({ min: -7, max: 7 }), { freq: 4 });
    const slice = fc.tuple(bound, bound, fc.constantFrom(1, 1, 2, 3, -1, -2, -3)).map(([a, b, s]): Item => [a, b, s]);
    return d === 0 ? fc.oneof(fc.constant(null), slice) : fc.oneof(fc.constant(null), fc.integer({ min: -d, max: d - 1 }), slice, slice);
  }))).map((list) => [...list]);

const shapes = fc.array(
  fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 5 }) }, { weight: 1, arbitrary: fc.constant(0) }),
  { minLength: 1, maxLength: 3 },
);
const getCase = shapes.chain((shape) => fc.tuple(fc.constant(shape), items(shape)));

describe(`basic slicing and integer indexing ${onDevices}`, () => {
  it('x.get(...) with negative and out-of-range bounds, any step, integers and whole axes, as Python slices', () => {
    fc.assert(fc.property(getCase, fc.nat(), ([shape, list], seed) => {
      const x = randomArr(shape, seed);
      const v = input(x, 'x');
      checkEverywhere([v], v.get(...list), [x], getOracle(x, list), `x${JSON.stringify(shape)}.get(${JSON.stringify(list)})`);
    }), params);
  });

  it('a slice of a slice picks what the two slices pick in turn', () => {
    const chained = getCase.chain(([shape, first]) => {
      const inner = getOracle(randomArr(shape, 0), first).shape;
      return fc.tuple(fc.constant(shape), fc.constant(first), inner.length === 0 ? fc.constant<Item[]>([]) : items(inner));
    });
    fc.assert(fc.property(chained, fc.nat(), ([shape, first, second], seed) => {
      const x = randomArr(shape, seed);
      const v = input(x, 'x');
      const what = `x${JSON.stringify(shape)}.get(${JSON.stringify(first)}).get(${JSON.stringify(second)})`;
      checkEverywhere([v], v.get(...first).get(...second), [x], getOracle(getOracle(x, first), second), what);
    }), params);
  });

  it('an integer index outside [-size, size) is refused, naming the axis and its size', () => {
    const bad = shapes.chain((shape) => fc.tuple(fc.constant(shape), fc.nat({ max: shape.length - 1 }), fc.integer({ min: 0, max: 3 }), fc.boolean()));
    fc.assert(fc.property(bad, ([shape, ax, beyond, negative]) => {
      const d = shape[ax]!;
      const index = negative ? -d - 1 - beyond : d + beyond;
      const v = input(randomArr(shape, 0), 'x');
      const list: Item[] = shape.slice(0, ax + 1).map((_, k) => (k === ax ? index : null));
      for (const { name, device } of devicesNow()) {
        const f = T.fn({ inputs: [v], outputs: v.get(...list), device });
        assert.throws(() => f(toNd(randomArr(shape, 0))), new RegExp(`index ${index} is out of range for axis ${ax} of size ${d}`), `seed ${SEED} on ${name}`);
      }
    }), { ...params, numRuns: 30 });
  });
});

// ---- take, and set / inc on a region -------------------------------------------------------------

const intVector = (values: readonly number[]): T.Variable => T.constant(NDArray.from([...values], { dtype: 'int32', shape: [values.length] }));

/** x with `region` (the positions that `at` maps each element of y to) set to y (last write wins) or incremented by it. */
function updateOracle(x: Arr, y: Arr, at: (yIdx: number[]) => number[], set: boolean): Arr {
  const data = x.data.slice();
  for (let flat = 0; flat < y.data.length; flat++) {
    const pos = ravel(at(unravel(flat, y.shape)), x.shape);
    data[pos] = set ? y.data[flat]! : data[pos]! + y.data[flat]!;
  }
  return { shape: x.shape, data };
}

/** A shape, an axis of it that is not empty, and indices into that axis (negative and repeated ones too). */
const takeCase = shapes.filter((s) => s.some((d) => d > 0)).chain((shape) => fc.nat({ max: shape.length - 1 })
  .filter((ax) => shape[ax]! > 0)
  .chain((axis) => fc.tuple(fc.constant(shape), fc.constant(axis), fc.array(fc.integer({ min: -shape[axis]!, max: shape[axis]! - 1 }), { maxLength: 6 }))));

describe(`take, and set / inc on a region ${onDevices}`, () => {
  it('take along an axis with negative and repeated indices', () => {
    fc.assert(fc.property(takeCase, fc.nat(), ([shape, axis, indices], seed) => {
      const x = randomArr(shape, seed);
      const outShape = shape.map((d, k) => (k === axis ? indices.length : d));
      const want: Arr = {
        shape: outShape,
        data: Float64Array.from({ length: sizeOf(outShape) }, (_, flat) => {
          const idx = unravel(flat, outShape);
          const i = indices[idx[axis]!]!;
          return x.data[ravel(idx.map((j, k) => (k === axis ? (i < 0 ? i + shape[axis]! : i) : j)), shape)]!;
        }),
      };
      const v = input(x, 'x');
      checkEverywhere([v], v.take(intVector(indices), axis), [x], want, `take(x${JSON.stringify(shape)}, ${JSON.stringify(indices)}, ${axis})`);
    }), params);
  });

  it('set and inc on a take: repeated indices, the last write wins (set) or every one adds (inc, as np.add.at)', () => {
    fc.assert(fc.property(takeCase, fc.boolean(), fc.nat(), ([shape, axis, indices], set, seed) => {
      const x = randomArr(shape, seed);
      const y = randomArr(shape.map((d, k) => (k === axis ? indices.length : d)), seed + 1);
      const norm = (i: number): number => (i < 0 ? i + shape[axis]! : i);
      const want = updateOracle(x, y, (idx) => idx.map((j, k) => (k === axis ? norm(indices[j]!) : j)), set);
      const [vx, vy] = [input(x, 'x'), input(y, 'y')];
      const region = vx.take(intVector(indices), axis);
      const out = set ? T.setSubtensor(region, vy) : T.incSubtensor(region, vy);
      checkEverywhere([vx, vy], out, [x, y], want, `${set ? 'set' : 'inc'} on take(x${JSON.stringify(shape)}, ${JSON.stringify(indices)}, ${axis})`);
    }), params);
  });

  it('set and inc on a basic slice write exactly the sliced positions', () => {
    fc.assert(fc.property(getCase, fc.boolean(), fc.nat(), ([shape, list], set, seed) => {
      const x = randomArr(shape, seed);
      // Each element of the region, traced back to its position in x through the same picks as getOracle.
      const positions = getOracle({ shape, data: Float64Array.from({ length: sizeOf(shape) }, (_, i) => i) }, list);
      const y = randomArr(positions.shape, seed + 1);
      const want = updateOracle(x, y, (idx) => unravel(positions.data[ravel(idx, positions.shape)]!, shape), set);
      const [vx, vy] = [input(x, 'x'), input(y, 'y')];
      const out = set ? T.setSubtensor(vx.get(...list), vy) : T.incSubtensor(vx.get(...list), vy);
      checkEverywhere([vx, vy], out, [x, y], want, `${set ? 'set' : 'inc'} on x${JSON.stringify(shape)}.get(${JSON.stringify(list)})`);
    }), params);
  });
});
