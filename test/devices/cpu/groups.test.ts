// Group steps of the CPU device (group-rules.ts): the MLP gradient's ReLU mask + bias gradient (its
// bias add + ReLU is one fused step: the compiler's check), and the flat gradient's concatenation of scaled parts. Each is checked against the
// float64 oracle and, bit for bit, against the same device with groups off; shapes the fast paths
// do not cover (trailing reductions, non-identity sumToLike, narrow rows, concatenation along a
// later axis, small sizes) run the member steps and still match; errors read as on the reference.
// A convolution's bias gradient (sums over the leading and trailing axes) runs as a group too, in
// another summation order: against the oracle and the ungrouped device within float tolerance.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { CpuDevice } from '../../../src/devices/cpu/cpu-device.js';
import { ReferenceDevice } from '../../../src/devices/reference/reference-device.js';
import { describeFunction } from '../../../src/run/function.js';
import { leadAndTrailReduction, leadingReduction, splitLayout } from '../../../src/devices/cpu/group-kernels.js';
import type { FusedAttrs } from '../../../src/ops/fused.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkAgainstOracle, errorOf } from './cpu-cases.js';

const tol = { rtol: 1e-4, atol: 1e-5 };
const f32 = (shape: number[], seed: number): NDArray => randomArray(shape, seed, { dtype: 'float32' });
const grouped = new CpuDevice({ forceFallback: true, notice: false, profile: true });
const ungrouped = new CpuDevice({ forceFallback: true, notice: false, groups: false });

function assertSameBits(got: NDArray, want: NDArray, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  for (let i = 0; i < got.size; i++) if (!Object.is(got.data[i], want.data[i])) assert.fail(`${what}: element ${i}: ${got.data[i]} vs ${want.data[i]}`);
}

/** Runs on the grouped device (returns the group names it used) and checks against ungrouped and the oracle. */
function check(inputs: T.Variable[], outputs: T.Variable[], args: T.ArrayInput[], what: string): string[] {
  const exe = grouped.compile(describeFunction({ inputs, outputs }).program);
  const got = exe.run(args.map((a) => (a instanceof NDArray ? a : NDArray.from(a as number[])))) as NDArray[];
  const want = T.fn({ inputs, outputs, device: ungrouped })(...args) as NDArray[];
  got.forEach((g, i) => assertSameBits(g, want[i]!, `${what} output ${i}`));
  checkAgainstOracle(grouped, inputs, outputs, args, tol, what);
  return Object.keys(exe.stats().profile).filter((k) => k.endsWith('(group)'));
}

/** A two-layer ReLU network's loss and gradients (weights as inputs); with `returnPre`, the first pre-activation too. */
function mlp(dtype: 'float32' | 'float64', returnPre = false) {
  const x = T.tensor({ dtype, ndim: 2, name: 'x' });
  const [w1, w2] = [T.tensor({ dtype, ndim: 2, name: 'w1' }), T.tensor({ dtype, ndim: 2, name: 'w2' })];
  const [b1, b2] = [T.tensor({ dtype, ndim: 1, name: 'b1' }), T.tensor({ dtype, ndim: 1, name: 'b2' })];
  const t = T.vector('t', 'int32');
  const z = T.add(T.dot(x, w1), b1);
  const loss = T.mean(T.crossentropyFromLogits(T.add(T.dot(T.relu(z), w2), b2), t));
  return { inputs: [x, w1, b1, w2, b2, t], outputs: [loss, ...T.grad(loss, [w1, b1, w2, b2]), ...(returnPre ? [z] : [])] };
}

function mlpArgs(rows: number, d: number, hidden: number, k: number, dtype: 'float32' | 'float64'): NDArray[] {
  const r = (shape: number[], seed: number) => randomArray(shape, seed, { dtype, lo: -0.5, hi: 0.5 });
  const t = NDArray.from(Array.from({ length: rows }, (_, i) => i % k), { dtype: 'int32' });
  return [r([rows, d], 1), r([d, hidden], 2), r([hidden], 3), r([hidden, k], 4), r([k], 5), t];
}

