// WebAssembly SIMD elementwise chains: every supported op against the JavaScript kernels (the CPU
// device with simd off) bit for bit, on special values (NaN, ±Inf, ±0, subnormals, halves), sizes
// that are not whole vectors, and the row layouts (flat, bias rows, per-row columns, scalars), in
// float32 and float64; chains against the float64 oracle; column sums in the reference's order;
// what the lane check refuses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { CpuDevice } from '../../../src/devices/cpu/cpu-device.js';
import { chainLane } from '../../../src/devices/cpu/wasm-chain.js';
import { ChainKernel, compiledChainCount } from '../../../src/devices/cpu/wasm-chain-driver.js';
import { rowLayout, collapseLayout, wasmPays } from '../../../src/devices/cpu/elementwise-kernel.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkAgainstOracle } from './cpu-cases.js';

const simd = new CpuDevice({ forceFallback: true, notice: false });
const js = new CpuDevice({ forceFallback: true, notice: false, simd: false });

const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 1.5e-39, 0.5, -0.5, 1.5, 2.5, -2.5, 3, -7.25, 1e30, -1e-30, 1];

/** Random values in [-4, 4) with the special values sprinkled in (every 7th element). */
function values(shape: number[], seed: number, dtype: 'float32' | 'float64'): NDArray {
  const a = randomArray(shape, seed, { dtype, lo: -4, hi: 4 });
  for (let i = seed % 7; i < a.size; i += 7) a.data[i] = SPECIAL[(i + seed) % SPECIAL.length]!;
  return a;
}

const show = (v: number | undefined): string => (Object.is(v, -0) ? '-0' : String(v));

/** Element-wise identity including the sign of zero and NaN = NaN. */
function assertSameBits(got: NDArray, want: NDArray, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  assert.equal(got.dtype, want.dtype, `${what}: dtype`);
  for (let i = 0; i < got.size; i++) {
    if (!Object.is(got.data[i], want.data[i])) assert.fail(`${what}: element ${i} is ${show(got.data[i])}, the JavaScript kernel gives ${show(want.data[i])}`);
  }
}

function sameAsJs(inputs: T.Variable[], outputs: T.Variable[], args: NDArray[], what: string): void {
  const before = compiledChainCount();
  const got = T.fn({ inputs, outputs, device: simd })(...args) as NDArray[];
  const want = T.fn({ inputs, outputs, device: js })(...args) as NDArray[];
  got.forEach((g, i) => assertSameBits(g, want[i]!, `${what} output ${i}`));
  // A kernel that did not run in WebAssembly would make this test vacuous.
  assert.ok(compiledChainCount() > before || what.includes('cached'), `${what}: no WebAssembly kernel was compiled`);
}

/** Layouts (x shape, y shape) that reach the WebAssembly path: flat, padded rows, bias rows, columns, scalars. */
const LAYOUTS: [number[], number[]][] = [
  [[1027], [1027]], // flat, not whole vectors
  [[5, 257], [257]], // bias row, padded rows (257 >= WASM_MIN_PADDED_ROW)
  [[9, 260], [9, 1]], // per-row column
  [[3, 4, 172], [4, 172]], // collapses to 12 x 172 with a repeated 4 x 172 block: JS, but must still be right
  [[2050], []], // scalar
  [[64, 32], [64, 32]], // same shapes: flat
];

const UNARY: [string, (x: T.Variable) => T.Variable][] = [
  ['neg', T.neg], ['abs', T.abs], ['sqrt', T.sqrt], ['square', T.square], ['reciprocal', T.reciprocal], ['relu', T.relu],
  ['floor', T.floor], ['ceil', T.ceil], ['round', T.round],
];
const BINARY: [string, (x: T.Variable, y: T.Variable) => T.Variable][] = [
  ['add', T.add], ['sub', T.sub], ['mul', T.mul], ['div', T.div], ['maximum', T.maximum], ['minimum', T.minimum],
];

