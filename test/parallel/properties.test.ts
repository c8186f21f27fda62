// Property: N workers equal one device on the whole batch. A synk.fn with two scattered inputs (a
// matrix of rows and one label per row) and a broadcast vector, whose outputs combine over the ranks
// by 'sum', 'avg' (row-weighted), 'max' and 'gather', is called on random batches: uneven over the
// ranks (some ranks with no rows at all), all rows or a count, a range, an index list with repeats
// (a shuffle), an Int32Array, with 1..3 slices per rank. Each result must equal both an oracle
// written here in plain float64 JavaScript and the float64 reference device run once on the
// selected rows; in float32, within float32 rounding of a float32 device and of the oracle. Groups:
// 1, 2 and 3 reference workers, 2 CPU workers, and 3 mixed workers.
// fast-check's seed is fixed (SEED); a failure prints it with the drawn case.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { ReferenceDevice } from '../../src/devices/reference/reference-device.js';
import type { DeviceSpec } from '../../src/devices/create.js';
import { assertAllClose, rng } from '../helpers/allclose.js';

const SEED = 20261203;
const RUNS = 60;
const TOLERANCE = { rtol: 1e-12, atol: 1e-12 };

type Selection =
  | { readonly kind: 'all' }
  | { readonly kind: 'count'; readonly n: number }
  | { readonly kind: 'range'; readonly start: number; readonly stop: number }
  | { readonly kind: 'list'; readonly rows: readonly number[] }
  | { readonly kind: 'int32'; readonly rows: readonly number[] };

interface Case {
  readonly rows: number;
  readonly width: number;
  readonly selection: Selection;
  readonly numSlices: number;
  readonly valuesSeed: number;
}

/** The rows a selection picks, in order, as NumPy would index them (the oracle's reading of `batch`). */
function selectedRows(rows: number, s: Selection): number[] {
  switch (s.kind) {
    case 'all': return Array.from({ length: rows }, (_, i) => i);
    case 'count': return Array.from({ length: s.n }, (_, i) => i);
    case 'range': return Array.from({ length: s.stop - s.start }, (_, i) => s.start + i);
    case 'list':
    case 'int32': return [...s.rows];
    default: return s satisfies never;
  }
}

function batchOption(s: Selection): synk.CallOptions['batch'] {
  switch (s.kind) {
    case 'all': return undefined;
    case 'count': return s.n;
    case 'range': return { start: s.start, stop: s.stop };
    case 'list': return [...s.rows];
    case 'int32': return Int32Array.from(s.rows);
    default: return s satisfies never;
  }
}

const selection = (rows: number): fc.Arbitrary<Selection> => fc.oneof(
  fc.constant<Selection>({ kind: 'all' }),
  fc.integer({ min: 1, max: rows }).map((n): Selection => ({ kind: 'count', n })),
  fc.tuple(fc.nat({ max: rows - 1 }), fc.integer({ min: 1, max: rows })).map(([a, len]): Selection => {
    const start = Math.min(a, rows - 1);
    return { kind: 'range', start, stop: Math.min(rows, start + len) };
  }),
  fc.array(fc.nat({ max: rows - 1 }), { minLength: 1, maxLength: 2 * rows }).map((list): Selection => ({ kind: 'list', rows: list })),
  fc.array(fc.nat({ max: rows - 1 }), { minLength: 1, maxLength: rows }).map((list): Selection => ({ kind: 'int32', rows: list })),
);

const cases: fc.Arbitrary<Case> = fc
  .record({ rows: fc.integer({ min: 1, max: 9 }), width: fc.integer({ min: 1, max: 4 }), valuesSeed: fc.nat() })
  .chain(({ rows, width, valuesSeed }) => selection(rows).chain((sel) => {
    const picked = selectedRows(rows, sel).length;
    return fc.integer({ min: 1, max: Math.min(3, picked) }).map((numSlices): Case => ({ rows, width, selection: sel, numSlices, valuesSeed }));
  }));

interface Inputs { readonly x: T.NDArray; readonly y: T.NDArray; readonly v: T.NDArray }

