import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import * as T from '../../src/tensor.js';
import type { Program } from '../../src/compile/program.js';

/** A reference device that counts its compilations. */
class CountingDevice extends T.ReferenceDevice {
  compiled = 0;
  override compile(program: Program): T.Executable {
    this.compiled++;
    return super.compile(program);
  }
}

/** Runs `body` with `device` as the default device, restoring the previous one after. */
function withDefaultDevice(device: T.Device, body: () => void): void {
  const previous = T.getDefaultDevice();
  T.setDefaultDevice(device);
  try { body(); } finally { T.setDefaultDevice(previous); }
}

test('eval by name, by variable, and with no inputs at all', () => {
  const x = T.vector('x');
  const y = T.vector('y');
  const z = x.add(y).mul(2);
  assert.deepEqual(z.eval({ x: [1, 2], y: [3, 4] }).toArray(), [8, 12]);
  assert.deepEqual(z.eval(new Map<T.Variable, unknown>([[x, [1, 2]], [y, new Float32Array([0, 1])]])).toArray(), [2, 6]);
  const record = Object.assign(Object.create(null) as Record<string, unknown>, { x: [1], y: [1] });
  assert.deepEqual(z.eval(record).toArray(), [4], 'a record without a prototype works too');
  const W = T.shared([[1, 2], [3, 4]], { name: 'W' });
  assert.deepEqual(W.sum(0).eval().toArray(), [4, 6]);
  assert.deepEqual(x.eval({ x: [5] }).toArray(), [5], 'a free variable evaluates to its value');
  const out = z.eval({ x: [1], y: [1] });
  assert.equal(out.dtype, 'float32');
  assert.equal(inspect(out), 'array([4.], dtype=float32)');
});

test('eval sees the current values of shared variables', () => {
  const s = T.shared([1, 2], { name: 's' });
  const doubled = s.mul(2);
  assert.deepEqual(doubled.eval().toArray(), [2, 4]);
  s.setValue([10, 20]);
  assert.deepEqual(doubled.eval().toArray(), [20, 40]);
});

test('eval compiles once per variable on the default device, and again when that device changes', () => {
  const x = T.scalar('x');
  const y = x.mul(3).add(1);
  const first = new CountingDevice();
  withDefaultDevice(first, () => {
    assert.equal(y.eval({ x: 1 }).item(), 4);
    assert.equal(y.eval({ x: 2 }).item(), 7);
    assert.equal(y.eval(new Map([[x, 3]])).item(), 10);
    assert.equal(first.compiled, 1);
  });
  const second = new CountingDevice();
  withDefaultDevice(second, () => {
    assert.equal(y.eval({ x: 0 }).item(), 1);
    assert.equal(second.compiled, 1);
  });
  withDefaultDevice(first, () => {
    assert.equal(y.mul(2).eval({ x: 0 }).item(), 2);
    assert.equal(first.compiled, 2, 'another variable compiles its own function');
  });
});

test('eval names a missing, unknown, ambiguous or ill-typed input', () => {
  const x = T.vector('x');
  const y = T.vector('y');
  const z = x.add(y);
  assert.throws(() => z.eval(), /eval: no value for 'x' \(float32 vector\), 'y' \(float32 vector\); give them as \{ name: value \}/);
  assert.throws(() => z.eval({ x: [1] }), /eval: no value for 'y' \(float32 vector\)/);
  assert.throws(() => z.eval({ x: [1], y: [1], w: [1] }), /eval: no input of this expression is named 'w'; its inputs are 'x' \(float32 vector\), 'y'/);
  assert.throws(() => z.eval(new Map([[x, [1]], [y, [1]], [T.vector('q'), [1]]])), /eval: q: float32 vector is not an input of this expression/);
  const s = T.shared([1]);
  assert.throws(() => s.add(x).eval(new Map<T.Variable, unknown>([[x, [1]], [s, [2]]])), /shared variables and constants have their own values/);
  const stringKeys = new Map([['x', [1]]]) as unknown as Map<T.Variable, unknown>;
  assert.throws(() => z.eval(stringKeys), /eval: the keys of an inputs Map must be symbolic variables, got string x/);
  assert.throws(() => x.add(T.vector('x')).eval({ x: [1] }), /eval: 2 inputs of this expression are named 'x'; give their values in a Map/);
  assert.throws(() => x.add(T.vector()).eval({ x: [1] }), /eval: no value for an unnamed input \(float32 vector\); give unnamed inputs in a Map/);
  assert.throws(() => z.eval([1, 2] as unknown as Record<string, unknown>), /eval: inputs must be an object \{ name: value \} or a Map/);
  assert.throws(() => z.eval({ x: [[1]], y: [1] }), /eval: input 'x' \(float32 vector\): expected ndim 1, got shape \(1, 1\)/);
  assert.throws(() => z.eval({ x: new Float64Array([1]), y: [1] }), /eval: input 'x' \(float32 vector\): expected dtype float32 .*got float64/);
  assert.throws(() => T.scalar('n', 'int32').eval({ n: 1.5 }), /eval: input 'n' \(int32 scalar\): element 0 \(1.5\) is not exactly/);
  assert.deepEqual(z.eval({ x: [1], y: [2] }).toArray(), [3], 'a failed eval leaves the variable usable');
});

test('printing a shared variable whose value is on a device reads the shape without copying it back', () => {
  const s = T.shared([1, 2, 3], { name: 's' });
  let synced = 0;
  const resident = { dtype: 'float32' as const, shape: [5] };
  s.assignOnDevice({}, { value: resident, sync: () => { synced++; return new T.NDArray('float32', [5]); }, release: () => {} });
  assert.equal(String(s), 'SharedVariable(s: float32 vector, shape (5,))');
  assert.equal(synced, 0);
});
