// Malformed arguments to every public call: the error is a clear one (a TypeError or RangeError in
// words, never a raw engine message from deep inside), the process lives, and nothing changed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';

const SEED = 20261202;
const RUNS = 60;
/** Messages that mean the argument reached code that never checked it. */
const RAW = new RegExp([
  'Cannot read prop', 'is not a function', 'is not iterable', 'undefined is not', 'null is not', 'Invalid typed array length',
  'Maximum call stack', 'Cannot convert', 'DataCloneError', 'Invalid array length',
].join('|'));

/** Calls `f`; a failure must be a clear TypeError or RangeError. Returns whether it failed. */
async function clearOrFine(what: string, f: () => unknown): Promise<boolean> {
  try {
    await f();
    return false;
  } catch (e) {
    if (!(e instanceof TypeError || e instanceof RangeError || (e instanceof Error && e.name !== 'Error')) || RAW.test((e as Error).message)) {
      console.log(`fuzz seed ${SEED}: ${what} failed unclearly: ${String(e)}`);
    }
    assert.ok(e instanceof TypeError || e instanceof RangeError || (e instanceof Error && e.name !== 'Error'), `${what}: ${String(e)}`);
    assert.doesNotMatch((e as Error).message, RAW, `${what}: an unchecked argument reached deep code`);
    return true;
  }
}

const junk = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.constantFrom(null, undefined, NaN, Infinity, -1, 1e12, 1.5, '', 'x', Symbol('s'), 1n, () => 1, new ArrayBuffer(8), Uint32Array.of(1), [Symbol('t')], [1n]),
);
const params = { seed: SEED, numRuns: RUNS, endOnFailure: true };

describe('fuzz: malformed arguments to the public API', () => {
  const x = T.vector('x');
  const w = T.shared(new Float32Array([1, 2, 3]), { name: 'w' });
  const good = synk.fn({ bcastInputs: [x], outputs: [[T.sum(x.mul(w)), 'none']], name: 'good' });
  const state = () => ({ w: [...w.getValue().data], data: [...D.array.data] });
  let D: synk.Data;

  before(async () => {
    await synk.fork({ n: 2, devices: 'reference' });
    D = synk.data(new Float32Array([1, 2, 3, 4]));
  });
  after(async () => {
    await synk.close();
  });

  async function unchangedAndWorking(): Promise<void> {
    const [total] = await good([1, 1, 1]);
    assert.equal(total.item(), 6);
  }

  it('T.fn, T.shared and setValue', async () => {
    await fc.assert(fc.asyncProperty(junk, junk, async (a, b) => {
      const before = state();
      await clearOrFine('T.fn', () => T.fn(a as T.FnSpec));
      await clearOrFine('T.fn spec field', () => T.fn({ inputs: [x], outputs: x, updates: a } as T.FnSpec));
      await clearOrFine('T.shared', () => T.shared(a, b as T.SharedOptions));
      await clearOrFine('setValue', () => w.setValue(a));
      const f = T.fn({ inputs: [x], outputs: x.sum() });
      await clearOrFine('call', () => (f as unknown as (...v: unknown[]) => unknown)(a, b));
      if (!(await clearOrFine('setValue', () => w.setValue(a)))) w.setValue(new Float32Array(before.w));
      assert.deepEqual(state(), before);
    }), params);
  });

  it('Data, synk.fn, calls and collectives', async () => {
    await fc.assert(fc.asyncProperty(junk, junk, async (a, b) => {
      const before = state();
      await clearOrFine('synk.data', () => synk.data(a as never, b as never));
      await clearOrFine('Data.set', () => D.set(a as never, b));
      await clearOrFine('Data.get', () => D.get(a as never));
      await clearOrFine('synk.fn', () => synk.fn(a as never));
      await clearOrFine('synk.fn name', () => synk.fn({ inputs: [x], outputs: x.sum(), name: a } as never));
      await clearOrFine('call options', () => (good as unknown as (...v: unknown[]) => unknown)([1, 1, 1], { batch: a, numSlices: b }));
      await clearOrFine('call', () => (good as unknown as (...v: unknown[]) => unknown)(a, b));
      await clearOrFine('broadcast', () => synk.broadcast(w, a as never));
      await clearOrFine('gather', () => synk.gather(w, a as never));
      await clearOrFine('allReduce', () => synk.allReduce(w, a as never));
      await clearOrFine('setValue(rank)', () => synk.setValue(a as never, w, b as never));
      await clearOrFine('getValue(rank)', () => synk.getValue(a as never, w));
      // A refused broadcast or setValue changed nothing; an accepted one is undone for the next run.
      const now = state();
      if (now.w.join() !== before.w.join()) await synk.broadcast(w, new Float32Array(before.w));
      if (now.data.join() !== before.data.join()) D.set({ start: 0, stop: 4 }, new Float32Array(before.data));
      try {
        await unchangedAndWorking();
      } catch (e) {
        console.log(`fuzz seed ${SEED}: the runtime no longer works after a refused call: ${String(e)}`);
        throw e;
      }
    }), params);
  });
});
