// Memory planning: liveness, buffers reused across steps and calls (no pool allocation on a second
// same-shaped call), in-place results, and results that stay the caller's after later calls.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import type { NDArray } from '../../../src/tensor/ndarray.js';
import { describeFunction } from '../../../src/run/function.js';
import type { CpuDevice } from '../../../src/devices/cpu/cpu-device.js';
import { planMemory } from '../../../src/devices/cpu/memory-plan.js';
import { CpuDevice as Cpu } from '../../../src/devices/cpu/cpu-device.js';
import { randomArray } from '../../helpers/allclose.js';
import { forEachCpuDevice } from './cpu-cases.js';

const f32 = (shape: number[], seed: number) => randomArray(shape, seed, { dtype: 'float32' });

it('planMemory: values die after their last use; results and what they always alias never do', () => {
  // slots 0, 1 inputs; 2 = matmul(0, 1); 3 = tanh(2); 4 = reshape(3); 5 = sum(2); outputs 4, 5, 8
  const steps = [
    { op: 'matmul', inputs: [0, 1], output: 2 },
    { op: 'tanh', inputs: [2], output: 3 },
    { op: 'reshape', inputs: [3], output: 4 },
    { op: 'sum', inputs: [2], output: 5 },
    { op: 'exp', inputs: [0], output: 6 }, // unused: dies where it is made
    { op: 'mul', inputs: [0, 0], output: 7 },
    // Only sometimes its input (when there is nothing to sum): 7 stays pooled (the executable
    // hands its buffer over if it does end up in the result).
    { op: 'sumToLike', inputs: [7, 1], output: 8 },
  ];
  const plan = planMemory(steps, 9, [4, 5, 8]);
  assert.deepEqual([...plan.escaping].sort(), [3, 4, 5, 8]);
  assert.deepEqual(plan.dies, [[], [], [], [2], [6], [0], [1, 7]]);
  // A group step's extra outputs die like any other value.
  const grouped = planMemory([{ op: 'g', inputs: [0], output: 1, extraOutputs: [2] }, { op: 'neg', inputs: [1], output: 3 }], 4, [3]);
  assert.deepEqual(grouped.dies, [[0, 2], [1]]);
});