function inputsOf(c: Case): Inputs {
  const r = rng(c.valuesSeed);
  const draw = (shape: number[]): T.NDArray => {
    const a = new T.NDArray('float64', shape);
    for (let i = 0; i < a.size; i++) a.data[i] = 2 * r() - 1;
    return a;
  };
  return { x: draw([c.rows, c.width]), y: draw([c.rows]), v: draw([c.width]) };
}

/** Rows `idx` of a matrix or vector (a copy). */
function takeRows(a: T.NDArray, idx: readonly number[]): T.NDArray {
  const w = a.ndim === 1 ? 1 : a.shape[1]!;
  const out = new T.NDArray(a.dtype, a.ndim === 1 ? [idx.length] : [idx.length, w]);
  idx.forEach((row, i) => out.data.set(a.data.subarray(row * w, (row + 1) * w), i * w));
  return out;
}

/** The outputs, written out element by element in float64 over the selected rows (no library code). */
function oracle({ x, y, v }: Inputs, idx: readonly number[]): number[][] {
  const w = v.size;
  const at = (row: number, j: number): number => x.data[row * w + j]!;
  const cols = Array.from({ length: w }, (_, j) => j);
  const dots = idx.map((row) => cols.reduce((s, j) => s + at(row, j) * v.data[j]!, 0));
  const sumDots = dots.reduce((s, d) => s + d, 0);
  const colMean = cols.map((j) => idx.reduce((s, row) => s + at(row, j), 0) / idx.length);
  const meanSquares = idx.reduce((s, row) => s + cols.reduce((q, j) => q + at(row, j) ** 2, 0), 0) / idx.length;
  const colTanh = cols.map((j) => idx.reduce((s, row) => s + Math.tanh(at(row, j)), 0));
  const weighted = idx.reduce((s, row, i) => s + dots[i]! * y.data[row]!, 0);
  const maxAbs = Math.max(...idx.flatMap((row) => cols.map((j) => Math.abs(at(row, j)))));
  return [[sumDots], colMean, [meanSquares], colTanh, [weighted], [maxAbs], dots];
}

/** The function's graph over inputs of `dtype`: every output with its op over the ranks. */
function graph(dtype: 'float32' | 'float64') {
  const x = T.matrix('x', dtype);
  const y = T.vector('y', dtype);
  const v = T.vector('v', dtype);
  const dots = T.sum(T.mul(x, v), 1); // v broadcast over the rows
  const outputs: [T.Variable, synk.OutputOp][] = [
    [T.sum(dots), 'sum'],
    [T.mean(x, 0), 'avg'],
    [T.mean(T.sum(T.square(x), 1)), 'avg'],
    [T.sum(T.tanh(x), 0), 'sum'],
    [T.sum(T.mul(dots, y)), 'sum'],
    [T.max(T.abs(x)), 'max'],
    [dots, 'gather'],
  ];
  return { x, y, v, outputs };
}
const SHAPES = ['()', '(width)', '()', '(width)', '()', '()', '(rows)'];
const g64 = graph('float64');
const g32 = graph('float32');
const OUTPUTS = g64.outputs;
const oneDevice = T.fn({ inputs: [g64.x, g64.y, g64.v], outputs: OUTPUTS.map(([o]) => o), device: new ReferenceDevice({ float64: true }) });
const oneDevice32 = T.fn({ inputs: [g32.x, g32.y, g32.v], outputs: g32.outputs.map(([o]) => o), device: new ReferenceDevice() });
/** float32 results: each rank rounds its partial result, and the ranks' partials are combined in float32 ('avg' in float64). */
const FLOAT32_TOLERANCE = { rtol: 1e-5, atol: 1e-5 };

const asFloat32 = (a: T.NDArray): T.NDArray => new T.NDArray('float32', a.shape, Float32Array.from(a.data));
const asFloat64 = (a: T.NDArray): T.NDArray => new T.NDArray('float64', a.shape, Float64Array.from(a.data));
const expected = (want: readonly number[], like: T.NDArray): number | readonly number[] => (like.ndim === 0 ? want[0]! : want);

