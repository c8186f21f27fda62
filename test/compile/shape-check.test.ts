// Shape errors found before a call runs: definite conflicts are refused naming the op, the shapes
// and the inputs; unknown dims never cause an error; shapes found agree with what the run gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { checkShapes, hostShapeOf, shapeChecker, ShapeError, type PartialShape } from '../../src/compile/shape-check.js';
import { findShared } from '../../src/tensor/variable.js';
import type { Program } from '../../src/compile/program.js';

const programOf = (f: T.Fn): Program => f.compiled.description.program;
const outputShape = (program: Program, shapes: readonly PartialShape[], k = 0) => checkShapes(program, { inputs: shapes })[program.outputs[k]!];

test('matmul with inner dimensions that differ is refused, naming the op, both shapes and the inputs', () => {
  const x = T.matrix('x');
  const w = T.matrix('w');
  const p = programOf(T.fn({ inputs: [x, w], outputs: x.dot(w) }));
  assert.throws(() => checkShapes(p, { inputs: [[8, 4], [3, 2]] }),
    (e: Error) => e instanceof ShapeError && /^matmul: inner dimensions differ: \(8, 4\) and \(3, 2\)/.test(e.message)
      && /input 0 'x' has shape \(8, 4\); input 1 'w' has shape \(3, 2\)/.test(e.message));
  assert.deepEqual(outputShape(p, [[8, 4], [4, 2]]), [8, 2]);
  assert.deepEqual(outputShape(p, [[null, 4], [4, 2]]), [null, 2], 'unknown rows stay unknown');
  assert.deepEqual(outputShape(p, [[8, null], [3, 2]]), [8, 2], 'an unknown inner dimension is no conflict');
  const described = checkShapes.bind(null, p, { inputs: [[8, 4], [3, 2]], describeInput: (i) => `arg ${i} from the user` });
  assert.throws(described, /\(arg 0 from the user; arg 1 from the user\)$/);
});

test('broadcasting, reductions, dimshuffle, reshape and concatenate conflicts are found; shared shapes are used', () => {
  const x = T.matrix('x');
  const v = T.vector('v');
  const add = programOf(T.fn({ inputs: [x, v], outputs: x.sum(1).add(v) }));
  assert.throws(() => checkShapes(add, { inputs: [[4, 3], [5]] }), /do not broadcast \(axis 0: 4 vs 5\)/);
  assert.deepEqual(outputShape(add, [[4, 3], [1]]), [4]);
  assert.deepEqual(outputShape(add, [[null, 3], [5]]), [5]);
  const reshaped = programOf(T.fn({ inputs: [x], outputs: x.reshape([3, -1]) }));
  assert.throws(() => checkShapes(reshaped, { inputs: [[4, 2]] }), /reshape: cannot reshape array of shape \(4, 2\) \(size 8\) into \(3, -1\)/);
  assert.deepEqual(outputShape(reshaped, [[3, 2]]), [3, 2]);
  assert.deepEqual(outputShape(reshaped, [[null, 2]]), [3, null]);
  const joined = programOf(T.fn({ inputs: [x, T.matrix('y')], outputs: T.concatenate([x, x.dimshuffle(1, 0)], 0) }));
  assert.throws(() => checkShapes(joined, { inputs: [[2, 3], [1, 1]] }), /concatenate: shapes \(2, 3\), \(3, 2\) differ outside axis 0/);
  assert.deepEqual(outputShape(joined, [[2, 2], [1, 1]]), [4, 2]);
  const W = T.shared(T.NDArray.zeros([3, 2]), { name: 'W' });
  const dense = T.fn({ inputs: [x], outputs: x.dot(W) });
  const p = programOf(dense);
  const sharedShape = (id: string) => (id === W.sharedId ? [3, 2] : undefined);
  assert.throws(() => checkShapes(p, { inputs: [[5, 4]], sharedShape }), /matmul: inner dimensions differ.*shared variable 'W' has shape \(3, 2\)/);
  assert.doesNotThrow(() => checkShapes(p, { inputs: [[5, 4]] }), 'an unknown shared shape is no conflict');
});