for (const dtype of ['float32', 'float64'] as const) {
  describe(`WebAssembly chains, ${dtype}`, () => {
    it('every unary op gives the JavaScript kernel\'s values, bit for bit', () => {
      for (const [name, op] of UNARY) {
        const x = T.tensor({ dtype, ndim: 1, name: 'x' });
        sameAsJs([x], [op(x)], [values([1031], 3, dtype)], `${name} ${dtype}`);
      }
    });

    it('every binary op, on every layout', () => {
      for (const [name, op] of BINARY) {
        LAYOUTS.forEach(([xs, ys], k) => {
          const x = T.tensor({ dtype, ndim: xs.length, name: 'x' });
          const y = T.tensor({ dtype, ndim: ys.length, name: 'y' });
          sameAsJs([x, y], [op(x, y), op(y, x)], [values(xs, k + 1, dtype), values(ys, k + 11, dtype)], `${name} ${JSON.stringify([xs, ys])} cached`);
        });
      }
    });

    it('comparisons, logical ops, casts and where inside chains', () => {
      const x = T.tensor({ dtype, ndim: 2, name: 'x' });
      const y = T.tensor({ dtype, ndim: 1, name: 'y' });
      const outs = [
        T.mul(T.cast(T.gt(x, y), dtype), x), // the ReLU gradient's mask
        T.where(T.ge(x, y), x, T.neg(y)),
        T.add(T.cast(T.and(T.lt(x, 1), T.not(T.eq(x, y))), dtype), T.cast(T.or(T.le(x, -1), T.neq(y, 0)), dtype)),
        T.cast(T.xor(T.gt(x, 0), T.gt(y, 0)), dtype),
        T.mul(T.cast(T.cast(x, 'bool'), dtype), 3),
      ];
      sameAsJs([x, y], outs, [values([6, 300], 5, dtype), values([300], 6, dtype)], `logical ${dtype}`);
    });

    it('long chains agree with the float64 oracle', () => {
      const x = T.tensor({ dtype, ndim: 2, name: 'x' });
      const b = T.tensor({ dtype, ndim: 1, name: 'b' });
      const s = T.tensor({ dtype, ndim: 0, name: 's' });
      const z = T.div(T.sub(T.mul(T.relu(T.add(x, b)), s), T.sqrt(T.abs(x))), T.add(T.square(b), 1));
      const before = compiledChainCount();
      const args = [randomArray([7, 260], 1, { dtype }), randomArray([260], 2, { dtype }), NDArray.scalar(0.75, dtype)];
      checkAgainstOracle(simd, [x, b, s], [z], args, { rtol: 1e-5, atol: 1e-6 }, `chain ${dtype}`);
      assert.ok(compiledChainCount() > before);
    });
  });
}

it('column sums accumulate in float64 row by row, as the JavaScript reduction (same bits)', () => {
  for (const [rows, cols] of [[37, 1001], [300, 8], [3, 20000]] as const) {
    const x = randomArray([rows, cols], rows, { dtype: 'float32', lo: -1e3, hi: 1e3 });
    const steps = [{ op: 'cast', attrs: { dtype: 'float32' }, args: [0], dtype: 'float32' as const }];
    const k = new ChainKernel({ steps, lane: 'f32', inner: ['s'], advance: [true], stores: [], colsum: 0 });
    const acc = new Float64Array(cols).fill(123);
    k.run(rows, cols, [{ data: x.data, kind: 's', advance: true }], [], acc);
    const want = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[c] = want[c]! + x.data[r * cols + c]!;
    assert.deepEqual(Array.from(acc), Array.from(want), `${rows} x ${cols}`);
  }
});

it('sum, mean and sumToLike over leading axes give the JavaScript reduction\'s bits', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const x = T.tensor({ dtype, ndim: 3, name: 'x' });
    const like = T.tensor({ dtype, ndim: 1, name: 'like' });
    const outs = [T.sum(x, 0), T.mean(x, [0, 1]), T.sum(x, [0, 1], true), T.sumToLike(x, like), T.mean(x, 2)];
    sameAsJs([x, like], outs, [values([3, 7, 300], 9, dtype), values([300], 1, dtype)], `reductions ${dtype} cached`);
  }
});