const GROUPS: { readonly label: string; readonly devices: 'reference' | 'cpu' | readonly DeviceSpec[]; readonly n: number }[] = [
  { label: '1 reference worker', devices: 'reference', n: 1 },
  { label: '2 reference workers', devices: 'reference', n: 2 },
  { label: '3 reference workers', devices: 'reference', n: 3 },
  { label: '2 CPU workers', devices: 'cpu', n: 2 },
  {
    label: '3 mixed workers (reference, CPU fallback GEMM, CPU)',
    devices: [{ kind: 'reference' }, { kind: 'cpu', forceFallback: true }, { kind: 'cpu' }],
    n: 3,
  },
];

for (const group of GROUPS) {
  describe(`N workers equal one device: ${group.label}`, () => {
    const f = synk.fn({ inputs: [g64.x, g64.y], bcastInputs: [g64.v], outputs: g64.outputs, name: 'properties' });
    const f32 = synk.fn({ inputs: [g32.x, g32.y], bcastInputs: [g32.v], outputs: g32.outputs, name: 'properties32' });
    before(async () => {
      await synk.fork(typeof group.devices === 'string' ? { n: group.n, devices: group.devices } : { devices: group.devices });
    });
    after(async () => {
      await synk.close();
    });

    it("'sum', 'avg', 'max' and 'gather' outputs equal the oracle and the float64 reference device on the batch", async () => {
      await fc.assert(fc.asyncProperty(cases, async (c) => {
        const inputs = inputsOf(c);
        const idx = selectedRows(c.rows, c.selection);
        const what = `seed ${SEED}, ${group.label}, case ${JSON.stringify(c)}`;
        const batch = batchOption(c.selection);
        const options: synk.CallOptions = { numSlices: c.numSlices, ...(batch === undefined ? {} : { batch }) };
        const got = (await f(inputs.x, inputs.y, inputs.v, options)) as T.NDArray[];
        const whole = oneDevice(takeRows(inputs.x, idx), takeRows(inputs.y, idx), inputs.v) as T.NDArray[];
        const want = oracle(inputs, idx);
        assert.equal(got.length, OUTPUTS.length, what);
        got.forEach((g, k) => {
          const label = `${what}: output ${k} (${OUTPUTS[k]![1]}, shape ${SHAPES[k]})`;
          assertAllClose(whole[k]!, expected(want[k]!, whole[k]!), TOLERANCE, `${label}, one device vs the oracle`);
          assertAllClose(g, whole[k]!, TOLERANCE, `${label}, ${group.n} workers vs one device`);
        });
      }), { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true });
    });

    it('in float32: the same outputs, within float32 rounding of one float32 device and of the oracle', async () => {
      await fc.assert(fc.asyncProperty(cases, async (c) => {
        const drawn = inputsOf(c);
        const [x32, y32, v32] = [drawn.x, drawn.y, drawn.v].map(asFloat32) as [T.NDArray, T.NDArray, T.NDArray];
        const idx = selectedRows(c.rows, c.selection);
        const what = `seed ${SEED}, ${group.label}, float32, case ${JSON.stringify(c)}`;
        const batch = batchOption(c.selection);
        const options: synk.CallOptions = { numSlices: c.numSlices, ...(batch === undefined ? {} : { batch }) };
        const got = (await f32(x32, y32, v32, options)) as T.NDArray[];
        const whole = oneDevice32(takeRows(x32, idx), takeRows(y32, idx), v32) as T.NDArray[];
        // The oracle on the float32 values themselves, in float64.
        const want = oracle({ x: asFloat64(x32), y: asFloat64(y32), v: asFloat64(v32) }, idx);
        got.forEach((g, k) => {
          const label = `${what}: output ${k} (${g32.outputs[k]![1]}, shape ${SHAPES[k]})`;
          assert.equal(g.dtype, 'float32', `${label}: dtype`);
          assertAllClose(g, whole[k]!, FLOAT32_TOLERANCE, `${label}, ${group.n} workers vs one float32 device`);
          assertAllClose(g, expected(want[k]!, g), FLOAT32_TOLERANCE, `${label}, ${group.n} workers vs the oracle`);
        });
      }), { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true });
    });
  });
}
