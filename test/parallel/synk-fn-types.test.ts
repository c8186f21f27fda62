// synk.fn's types: the result follows the outputs spec (one output an NDArray, a list a tuple of
// its length), call options are a typed object, inputs the kinds accepted. `npx tsc -p .` checks
// the @ts-expect-error lines (an error that stops happening fails the build); the runtime asserts
// check that the types tell the truth.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import type { OutputsOf } from '../../src/compile/fn-types.js';

/** Compiles only when A and B are the same type. */
type Equal<A, B> = (<G>() => G extends A ? 1 : 2) extends (<G>() => G extends B ? 1 : 2) ? true : false;
const same = <A, B>(ok: Equal<A, B>): Equal<A, B> => ok;

describe('synk.fn types match what calls return', () => {
  before(async () => { await synk.fork({ n: 2, devices: 'reference' }); });
  after(async () => { await synk.close(); });

  const x = T.matrix('x');
  const X = T.NDArray.from([[1, 2], [3, 4], [5, 6]], { dtype: 'float32' });
  const one = synk.fn({ inputs: [x], outputs: [x.sum(), 'sum'] });
  const plain = synk.fn({ inputs: [x], outputs: x.mean() });
  const three = synk.fn({ inputs: [x], outputs: [x.mean(), [x.max(), 'max'], [x.sum(1), 'gather']] });
  const none = synk.fn({ inputs: [x], updates: [[T.shared(0, { name: 'n' }), x.sum()]] });

  test('one output is an NDArray, a list a tuple of its length (the README destructuring), none []', async () => {
    const r: T.NDArray = await one(X);
    assert.ok(r instanceof T.NDArray);
    assert.ok((await plain(X)) instanceof T.NDArray);
    const [mean, max, rows] = await three(X); // TS2488 before: NDArray | NDArray[] is not iterable
    assert.ok(mean instanceof T.NDArray && max instanceof T.NDArray && rows instanceof T.NDArray);
    assert.equal(max.item(), 6);
    assert.deepEqual(rows.toArray(), [3, 7, 11]);
    same<Awaited<ReturnType<typeof three>>, [T.NDArray, T.NDArray, T.NDArray]>(true);
    same<Awaited<ReturnType<typeof none>>, []>(true);
    assert.deepEqual(await none(X), []);
    const all = await three(X);
    // @ts-expect-error: the tuple has three entries
    assert.equal(all[3], undefined);
    await assert.rejects(async () => {
      // @ts-expect-error: one output is not a list
      const [notIterable] = await one(X);
      void notIterable;
    }, /not iterable/);
  });

  test('outputSubset makes the result a list; local follows the outputs spec', async () => {
    const subset: T.NDArray[] = await three(X, { outputSubset: [1] });
    assert.equal(subset.length, 1);
    // @ts-expect-error: with outputSubset the result is a list
    const single: T.NDArray = await one(X, { outputSubset: [0] });
    assert.ok(Array.isArray(single));
    const local: T.NDArray = one.local(X);
    assert.equal(local.item(), 21);
    const [m] = three.local(X);
    assert.ok(m instanceof T.NDArray);
    same<OutputsOf<readonly T.Variable[]>, T.NDArray[]>(true);
    same<OutputsOf<null>, []>(true);
  });

  test('inputs are the accepted kinds; options a typed object', async () => {
    const kinds = [X, [[1, 2]], { data: Float32Array.of(1, 2), shape: [1, 2] }, synk.data(X)] as const;
    for (const k of kinds) assert.ok((await one(k)) instanceof T.NDArray);
    const v = T.vector('v');
    assert.equal((await synk.fn({ inputs: [v], outputs: [v.sum(), 'sum'] })(Float32Array.of(1, 2))).item(), 3);
    await one({ data: [1, 2], shape: [1, 2] });
    await one({ x: X }, { numSlices: 2 });
    await one(X, { batch: { start: 1 }, numSlices: 2 });
    await one(X, { batch: Int32Array.of(0, 2) });
    // @ts-expect-error: a string is no input, and numSlices -1 is refused at run time
    await assert.rejects(one('not an array', 42, { numSlices: -1 }), /expected 1 input|numSlices/);
    // @ts-expect-error: misspelt option
    await assert.rejects(one(X, { btach: 2 }), /unknown option 'btach'/);
    // @ts-expect-error: batch is rows, not a word
    await assert.rejects(one(X, { batch: 'all' }), /batch: expected/);
    // @ts-expect-error: numSlices is a number
    await assert.rejects(one(X, { numSlices: '2' }), /numSlices/);
    // @ts-expect-error: a per-rank batchS entry is a range or an index list, not a bare number
    await assert.rejects(one(X, { batchS: [1, { start: 0, stop: 1 }] }), /batchS/);
    // @ts-expect-error: buildInputs takes arrays
    assert.throws(() => one.buildInputs('rows'), /buildInputs input 0 'x'/);
  });

  test('a SynkFn of any outputs is usable where the general SynkFn is expected', async () => {
    const general: synk.SynkFn[] = [one, three, none];
    const results = await Promise.all(general.map((f) => f(X)));
    assert.deepEqual(results.map((r) => (Array.isArray(r) ? r.length : 'one')), ['one', 3, 0]);
  });
});
