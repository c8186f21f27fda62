// Random streams: the Philox generator against its published answers, the documented mapping from
// state to values, statistics of 10^5 draws, reproducibility, state updates, dropout and its grad.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { philox4x32 } from '../../src/ops/random.js';
import { randomUpdatesFor } from '../../src/build/random-streams.js';
import { forEachDevice } from '../helpers/devices.js';
import { assertClose } from './elementwise-cases.js';
import type { Device } from '../../src/devices/device.js';

const N = 100_000;

function stats(a: NDArray): { mean: number; variance: number; min: number; max: number } {
  let s = 0, min = Infinity, max = -Infinity;
  for (const v of a.data) { s += v; if (v < min) min = v; if (v > max) max = v; }
  const mean = s / a.size;
  let q = 0;
  for (const v of a.data) q += (v - mean) ** 2;
  return { mean, variance: q / a.size, min, max };
}

/** Within k standard errors. */
function near(actual: number, expected: number, sigma: number, what: string, k = 5): void {
  assert.ok(Math.abs(actual - expected) <= k * sigma, `${what}: ${actual} is not within ${k} x ${sigma} of ${expected}`);
}

// Whether T.fn already adds the updates of random draws by itself (see randomUpdatesFor).
const autoUpdates = T.fn({ outputs: T.randomStreams(0).uniform([1]) }).describe().program.updates.length > 0;
const AUTO_TODO = autoUpdates ? false : 'T.fn does not yet call randomUpdatesFor in describeFunction';