describe('MLP gradient groups', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`bias add + ReLU fuse into one step, ReLU mask + bias gradient run as a group (${dtype}), whole and padded rows`, () => {
      const { inputs, outputs } = mlp(dtype);
      for (const hidden of [256, 259]) {
        const groups = check(inputs, outputs, mlpArgs(9, 20, hidden, 10, dtype), `${dtype} hidden ${hidden}`);
        assert.ok(groups.some((g) => g.startsWith('fused+sumToLike')), `groups used: ${groups.join(', ')}`);
      }
      // The bias add and the ReLU are one fused step with one output (compile/rewrite/shape-reads.ts moved
      // the gradient's shape read of the pre-activation to the ReLU's output): no add+relu chain group is needed.
      const { program, log } = describeFunction({ inputs, outputs });
      assert.ok(log.some((l) => l.startsWith('shape reads:')), `log: ${log.join('; ')}`);
      const fusedOps = program.steps.filter((s) => s.op === 'fused').map((s) => (s.attrs as unknown as FusedAttrs).steps.map((q) => q.op).join(','));
      assert.ok(fusedOps.includes('add,relu'), `fused steps: ${fusedOps.join(' | ')}`);
      assert.ok(!program.steps.some((s) => s.op === 'relu'), 'no ReLU step of its own');
    });
  }

  it('a pre-activation that is also a result: bias add + ReLU run as one chain group that stores both', () => {
    const { inputs, outputs } = mlp('float32', true);
    for (const hidden of [256, 259]) {
      const groups = check(inputs, outputs, mlpArgs(9, 20, hidden, 10, 'float32'), `hidden ${hidden}, z returned`);
      assert.ok(groups.includes('add+relu (group)'), `groups used: ${groups.join(', ')}`);
    }
  });

  it('shapes the fast paths do not take (one row, small layers, narrow rows) still match', () => {
    const { inputs, outputs } = mlp('float32');
    for (const [rows, hidden] of [[1, 300], [3, 7], [400, 6]] as const) {
      check(inputs, outputs, mlpArgs(rows, 5, hidden, 3, 'float32'), `rows ${rows} hidden ${hidden}`);
    }
  });

  it('a bias-gradient group whose sum is over trailing axes, or whose first sumToLike reduces, falls back', () => {
    const [z, g] = [T.matrix('z'), T.matrix('g')];
    const likeCol = T.matrix('likeCol');
    const dz = T.mul(T.cast(T.gt(z, 0), 'float32'), g);
    const trailing = T.sumToLike(dz, likeCol);
    const groups = check([z, g, likeCol], [trailing, T.mul(dz, 2)], [f32([40, 64], 1), f32([40, 64], 2), new NDArray('float32', [40, 1])], 'trailing');
    assert.ok(groups.length > 0, 'the group is formed at compile time and falls back when run');
    // sumToLike(dz, like) with like of shape [1, C] at run time reduces (the type says nothing), then a bias sum.
    const like = T.matrix('like'), bias = T.vector('bias');
    const twice = T.sumToLike(T.sumToLike(dz, like), bias);
    check([z, g, like, bias], [twice], [f32([40, 64], 3), f32([40, 64], 4), new NDArray('float32', [1, 64]), new NDArray('float32', [64])], 'alias reduces');
    check([z, g, like, bias], [twice], [f32([40, 64], 3), f32([40, 64], 4), new NDArray('float32', [40, 64]), new NDArray('float32', [64])], 'alias identity');
  });

  it('a broadcast error inside a group reads as on the reference device', () => {
    const [x, b] = [T.matrix('x'), T.vector('b')];
    const z = T.add(x, b);
    const outs = [z, T.relu(z)];
    const args = [f32([4, 300], 1), f32([299], 2)] as const;
    const mine = errorOf(() => T.fn({ inputs: [x, b], outputs: outs, device: grouped })(...args));
    const ref = errorOf(() => T.fn({ inputs: [x, b], outputs: outs, device: new ReferenceDevice() })(...args));
    assert.ok(mine !== null && ref !== null);
    assert.equal(mine.message, ref.message);
  });
});

