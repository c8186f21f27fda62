// Arrays a compiled function returns belong to the caller: they never share storage with the
// program's constants, shared variables, the caller's inputs, one another, or a buffer the CPU
// device's pool hands out again on a later call. Writing into a result changes nothing else.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { CpuDevice } from '../../src/devices/cpu/cpu-device.js';
import { describeFunction } from '../../src/run/function.js';
import { forEachDevice } from '../helpers/devices.js';

const f64 = (values: number[], shape?: number[]) => NDArray.from(values, { dtype: 'float64', ...(shape ? { shape } : {}) });
const values = (a: NDArray) => Array.from(a.data);

forEachDevice('returned arrays never alias', (device) => {
  for (const rewrite of [true, false]) {
    const optimize = { rewrite };
    const fn = (spec: Omit<T.FnSpec, 'device' | 'optimize'>) => T.fn({ ...spec, device, optimize });

    it(`constant outputs are fresh on every call (rewrites ${rewrite ? 'on' : 'off'})`, () => {
      const c = (v: number[]) => T.constant(v, { dtype: 'float64' });
      const f = fn({ inputs: [], outputs: [T.zeros([2]), c([1, 2]), T.reshape(c([3, 4]), [2, 1])] });
      const first = f() as NDArray[];
      for (const r of first) r.data[0] = 5;
      assert.deepEqual((f() as NDArray[]).map(values), [[0, 0], [1, 2], [3, 4]]);
    });

    it(`a shared variable, or a view of it, as an output is a copy (rewrites ${rewrite ? 'on' : 'off'})`, () => {
      const w = T.shared(f64([1, 2]), { name: 'w' });
      const outs = fn({ inputs: [], outputs: [w, T.reshape(w, [2, 1]), T.expandDims(w, 0), T.cast(w, 'float64')] })() as NDArray[];
      outs.forEach((o, k) => { o.data[0] = 42 + k; });
      assert.deepEqual(values(w.getValue()), [1, 2]);
    });

    it(`an input, or a view of it, as an output is a copy (rewrites ${rewrite ? 'on' : 'off'})`, () => {
      const x = T.vector('x', 'float64');
      const m = T.matrix('m', 'float64');
      const xv = f64([1, 2]);
      const mv = f64([1, 2, 3, 4], [2, 2]);
      const views = [x, T.reshape(x, [2, 1]), T.flatten(m), T.addBroadcast(T.reshape(x, [1, 2]), [0]), T.add(x, 0), T.mul(m, 1)];
      const outs = fn({ inputs: [x, m], outputs: views })(xv, mv) as NDArray[];
      for (const o of outs) o.data.fill(-1);
      assert.deepEqual([values(xv), values(mv)], [[1, 2], [1, 2, 3, 4]]);
    });

    it(`the same value returned twice, or as an output and an update, is two arrays (rewrites ${rewrite ? 'on' : 'off'})`, () => {
      const x = T.vector('x', 'float64');
      const y = T.exp(x);
      const [a, b] = fn({ inputs: [x], outputs: [y, y] })(f64([0, 0])) as NDArray[];
      a!.data[0] = 7;
      assert.deepEqual(values(b!), [1, 1]);
      const w = T.shared(f64([1, 2]), { name: 'w' });
      const next = T.add(w, 1);
      const f = fn({ inputs: [], outputs: next, updates: [[w, next]] });
      const out = f() as NDArray;
      out.data[0] = 99;
      assert.deepEqual(values(w.getValue()), [2, 3]);
    });

    it(`an update that is the caller's input (or a view of it) stores a copy (rewrites ${rewrite ? 'on' : 'off'})`, () => {
      const x = T.vector('x', 'float64');
      const w = T.shared(f64([0, 0]), { name: 'w' });
      const xv = f64([5, 6]);
      fn({ inputs: [x], outputs: null, updates: [[w, x]] })(xv);
      xv.data[0] = -1;
      assert.deepEqual(values(w.getValue()), [5, 6]);
      const v = T.shared(f64([1, 2]), { name: 'v' });
      const swap = fn({ inputs: [], outputs: null, updates: [[w, v], [v, w]] });
      swap();
      w.getValue({ borrow: true }).data[0] = 100;
      assert.deepEqual(values(v.getValue()), [5, 6]);
    });
  }
});

it('cpu device: results stay the caller\'s across calls (pool), and only aliasing results are copied', () => {
  const device = new CpuDevice({ forceFallback: true });
  const x = T.vector('x', 'float64');
  // A view of a fresh intermediate, an input, and a plain fresh result.
  const outputs = [T.reshape(T.exp(x), [2, 1]), x, T.tanh(x)];
  const exe = device.compile(describeFunction({ inputs: [x], outputs }).program);
  const first = exe.run([f64([0, 1])]) as NDArray[];
  const kept = first.map(values);
  const before = exe.stats().resultAllocations;
  const second = exe.run([f64([2, 3])]) as NDArray[];
  first.forEach((r, i) => assert.deepEqual(values(r), kept[i]));
  second.forEach((r, i) => assert.notEqual(r.data.buffer, first[i]!.data.buffer));
  // One array per result: the fresh ones are handed over as computed, the input is copied once.
  assert.equal(exe.stats().resultAllocations - before, 3);
});