test('sizes computed from x.shape are followed (reshape to [rows, -1], then a matmul)', () => {
  const x = T.tensor3('x');
  const w = T.matrix('w');
  const flat = x.reshape([x.shape[0]!, -1]);
  const p = programOf(T.fn({ inputs: [x, w], outputs: flat.dot(w) }));
  assert.throws(() => checkShapes(p, { inputs: [[4, 2, 3], [5, 2]] }), /matmul: inner dimensions differ: \(4, 6\) and \(5, 2\)/);
  assert.deepEqual(outputShape(p, [[4, 2, 3], [6, 2]]), [4, 2]);
  assert.deepEqual(outputShape(p, [[null, 2, 3], [6, 2]]), [null, 2]);
});

/** Graphs to compare the check against the reference run, each with input ndims. */
function graphs(): { name: string; f: T.Fn; ndims: number[] }[] {
  const a = T.matrix('a');
  const b = T.matrix('b');
  const c = T.vector('c');
  const t = T.tensor3('t');
  return [
    { name: 'dot+bias', f: T.fn({ inputs: [a, b, c], outputs: T.tanh(a.dot(b).add(c)) }), ndims: [2, 2, 1] },
    { name: 'mul-sum', f: T.fn({ inputs: [a, b, c], outputs: [a.mul(b).sum(0).add(c), T.softmax(a.sub(b))] }), ndims: [2, 2, 1] },
    { name: 'reshape', f: T.fn({ inputs: [t, b], outputs: t.reshape([t.shape[0]!, -1]).dot(b) }), ndims: [3, 2] },
    { name: 'concat', f: T.fn({ inputs: [a, b, c], outputs: T.concatenate([a, b.dimshuffle(1, 0)], 1).max(1).mul(c) }), ndims: [2, 2, 1] },
    { name: 'batched', f: T.fn({ inputs: [t, b], outputs: T.matmul(t, b).mean(2) }), ndims: [3, 2] },
  ];
}

test('never refuses what runs, and what it knows of the result equals the run (random shapes, some dims hidden)', () => {
  const cases = graphs();
  fc.assert(fc.property(
    fc.integer({ min: 0, max: cases.length - 1 }),
    fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 8, maxLength: 8 }),
    fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    (which, dims, hide) => {
      const { f, ndims } = cases[which]!;
      let d = 0;
      const shapes = ndims.map((n) => Array.from({ length: n }, () => dims[d++]!));
      const arrays = shapes.map((s) => T.NDArray.zeros(s, 'float32').astype('float32'));
      let ran: T.NDArray[] | null = null;
      try { ran = [f(...arrays)].flat() as T.NDArray[]; } catch { ran = null; }
      d = 0;
      const partial = shapes.map((s) => s.map((x) => (hide[d++] ? null : x)));
      const program = programOf(f);
      if (ran) {
        // A run that works is never refused, with all sizes known or some hidden.
        const known = checkShapes(program, { inputs: shapes });
        const some = checkShapes(program, { inputs: partial });
        ran.forEach((r, k) => {
          assert.deepEqual(known[program.outputs[k]!], r.shape, 'all known: the result shape is found');
          some[program.outputs[k]!]!.forEach((dim, ax) => { if (dim !== null) assert.equal(dim, r.shape[ax]); });
        });
      } else {
        // A run that fails: the check may miss it (it is no substitute for the run), but when it finds
        // something it is a ShapeError, not an internal error.
        try { checkShapes(program, { inputs: shapes }); } catch (e) { assert.ok(e instanceof ShapeError, String(e)); }
      }
    },
  ), { numRuns: 300, seed: 7 });
});