describe('a convolution\'s ReLU mask + bias gradient', () => {
  for (const [dtype, shape] of [['float32', [6, 5, 12, 12]], ['float32', [3, 4, 7, 9]], ['float64', [4, 3, 10, 6]]] as const) {
    it(`(N, C, H, W) ${shape.join('x')} ${dtype} to (1, C, 1, 1): one group pass, the float64 reference's sums`, () => {
      const [y, g] = [T.tensor4('y', dtype), T.tensor4('g', dtype)];
      const bias = T.tensor({ dtype, ndim: 4, broadcastable: [true, false, true, true], name: 'bias' });
      const dz = T.mul(T.cast(T.gt(y, 0), dtype), g);
      const outputs = [T.sumToLike(T.sumToLike(dz, y), bias), dz];
      const args: NDArray[] = [randomArray([...shape], 1, { dtype }), randomArray([...shape], 2, { dtype }), new NDArray(dtype, [1, shape[1], 1, 1])];
      const exe = grouped.compile(describeFunction({ inputs: [y, g, bias], outputs }).program);
      const got = exe.run(args) as NDArray[];
      assert.ok(Object.keys(exe.stats().profile).some((k) => k.startsWith('fused+sumToLike')), Object.keys(exe.stats().profile).join(', '));
      const want = T.fn({ inputs: [y, g, bias], outputs, device: ungrouped })(args[0]!, args[1]!, args[2]!) as NDArray[];
      assertSameBits(got[1]!, want[1]!, 'the stored mask');
      const t = dtype === 'float32' ? { rtol: 1e-6, atol: 1e-6 } : { rtol: 1e-13, atol: 1e-13 };
      got[0]!.data.forEach((v, i) => {
        const w = want[0]!.data[i]!;
        assert.ok(Math.abs(v - w) <= t.atol + t.rtol * Math.abs(w), `channel ${i}: ${v} vs ${w}`);
      });
      checkAgainstOracle(grouped, [y, g, bias], outputs, args, dtype === 'float32' ? tol : { rtol: 1e-12, atol: 1e-12 }, `${shape.join('x')} ${dtype}`);
    });
  }
});

describe('update chains (the optimizer after the all-reduce)', () => {
  it('gradient scaling, reshape, moments and parameter run as one flat pass; only values read elsewhere are stored', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const v = (ndim: number, name: string) => T.tensor({ dtype, ndim, name });
      const [flat, inv, m, s, p] = [v(1, 'flat'), v(0, 'inv'), v(2, 'm'), v(2, 's'), v(2, 'p')];
      const g = T.reshape(T.mul(T.subtensor(flat, [[3, 3 + 40 * 33]]), inv), [40, 33]);
      const m2 = T.add(T.mul(m, 0.9), T.mul(g, 0.1));
      const s2 = T.add(T.mul(s, 0.999), T.mul(T.square(g), 0.001));
      const p2 = T.sub(p, T.div(T.mul(m2, 0.01), T.add(T.sqrt(s2), 1e-8)));
      const args = [randomArray([2000], 1, { dtype }), NDArray.scalar(0.25, dtype), ...[2, 3, 4].map((k) => randomArray([40, 33], k, { dtype, lo: 0, hi: 1 }))];
      const groups = check([flat, inv, m, s, p], [m2, s2, p2], args, `adam ${dtype}`);
      assert.ok(groups.some((n) => n.startsWith('mul+reshape+')), `groups used: ${groups.join(', ')}`);
      // The scaled gradient itself returned too (needed outside the group), and a shape that does not fit.
      check([flat, inv, m, s, p], [g, p2], args, `adam with g ${dtype}`);
      const bad: T.ArrayInput[] = [randomArray([1000], 5, { dtype }), ...args.slice(1)];
      const mine = errorOf(() => T.fn({ inputs: [flat, inv, m, s, p], outputs: [p2], device: grouped }).compiled.call(bad));
      const ref = errorOf(() => T.fn({ inputs: [flat, inv, m, s, p], outputs: [p2], device: new ReferenceDevice() }).compiled.call(bad));
      assert.ok(mine !== null && ref !== null);
      assert.equal(mine.message, ref.message);
    }
  });
});

