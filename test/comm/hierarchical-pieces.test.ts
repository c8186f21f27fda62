// How a reduction across nodes is cut into pieces (hierarchical.ts): whole pieces of chunkBytes, the last shorter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertChunkBytes, piecesOf } from '../../src/comm/hierarchical.js';

test('piecesOf: pieces of chunkBytes covering the vector once, the last one uneven; one piece when it fits', () => {
  assert.deepEqual(piecesOf(10, 8, 32), [[0, 4], [4, 8], [8, 10]]);
  assert.deepEqual(piecesOf(8, 4, 4 << 20), [[0, 8]]);
  assert.deepEqual(piecesOf(0, 4, 64), [[0, 0]]);
  const pieces = piecesOf(1_000_003, 4, 4 << 20);
  assert.equal(pieces.length, 1);
  const many = piecesOf(3_000_001, 4, 4 << 20);
  assert.deepEqual(many.map(([lo, hi]) => hi - lo), [1 << 20, 1 << 20, 3_000_001 - (2 << 20)]);
});

test('assertChunkBytes: a positive multiple of 64 bytes, or an error naming the argument', () => {
  assert.equal(assertChunkBytes(4096, 'x'), 4096);
  for (const bad of [0, 100, -64, 64.5, '4096', Infinity]) {
    assert.throws(() => assertChunkBytes(bad, 'fork: commChunkBytes'), /fork: commChunkBytes: expected a positive multiple/);
  }
});