it('a chain stores several step values and sums one of them in one pass', () => {
  // z = x + b (bias row), r = relu(z), column sums of r; 13 columns: padded rows.
  const [rows, cols] = [11, 13];
  const x = randomArray([rows, cols], 1, { dtype: 'float64' });
  const b = randomArray([cols], 2, { dtype: 'float64' });
  const k = new ChainKernel({
    steps: [{ op: 'add', attrs: {}, args: [0, 1], dtype: 'float64' }, { op: 'relu', attrs: {}, args: [2], dtype: 'float64' }],
    lane: 'f64', inner: ['s', 's'], advance: [true, false], stores: [0, 1], colsum: 1,
  });
  const z = new Float64Array(rows * cols), r = new Float64Array(rows * cols), acc = new Float64Array(cols);
  k.run(rows, cols, [{ data: x.data, kind: 's', advance: true }, { data: b.data, kind: 's', advance: false }], [z, r], acc);
  const sums = new Float64Array(cols);
  for (let i = 0; i < rows * cols; i++) {
    const v = x.data[i]! + b.data[i % cols]!;
    assert.equal(z[i], v);
    assert.equal(r[i], v > 0 ? v : 0);
    sums[i % cols] = sums[i % cols]! + r[i]!;
  }
  assert.deepEqual(Array.from(acc), Array.from(sums));
});

it('chainLane refuses what the WebAssembly code does not cover', () => {
  const f32 = 'float32' as const;
  const one = (op: string, dtype: T.DType = f32) => [{ op, attrs: {}, args: [0], dtype }];
  assert.equal(chainLane(one('relu'), [f32], [0]), 'f32');
  assert.equal(chainLane(one('relu', 'float64'), ['float64'], [0]), 'f64');
  assert.equal(chainLane(one('exp'), [f32], [0]), null, 'no exp in WebAssembly');
  assert.equal(chainLane(one('relu', 'int32'), ['int32'], [0]), null, 'integers stay in JavaScript');
  assert.equal(chainLane([{ op: 'add', attrs: {}, args: [0, 1], dtype: f32 }], [f32, 'float64'], [0]), null, 'mixed input dtypes');
  assert.equal(chainLane([{ op: 'gt', attrs: {}, args: [0, 0], dtype: 'bool' }], [f32], [0]), null, 'a bool result needs a Uint8Array');
  assert.equal(chainLane([{ op: 'and', attrs: {}, args: [0, 0], dtype: 'bool' }], [f32], []), null, 'logical ops on floats');
  assert.equal(chainLane([{ op: 'cast', attrs: { dtype: 'float64' }, args: [0], dtype: 'float64' }], [f32], [0]), null, 'lane changes');
});

it('row layouts and the size rule', () => {
  assert.deepEqual(rowLayout(collapseLayout([6, 4], [[6, 4], [4], []])), { rows: 6, inner: 4, kinds: ['s', 's', 'z'], advance: [true, false, false] });
  assert.deepEqual(rowLayout(collapseLayout([6, 4], [[6, 1], [6, 4]])), { rows: 6, inner: 4, kinds: ['z', 's'], advance: [true, true] });
  assert.equal(rowLayout(collapseLayout([2, 3, 4], [[2, 3, 4], [3, 1]])), null, 'three collapsed axes');
  assert.equal(wasmPays(1, 1023, 4), false, 'too small');
  assert.equal(wasmPays(1, 1025, 4), true, 'one padded row');
  assert.equal(wasmPays(512, 10, 4), false, 'narrow padded rows copy row by row');
  assert.equal(wasmPays(512, 12, 4), true, 'whole vectors: one copy per block');
  assert.equal(wasmPays(8, 257, 4), true, 'wide padded rows');
});

it('kernels are compiled once per signature', () => {
  // A chain no other test compiles (the cache is per thread).
  const steps = [
    { op: 'mul', attrs: {}, args: [0, 1], dtype: 'float32' as const },
    { op: 'minimum', attrs: {}, args: [2, 1], dtype: 'float32' as const },
    { op: 'square', attrs: {}, args: [3], dtype: 'float32' as const },
  ];
  const sig = { steps, lane: 'f32' as const, inner: ['s', 'z'] as const, advance: [true, false], stores: [2], colsum: -1 };
  const before = compiledChainCount();
  new ChainKernel({ ...sig, inner: [...sig.inner] });
  new ChainKernel({ ...sig, inner: [...sig.inner] });
  assert.equal(compiledChainCount() - before, 1);
  new ChainKernel({ ...sig, inner: ['s', 's'] });
  assert.equal(compiledChainCount() - before, 2);
});