describe('concatenate groups', () => {
  it('the flat gradient\'s parts g * rows are written straight into the concatenation', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const [g1, g2, g3] = [T.tensor({ dtype, ndim: 2, name: 'g1' }), T.tensor({ dtype, ndim: 1, name: 'g2' }), T.tensor({ dtype, ndim: 3, name: 'g3' })];
      const n = T.tensor({ dtype, ndim: 0, name: 'n' });
      const flat = T.concatenate([T.mul(T.flatten(g1), n), T.mul(T.flatten(g2), n), T.mul(T.flatten(g3), n), T.reshape(n, [1])], 0);
      const args = [randomArray([33, 70], 1, { dtype }), randomArray([5], 2, { dtype }), randomArray([3, 0, 4], 3, { dtype }), NDArray.scalar(7, dtype)];
      const groups = check([g1, g2, g3, n], [flat], args, `pack ${dtype}`);
      assert.deepEqual(groups, ['concatenate (group)']);
    }
  });

  it('parts along a later axis, parts of another dtype and bad shapes', () => {
    const [a, b] = [T.matrix('a'), T.matrix('b')];
    const i = T.matrix('i', 'int32');
    const along1 = T.concatenate([T.relu(a), T.mul(b, 3), T.cast(i, 'float32')], 1);
    const iv = NDArray.from([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]], { dtype: 'int32' });
    check([a, b, i], [along1], [f32([6, 3], 1), f32([6, 5], 2), iv], 'axis 1');
    const mixed = T.concatenate([T.relu(a), i], 0);
    check([a, i], [mixed], [f32([2, 3], 3), NDArray.from([[1, 2, 3]], { dtype: 'int32' })], 'int part into float');
    const bad = T.concatenate([T.relu(a), T.mul(b, 2)], 0);
    const args = [f32([2, 3], 4), f32([2, 4], 5)] as const;
    const mine = errorOf(() => T.fn({ inputs: [a, b], outputs: bad, device: grouped })(...args));
    const ref = errorOf(() => T.fn({ inputs: [a, b], outputs: bad, device: new ReferenceDevice() })(...args));
    assert.ok(mine !== null && ref !== null);
    assert.equal(mine.message, ref.message);
  });
});

it('leadingReduction and splitLayout', () => {
  assert.equal(leadingReduction([5, 4], [4]), 1);
  assert.equal(leadingReduction([5, 4], [1, 4]), 1);
  assert.equal(leadingReduction([2, 5, 4], [4]), 2);
  assert.equal(leadingReduction([2, 5, 4], [5, 1]), null, 'a trailing axis is reduced');
  assert.equal(leadingReduction([2, 5, 4], [2, 1, 4]), null, 'not a prefix');
  assert.equal(leadingReduction([1, 5, 4], [1, 1, 4]), 2, 'size-1 axes do not matter');
  assert.equal(leadingReduction([5, 4], [5, 4]), 0);
  assert.deepEqual(splitLayout([6, 4], 1, [[6, 4], [4], [], [6, 1]]), { kinds: ['s', 's', 'z', 'z'], advance: [true, false, false, true] });
  assert.equal(splitLayout([6, 4, 3], 1, [[4, 1]]), null, 'neither full nor ones inside the row');
  assert.deepEqual(leadAndTrailReduction([8, 16, 28, 28], [1, 16, 1, 1]), { p: 1, trail: 784 });
  assert.deepEqual(leadAndTrailReduction([8, 16, 28, 28], [16, 1, 1]), { p: 1, trail: 784 }, 'fewer axes in like');
  assert.deepEqual(leadAndTrailReduction([40, 64], [40, 1]), { p: 0, trail: 64 });
  assert.deepEqual(leadAndTrailReduction([2, 3, 4], [1, 1, 4]), { p: 2, trail: 1 }, 'leading only');
  assert.equal(leadAndTrailReduction([2, 3, 4, 5], [1, 3, 1, 5]), null, 'a reduced axis between kept ones');
  assert.equal(leadAndTrailReduction([2, 3, 4], [1, 2, 1]), null, 'like does not fit');
  assert.equal(leadAndTrailReduction([2, 3], [1, 1]), null, 'nothing kept');
});