test('synk.fn refuses a definite shape error on the controller: nothing is sent, the shared variable keeps its value', async () => {
  const x = T.matrix('x');
  const W = T.shared(T.NDArray.zeros([3, 2]), { name: 'W' });
  const calls = T.shared(0, { name: 'calls' });
  const f = synk.fn({ inputs: [x], outputs: [x.dot(W), 'gather'], updates: [[calls, calls.add(1), 'max']] });
  await synk.fork({ n: 2, devices: 'reference' });
  try {
    await assert.rejects(f(T.NDArray.zeros([8, 4], 'float32')),
      (e: Error) => e.name === 'ShapeError' && /^matmul: inner dimensions differ: \(\?, 4\) and \(3, 2\)/.test(e.message)
        && /input 0 'x' has shape \(8, 4\), its rows split over the workers; shared variable 'W' has shape \(3, 2\)/.test(e.message));
    assert.equal(((await synk.getValue(1, calls)) as T.NDArray).item(), 0, 'no worker ran the call');
    assert.deepEqual(((await f(T.NDArray.zeros([8, 3], 'float32'))) as T.NDArray).shape, [8, 2]);
    assert.equal(calls.getValue().item(), 1);
    // Rows are split over the workers: a bcast input of the per-worker row count is not a conflict here.
    const y = T.matrix('y');
    const g = synk.fn({ inputs: [x], bcastInputs: [y], outputs: [x.add(y).sum(), 'sum'] });
    assert.equal(((await g(T.NDArray.zeros([4, 2], 'float32'), T.NDArray.zeros([2, 2], 'float32'))) as T.NDArray).item(), 0);
    await assert.rejects(g(T.NDArray.zeros([4, 2], 'float32'), T.NDArray.zeros([2, 3], 'float32')),
      /add.*do not broadcast \(axis 1: 2 vs 3\).*input 1 'y' has shape \(2, 3\)/);
  } finally {
    await synk.close();
  }
});

test('shapeChecker refuses a bad signature on every call and re-checks when a shared shape changes; hostShapeOf reads only current host values', () => {
  const x = T.matrix('x');
  const W = T.shared(T.NDArray.zeros([3, 2]), { name: 'W' });
  const p = programOf(T.fn({ inputs: [x], outputs: x.dot(W) }));
  const check = shapeChecker(p);
  const sharedShape = (id: string) => hostShapeOf(findShared(id));
  check([[5, 3]], sharedShape);
  check([[5, 3]], sharedShape);
  for (let i = 0; i < 2; i++) assert.throws(() => check([[5, 4]], sharedShape), /matmul: inner dimensions differ/);
  W.setValue(T.NDArray.zeros([4, 2]));
  assert.doesNotThrow(() => check([[5, 4]], sharedShape), 'a new shared shape is a new signature');
  assert.throws(() => check([[5, 3]], sharedShape), /matmul: inner dimensions differ: \(5, 3\) and \(4, 2\)/, 'the earlier fine signature is not reused');
  assert.deepEqual(hostShapeOf(W), [4, 2]);
  W.markDeviceCurrent({}, { value: null, sync: () => T.NDArray.zeros([4, 2]), release: () => undefined });
  assert.equal(hostShapeOf(W), undefined, 'a newer copy elsewhere: unknown, nothing fetched');
});

test('with an outputSubset only the steps the kept outputs and updates need are checked', () => {
  const x = T.matrix('x');
  const w = T.matrix('w');
  const s = T.shared(0, { name: 's' });
  const f = T.fn({ inputs: [x, w], outputs: [x.dot(w), x.sum()], updates: [[s, s.add(x.sum())]] });
  const p = programOf(f);
  const inputs = [[8, 4], [3, 2]];
  assert.throws(() => checkShapes(p, { inputs }), /matmul/);
  assert.throws(() => checkShapes(p, { inputs, outputSubset: [0] }), /matmul/);
  assert.doesNotThrow(() => checkShapes(p, { inputs, outputSubset: [1] }));
  const g = T.fn({ inputs: [x, w], outputs: [x.sum()], updates: [[s, s.add(x.dot(w).sum())]] });
  assert.throws(() => checkShapes(programOf(g), { inputs, outputSubset: [0] }), /matmul/, 'updates are always computed');
  const check = shapeChecker(p);
  check(inputs, undefined, undefined, [1]);
  assert.throws(() => check(inputs), /matmul/, 'a fine subset signature does not stand for the whole program');
});