forEachCpuDevice('memory plan', (device) => {
  const cpu = device as CpuDevice;

  it('a second same-shaped call allocates nothing from the pool; results are fresh each call', () => {
    const x = T.matrix('x'), w = T.matrix('w');
    const h = T.tanh(T.dot(x, w));
    const y = T.sum(T.mul(T.exp(T.dot(h, w)), 2), 1);
    const z = T.mean(T.softmax(T.dot(h, w)), 0);
    const program = describeFunction({ inputs: [x, w], outputs: [y, z] }).program;
    const exe = cpu.compile(program);
    const args = [f32([6, 5], 1), f32([5, 5], 2)];
    const r1 = exe.run(args) as NDArray[];
    const copy1 = r1.map((r) => Array.from(r.data));
    const after1 = exe.stats();
    assert.ok(after1.poolAllocations > 0);
    const r2 = exe.run([f32([6, 5], 3), f32([5, 5], 4)]) as NDArray[];
    const after2 = exe.stats();
    assert.equal(after2.poolAllocations, after1.poolAllocations, 'no pool allocation in steady state');
    assert.equal(after2.resultAllocations - after1.resultAllocations, 2, 'one fresh array per output');
    // The first call's results are untouched by the second call.
    r1.forEach((r, i) => assert.deepEqual(Array.from(r.data), copy1[i]));
    r2.forEach((r, i) => assert.notEqual(r.data.buffer, r1[i]!.data.buffer));
  });

  it('the MLP gradient step allocates nothing in steady state but one array per result', () => {
    // A 2-layer ReLU network (bias gradients through sumToLike, a group on this device). Before
    // sumToLike stopped making its input escape, every ReLU-mask gradient was a fresh array per call.
    const x = T.matrix('x'), w1 = T.matrix('w1'), w2 = T.matrix('w2'), b1 = T.vector('b1'), b2 = T.vector('b2');
    const t = T.vector('t', 'int32');
    const h = T.relu(T.add(T.dot(x, w1), b1));
    const loss = T.mean(T.crossentropyFromLogits(T.add(T.dot(h, w2), b2), t));
    const outputs = [loss, ...T.grad(loss, [w1, b1, w2, b2])];
    const exe = cpu.compile(describeFunction({ inputs: [x, w1, b1, w2, b2, t], outputs }).program);
    const tv = new T.NDArray('int32', [16]);
    const args = [f32([16, 30], 1), f32([30, 260], 2), f32([260], 3), f32([260, 10], 4), f32([10], 5), tv];
    exe.run(args);
    const s1 = exe.stats();
    for (let i = 0; i < 3; i++) exe.run(args);
    const s2 = exe.stats();
    assert.equal(s2.poolAllocations, s1.poolAllocations, 'no pool allocation after the first call');
    assert.equal(s2.untrackedAllocations, 0, 'no array made outside the pool');
    assert.equal(s2.resultAllocations - s1.resultAllocations, 3 * outputs.length, 'one fresh array per result and call');
  });

  it('a pooled buffer that ends up inside a result leaves the pool with it and is replaced', () => {
    // sumToLike(e, like) with like of e's shape returns e itself: the result is the pooled buffer.
    const x = T.matrix('x'), like = T.matrix('like');
    const e = T.exp(T.mul(x, 2));
    const exe = cpu.compile(describeFunction({ inputs: [x, like], outputs: [T.sumToLike(e, like), T.sum(e)] }).program);
    const [r1] = exe.run([f32([3, 4], 1), f32([3, 4], 2)]) as NDArray[];
    const keep = Array.from(r1!.data);
    const s1 = exe.stats();
    exe.run([f32([3, 4], 3), f32([3, 4], 2)]);
    exe.run([f32([3, 4], 4), f32([3, 4], 2)]);
    const s2 = exe.stats();
    assert.deepEqual(Array.from(r1!.data), keep, 'a later call does not write into an earlier result');
    assert.equal(s2.poolAllocations, s1.poolAllocations);
    assert.equal(s2.resultAllocations - s1.resultAllocations, 4);
  });

  it('recycle: results are computed into arrays given back, never into one passed as an argument', () => {
    const x = T.matrix('x');
    const exe = cpu.compile(describeFunction({ inputs: [x], outputs: [T.tanh(T.mul(x, 2)), T.sum(x, 0)] }).program);
    const first = exe.run([f32([5, 300], 1)]) as NDArray[];
    const s1 = exe.stats();
    exe.recycle(first);
    const xv = f32([5, 300], 2);
    const second = exe.run([xv]) as NDArray[];
    const s2 = exe.stats();
    assert.equal(s2.resultAllocations, s1.resultAllocations, 'no fresh result array');
    assert.equal(s2.recycledResults - s1.recycledResults, 2);
    assert.ok(second[0]!.data === first[0]!.data && second[1]!.data === first[1]!.data);
    const want = T.fn({ inputs: [x], outputs: [T.tanh(T.mul(x, 2)), T.sum(x, 0)], device: new Cpu({ forceFallback: true, notice: false }) })(xv) as NDArray[];
    second.forEach((r, i) => assert.deepEqual(Array.from(r.data), Array.from(want[i]!.data)));
    // Given back and then passed as the argument of the next call: not written into.
    const y = T.matrix('y');
    const double = cpu.compile(describeFunction({ inputs: [y], outputs: [T.mul(y, 2)] }).program);
    const [r1] = double.run([f32([4, 4], 3)]) as NDArray[];
    double.recycle([r1!]);
    const keep = Array.from(r1!.data);
    const [r2] = double.run([r1!]) as NDArray[];
    assert.deepEqual(Array.from(r1!.data), keep, 'the argument is untouched');
    assert.deepEqual(Array.from(r2!.data), keep.map((v) => Math.fround(v * 2)));
    assert.throws(() => double.recycle([7 as unknown as NDArray]), /recycle: array 0 is not a host array/);
  });

  it('an elementwise step takes over the buffer of an input that dies there', () => {
    // matmul -> exp (in place) -> sum: the pool holds the product and the sum's float64 scratch.
    const x = T.matrix('x'), w = T.matrix('w');
    const program = describeFunction({ inputs: [x, w], outputs: T.sum(T.exp(T.dot(x, w)), 1) }).program;
    assert.deepEqual(program.steps.map((s) => s.op), ['matmul', 'exp', 'sum']);
    const exe = cpu.compile(program);
    exe.run([f32([4, 3], 1), f32([3, 7], 2)]);
    assert.equal(exe.stats().poolAllocations, 2);
  });

  it('buffers are shared across steps: a long chain needs few buffers', () => {
    const x = T.matrix('x'), w = T.matrix('w');
    let h: T.Variable = x;
    for (let i = 0; i < 6; i++) h = T.tanh(T.dot(h, w));
    const program = describeFunction({ inputs: [x, w], outputs: T.sum(h) }).program;
    const exe = cpu.compile(program);
    exe.run([f32([8, 8], 1), f32([8, 8], 2)]);
    // 12 steps (6 matmuls, 6 tanh in place) but at most two products alive at once, plus the scratch.
    assert.ok(exe.stats().poolAllocations <= 3, `pool allocated ${exe.stats().poolAllocations}`);
  });

  it('a result that is a view of an intermediate is not overwritten by the next call', () => {
    const x = T.matrix('x');
    const y = T.reshape(T.exp(T.mul(x, 2)), [-1]);
    const f = T.fn({ inputs: [x], outputs: y, device });
    const a = f(f32([2, 3], 1)) as NDArray;
    const keep = Array.from(a.data);
    f(f32([2, 3], 2));
    assert.deepEqual(Array.from(a.data), keep);
  });

  it('shape changes between calls are fine (the pool keys on size)', () => {
    const x = T.matrix('x');
    const f = T.fn({ inputs: [x], outputs: T.sum(T.tanh(T.mul(T.exp(x), x)), 0), device });
    for (const rows of [3, 5, 3, 0, 4]) {
      const xv = f32([rows, 4], rows);
      const got = f(xv) as NDArray;
      const want = Array.from({ length: 4 }, (_, j) => {
        let s = 0;
        for (let i = 0; i < rows; i++) { const v = xv.data[i * 4 + j]!; s += Math.tanh(Math.exp(v) * v); }
        return s;
      });
      got.data.forEach((v, j) => assert.ok(Math.abs(v - want[j]!) < 1e-5, `rows ${rows} col ${j}: ${v} vs ${want[j]}`));
    }
  });
});

it('CpuDevice options simd and groups must be booleans', () => {
  assert.throws(() => new Cpu({ simd: 'no' as unknown as boolean }), /option simd must be a boolean, got/);
  assert.throws(() => new Cpu({ groups: 1 as unknown as boolean }), /option groups must be a boolean, got/);
});