describe('Philox-4x32-10', () => {
  it('matches the Random123 known-answer vectors', () => {
    const kat: [number[], number[], number[]][] = [
      [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
      [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
      [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
    ];
    for (const [c, k, want] of kat) {
      const out = new Uint32Array(4);
      philox4x32(c[0]!, c[1]!, c[2]!, c[3]!, k[0]!, k[1]!, out);
      assert.deepEqual([...out], want);
    }
  });
});

forEachDevice('random streams', (device: Device, c) => {
  const run = (outputs: T.Variable | T.Variable[], updates: [T.SharedVariable, T.Variable][] = [], inputs: T.Variable[] = []) =>
    T.fn({ inputs, outputs, updates, device });

  it('uniform values follow the documented Philox mapping of the state', () => {
    const rs = T.randomStreams(7);
    const u = rs.uniform([3, 5], { low: -2, high: 3, dtype: 'float64' });
    const state = rs.states[0]!;
    const f = run(u, rs.updates());
    for (let call = 0; call < 2; call++) {
      const s = state.getValue().data;
      const got = f() as NDArray;
      const block = new Uint32Array(4);
      const expected: number[] = [];
      for (let i = 0; i < 15; i++) {
        philox4x32(i >> 2, 0, s[2]!, s[3]!, s[0]!, s[1]!, block);
        expected.push(-2 + 5 * ((block[i & 3]! + 0.5) / 2 ** 32));
      }
      assertClose(got, NDArray.from(expected, { dtype: 'float64', shape: [3, 5] }), { rtol: 1e-12, atol: 1e-12 });
    }
  });

  it(`uniform: ${N} draws have the right mean, variance and range`, () => {
    const rs = T.randomStreams(1);
    const f = run([rs.uniform([N]), rs.uniform([N / 100, 100], { low: -3, high: 5 })], rs.updates());
    const [a, b] = f() as NDArray[];
    assert.equal(a!.dtype, 'float32');
    const sa = stats(a!);
    near(sa.mean, 0.5, Math.sqrt(1 / 12 / N), 'mean of U(0,1)');
    near(sa.variance, 1 / 12, 1 / 12 * Math.sqrt(0.8 / N), 'variance of U(0,1)');
    assert.ok(sa.min >= 0 && sa.max < 1, `range [${sa.min}, ${sa.max}] not in [0, 1)`);
    assert.ok(sa.min < 1e-3 && sa.max > 1 - 1e-3, 'the draws cover the interval');
    const sb = stats(b!);
    assert.deepEqual(b!.shape, [N / 100, 100]);
    near(sb.mean, 1, 8 * Math.sqrt(1 / 12 / N), 'mean of U(-3,5)');
    near(sb.variance, 64 / 12, 64 / 12 * Math.sqrt(0.8 / N), 'variance of U(-3,5)');
    assert.ok(sb.min >= -3 && sb.max < 5);
  });

  it('uniform stays below high after rounding to float32, even on a tiny interval', () => {
    const rs = T.randomStreams(3);
    const high = 1 + 2 ** -22;
    const a = run(rs.uniform([N], { low: 1, high }))() as NDArray;
    for (const v of a.data) assert.ok(v >= 1 && v < high, `value ${v} outside [1, ${high})`);
  });

  it(`normal: ${N} draws have the right moments`, () => {
    const rs = T.randomStreams(2);
    const [z, w] = run([rs.normal([N], { dtype: 'float64' }), rs.normal([200, N / 200], { mean: 3, std: 0.5 })], rs.updates())() as NDArray[];
    assert.equal(z!.dtype, 'float64');
    const sz = stats(z!);
    near(sz.mean, 0, Math.sqrt(1 / N), 'mean of N(0,1)');
    near(sz.variance, 1, Math.sqrt(2 / N), 'variance of N(0,1)');
    let within1 = 0, m4 = 0;
    for (const v of z!.data) { if (Math.abs(v) < 1) within1++; m4 += v ** 4; }
    near(within1 / N, 0.682689, Math.sqrt(0.2167 / N), 'fraction within one sigma');
    near(m4 / N, 3, Math.sqrt(96 / N), 'fourth moment');
    const sw = stats(w!);
    near(sw.mean, 3, 0.5 / Math.sqrt(N), 'mean of N(3, 0.5^2)');
    near(sw.variance, 0.25, 0.25 * Math.sqrt(2 / N), 'variance of N(3, 0.5^2)');
  });

  it(`bernoulli: ${N} draws are 0/1 with mean p; p = 0 and p = 1 are exact`, () => {
    const rs = T.randomStreams(4);
    const [b, zero, one] = run(
      [rs.bernoulli([N], { p: 0.3 }), rs.bernoulli([1000], { p: 0 }), rs.bernoulli([1000], { p: 1, dtype: 'bool' })],
      rs.updates(),
    )() as NDArray[];
    assert.equal(b!.dtype, 'float32');
    assert.ok(b!.data.every((v) => v === 0 || v === 1));
    near(stats(b!).mean, 0.3, Math.sqrt(0.21 / N), 'mean of Bernoulli(0.3)');
    assert.ok(zero!.data.every((v) => v === 0));
    assert.equal(one!.dtype, 'bool');
    assert.ok(one!.data.every((v) => v === 1));
  });

  it('bernoulli with p a variable broadcasting over the shape', () => {
    const rs = T.randomStreams(5);
    const p = T.vector('p', 'float64');
    const f = run(rs.bernoulli([N / 2, 2], { p, dtype: 'int32' }), rs.updates(), [p]);
    const b = f([0.1, 0.8]) as NDArray;
    assert.equal(b.dtype, 'int32');
    const cols = [0, 0];
    for (let i = 0; i < b.size; i++) cols[i % 2]! += b.data[i]!;
    near(cols[0]! / (N / 2), 0.1, Math.sqrt(0.09 / (N / 2)), 'column 0');
    near(cols[1]! / (N / 2), 0.8, Math.sqrt(0.16 / (N / 2)), 'column 1');
    assert.throws(() => f([0.1, 0.2, 0.3]), (e: Error) => /randomBernoulli/.test(e.message) && /\(3,\)/.test(e.message) && /\(50000, 2\)/.test(e.message));
  });

  it('shapes may be symbolic (x.shape), empty or scalar', () => {
    const rs = T.randomStreams(6);
    const x = T.tensor3('x');
    const f = run([rs.uniform(x.shape), rs.normal([x.shape[0]!, 2]), rs.bernoulli([0, 3]), rs.uniform([])], rs.updates(), [x]);
    const [u, n, e, s] = f(NDArray.zeros([2, 3, 4])) as NDArray[];
    assert.deepEqual(u!.shape, [2, 3, 4]);
    assert.deepEqual(n!.shape, [2, 2]);
    assert.deepEqual(e!.shape, [0, 3]);
    assert.deepEqual(s!.shape, []);
    assert.deepEqual((f(NDArray.zeros([1, 0, 5])) as NDArray[])[0]!.shape, [1, 0, 5]);
  });

  it('the same seed gives the same sequence; other seeds and other draws differ', () => {
    const make = (seed: number) => {
      const rs = T.randomStreams(seed);
      return run([rs.uniform([50]), rs.uniform([50]), rs.normal([50])], rs.updates());
    };
    const f1 = make(11), f2 = make(11), f3 = make(12);
    for (let call = 0; call < 3; call++) {
      const a = f1() as NDArray[], b = f2() as NDArray[], d = f3() as NDArray[];
      a.forEach((x, k) => assert.deepEqual([...x.data], [...b[k]!.data], `call ${call} output ${k}`));
      assert.notDeepEqual([...a[0]!.data], [...d[0]!.data], 'another seed');
      assert.notDeepEqual([...a[0]!.data], [...a[1]!.data], 'two draws of one stream');
    }
  });

  it('successive calls give fresh numbers; the counter advances and the key stays', () => {
    const rs = T.randomStreams(8);
    const u = rs.uniform([20]);
    const state = rs.states[0]!;
    const before = [...state.getValue().data];
    assert.deepEqual(before.slice(2), [0, 0]);
    const f = run(u, rs.updates());
    const first = [...(f() as NDArray).data];
    const second = [...(f() as NDArray).data];
    assert.notDeepEqual(first, second);
    const after = [...state.getValue().data];
    assert.deepEqual(after, [before[0], before[1], 2, 0]);
    state.setValue([after[0]!, after[1]!, -1, 0]); // counterLo 0xffffffff carries into counterHi
    f();
    assert.deepEqual([...state.getValue().data], [before[0], before[1], 0, 1]);
    rs.seed(8);
    assert.deepEqual([...state.getValue().data], before);
    assert.deepEqual([...(f() as NDArray).data], first, 're-seeding restarts the sequence');
  });

  it('T.fn picks up the updates of the draws it contains', { todo: AUTO_TODO }, () => {
    const rs = T.randomStreams(9);
    const x = T.vector('x');
    const y = T.mul(x, rs.bernoulli(x.shape, { p: 0.5 }));
    const f = T.fn({ inputs: [x], outputs: y, device });
    const ones = new Array(64).fill(1);
    assert.notDeepEqual([...(f(ones) as NDArray).data], [...(f(ones) as NDArray).data]);
    assert.deepEqual([...rs.states[0]!.getValue().data.slice(2)], [2, 0]);
  });

  it('randomUpdatesFor finds each state read by the graph once', () => {
    const rs = T.randomStreams(10);
    const a = rs.uniform([2]), b = rs.normal([2]), unused = rs.uniform([2]);
    void unused;
    const ups = randomUpdatesFor([T.add(a, b), T.mul(a, 2)]);
    assert.deepEqual(ups.map(([s]) => s), [rs.states[0], rs.states[1]]);
    for (const [s, e] of ups) { assert.equal(e.owner?.op, 'randomAdvance'); assert.equal(e.owner.inputs[0], s); }
    assert.deepEqual(randomUpdatesFor([T.vector('v')]), []);
  });

  it('draws are not merged or folded: one draw used twice agrees, two equal draws differ', () => {
    const rs = T.randomStreams(12);
    const a = rs.uniform([30]), b = rs.uniform([30]);
    const [d0, d1] = run([T.sub(a, a), T.sub(a, b)], rs.updates())() as NDArray[];
    assert.ok(d0!.data.every((v) => v === 0));
    assert.ok(d1!.data.some((v) => v !== 0));
  });

  it('dropout works in a compiled function, and its gradient is masked', () => {
    const rs = T.randomStreams(13);
    const rate = 0.25;
    const x = T.matrix('x');
    const w = T.shared(NDArray.full([40, 50], 3));
    const y = T.div(T.mul(x, rs.bernoulli(x.shape, { p: 1 - rate })), 1 - rate);
    const cost = T.sum(T.mul(y, w));
    const [gx, gw] = T.grad(cost, [x, w]);
    const f = run([y, gx!, gw!], rs.updates(), [x]);
    const xv = NDArray.full([40, 50], 2);
    const first = f(xv) as NDArray[];
    const [yv, gxv, gwv] = first;
    let kept = 0;
    for (let i = 0; i < yv!.size; i++) {
      const on = yv!.data[i] !== 0;
      if (on) kept++;
      assert.ok(Math.abs(yv!.data[i]! - (on ? 2 / (1 - rate) : 0)) < 1e-5);
      assert.ok(Math.abs(gxv!.data[i]! - (on ? 3 / (1 - rate) : 0)) < 1e-5, `dcost/dx at ${i}`);
      assert.ok(Math.abs(gwv!.data[i]! - yv!.data[i]!) < 1e-5, `dcost/dw at ${i}`);
    }
    near(kept / yv!.size, 1 - rate, Math.sqrt(rate * (1 - rate) / yv!.size), 'kept fraction');
    assert.notDeepEqual([...(f(xv) as NDArray[])[0]!.data], [...yv!.data], 'a fresh mask on the next call');
  });

  it('draws are disconnected from p, the state and the shape', () => {
    const rs = T.randomStreams(14);
    const p = T.scalar('p', 'float64');
    const cost = T.sum(rs.bernoulli([5], { p, dtype: 'float64' }));
    assert.throws(() => T.grad(cost, p), /does not depend/);
    const g = T.grad(cost, p, { disconnected: 'zero' });
    assert.equal((T.fn({ inputs: [p], outputs: g, device })(0.5) as NDArray).item(), 0);
    const mean = T.scalar('m', 'float64');
    const z = rs.normal([4], { mean, dtype: 'float64' });
    assert.throws(() => T.grad(T.sum(z), mean), /does not depend/);
  });

  it('compiled with float64 the oracle draws the same numbers (to float32 rounding)', () => {
    const build = () => {
      const rs = T.randomStreams(15);
      return [rs.uniform([100], { low: -1, high: 4 }), rs.normal([101], { mean: 1, std: 2 }), rs.bernoulli([102], { p: 0.5 })] as const;
    };
    const dev = build();
    const ora = build();
    const got = T.fn({ outputs: [...dev], device })() as NDArray[];
    const want = T.fn({ outputs: [...ora], device: new T.ReferenceDevice({ float64: true }) })() as NDArray[];
    got.forEach((g, k) => assertClose(g, want[k]!, { rtol: c.rtol, atol: c.atol }, `output ${k}`));
  });

  it('a function rebuilt from its JSON description continues the same stream', () => {
    const make = () => { const rs = T.randomStreams(16); return run(rs.normal([10]), rs.updates()); };
    const a = make(), b = make();
    const a1 = a() as NDArray, a2 = a() as NDArray;
    const b1 = b() as NDArray;
    const rebuilt = T.fnFromDescription(JSON.parse(JSON.stringify(b.describe())) as T.FunctionDescription, device);
    assert.deepEqual([...b1.data], [...a1.data]);
    assert.deepEqual([...(rebuilt() as NDArray).data], [...a2.data]);
  });

  it('bad arguments fail at build time with the reason, bad shapes at run time', () => {
    const rs = T.randomStreams(17);
    assert.throws(() => rs.uniform([2], { dtype: 'int32' }), (e: Error) => e.name === 'OpTypeError' && /uniform draws floats/.test(e.message));
    assert.throws(() => rs.bernoulli([2], { p: 1.5 }), /p must be in \[0, 1\]/);
    assert.throws(() => rs.normal([2], { std: -1 }), /std must be non-negative/);
    assert.throws(() => rs.uniform([2], { low: NaN }), /low must be finite/);
    assert.throws(() => rs.uniform([2, -1]), /dimension 1 must be a non-negative integer/);
    assert.throws(() => rs.uniform(3 as unknown as number[]), /shape must be a list/);
    assert.throws(() => rs.uniform([T.scalar('f')]), /dimension 0 must be an integer scalar/);
    assert.throws(() => rs.bernoulli([3], { p: T.matrix('p') }), /more axes than the shape/);
    assert.throws(() => T.randomStreams(0.5), /seed must be a safe integer/);
    const n = T.scalar('n', 'int32');
    const f = run(rs.uniform([n, 2]), [], [n]);
    assert.deepEqual((f(3) as NDArray).shape, [3, 2]);
    assert.throws(() => f(-1), /randomUniform: negative or fractional dimension in shape \(-1, 2\)/);
  });
});
