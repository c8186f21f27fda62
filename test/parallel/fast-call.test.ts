// The fast call's encoding: what the controller writes into the control block's arguments and the
// scratch arena is what every rank decodes, batchS rows included (once for every rank or per rank).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createArena, decodeFastCall, encodeFastCall, type FastCall } from '../../src/parallel/fast-call.js';
import type { Rows } from '../../src/devices/rows.js';

const list = (...xs: number[]): Rows => ({ kind: 'list', indices: Int32Array.from(xs) });
const range = (start: number, stop: number): Rows => ({ kind: 'range', start, stop });

function roundTrip(call: FastCall, rank: number): FastCall {
  const scratch = createArena(64, 1 << 20);
  const args = encodeFastCall(call, scratch);
  assert.ok(args, 'the call fits the fast path');
  return decodeFastCall(Float64Array.from(args), scratch, rank);
}

const base: FastCall = { fnId: 7, numSlices: 2, someRankEmpty: false, selection: null, dataIds: [3, 4], outputSubset: [1] };

test('a call without batchS decodes to the same call and no slice rows', () => {
  const got = roundTrip({ ...base, selection: list(5, 1, 4) }, 0);
  assert.equal(got.fnId, 7);
  assert.equal(got.numSlices, 2);
  assert.deepEqual(got.dataIds, [3, 4]);
  assert.deepEqual(got.outputSubset, [1]);
  assert.deepEqual(got.selection, list(5, 1, 4));
  assert.deepEqual(got.sliceRows, []);
});

test('batchS given once reaches every rank; per-rank batchS reaches each its own', () => {
  const once = list(2, 0);
  const shared = { ...base, sliceRows: [once, once, once] };
  for (const rank of [0, 1, 2]) assert.deepEqual(roundTrip(shared, rank).sliceRows, [list(2, 0)]);
  const perRank = { ...base, sliceRows: [range(0, 1), list(2), null, range(1, 3)] };
  assert.deepEqual(roundTrip(perRank, 0).sliceRows, [range(0, 1)]);
  assert.deepEqual(roundTrip(perRank, 1).sliceRows, [list(2)]);
  assert.deepEqual(roundTrip(perRank, 2).sliceRows, [null]);
  assert.deepEqual(roundTrip(perRank, 3).sliceRows, [range(1, 3)]);
});

test('index lists of batch and of several ranks do not overwrite each other in the scratch arena', () => {
  const call = { ...base, selection: list(9, 8, 7), sliceRows: [list(1, 2), list(3), list(), list(4, 5, 6)] };
  assert.deepEqual(roundTrip(call, 0).selection, list(9, 8, 7));
  assert.deepEqual(roundTrip(call, 0).sliceRows, [list(1, 2)]);
  assert.deepEqual(roundTrip(call, 1).sliceRows, [list(3)]);
  assert.deepEqual(roundTrip(call, 2).sliceRows, [list()]);
  assert.deepEqual(roundTrip(call, 3).sliceRows, [list(4, 5, 6)]);
});

test('decoded lists are copies: the next call may reuse the scratch arena', () => {
  const scratch = createArena(64, 1 << 20);
  const args = Float64Array.from(encodeFastCall({ ...base, sliceRows: [list(1, 2, 3)] }, scratch)!);
  const got = decodeFastCall(args, scratch, 0);
  encodeFastCall({ ...base, sliceRows: [list(7, 7, 7)] }, scratch);
  assert.deepEqual(got.sliceRows, [list(1, 2, 3)]);
});

test('a call whose arguments do not fit returns null (the message path takes it)', () => {
  const perRank = Array.from({ length: 32 }, (_, r) => range(r, r + 1));
  assert.equal(encodeFastCall({ ...base, sliceRows: perRank }, createArena(64)), null);
  const growless = new SharedArrayBuffer(16);
  assert.equal(encodeFastCall({ ...base, sliceRows: [list(...Array.from({ length: 100 }, (_, i) => i))] }, growless), null);
});
