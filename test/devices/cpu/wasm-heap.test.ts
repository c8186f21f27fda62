// The WebAssembly heap's block copy (src/devices/cpu/wasm-heap.ts), SIMD and scalar, against a
// JavaScript loop over the same strides: lengths around the 16- and 64-byte steps, float64 elements,
// gaps left untouched, and a heap that grows keeps its contents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WasmHeap } from '../../../src/devices/cpu/wasm-heap.js';

interface Copy { src: number; srcRow: number; srcPlane: number; dst: number; dstRow: number; dstPlane: number; planes: number; rows: number; len: number }

/** What copy3 must do, one element at a time. */
function expected(view: Float32Array | Float64Array, k: Copy): Float32Array | Float64Array {
  const out = view.slice();
  for (let p = 0; p < k.planes; p++) {
    for (let r = 0; r < k.rows; r++) {
      for (let j = 0; j < k.len; j++) out[k.dst + p * k.dstPlane + r * k.dstRow + j] = view[k.src + p * k.srcPlane + r * k.srcRow + j]!;
    }
  }
  return out;
}

const copies = fc.record({
  planes: fc.integer({ min: 0, max: 3 }), rows: fc.integer({ min: 0, max: 4 }), len: fc.integer({ min: 0, max: 37 }),
  srcGap: fc.integer({ min: 0, max: 5 }), dstGap: fc.integer({ min: 0, max: 5 }), src: fc.integer({ min: 0, max: 7 }), dstSkew: fc.integer({ min: 0, max: 7 }),
}).map((d) => {
  const srcRow = d.len + d.srcGap, dstRow = d.len + d.dstGap;
  const srcPlane = srcRow * d.rows + d.srcGap, dstPlane = dstRow * d.rows + d.dstGap;
  const dst = d.src + srcPlane * d.planes + d.dstSkew + 1; // past the source: the regions do not overlap
  return { src: d.src, srcRow, srcPlane, dst, dstRow, dstPlane, planes: d.planes, rows: d.rows, len: d.len };
});

for (const simd of [true, false]) {
  for (const dtype of ['float32', 'float64'] as const) {
    test(`copy3 (${simd ? 'SIMD' : 'scalar'}, ${dtype}) moves exactly the strided block and nothing else`, () => {
      const heap = new WasmHeap(simd);
      const elem = dtype === 'float32' ? 4 : 8;
      fc.assert(fc.property(copies, fc.integer({ min: 0, max: 1000 }), (k, seed) => {
        heap.reserve(4096 * elem);
        const view = heap.view(dtype).subarray(0, 4096);
        for (let i = 0; i < view.length; i++) view[i] = ((i * 7919 + seed) % 1009) - 504.5;
        const want = expected(view, k);
        heap.copy3(elem, k.src, k.srcRow, k.srcPlane, k.dst, k.dstRow, k.dstPlane, k.planes, k.rows, k.len);
        assert.deepEqual(Array.from(heap.view(dtype).subarray(0, 4096)), Array.from(want), JSON.stringify(k));
      }), { numRuns: 200, seed: simd ? 21 : 22 });
    });
  }
}

test('reserve grows the heap, keeps what it held and refreshes the views', () => {
  const heap = new WasmHeap(true);
  heap.f32.set([1, 2, 3], 10);
  const before = heap.bytes;
  heap.reserve(before + 1);
  assert.ok(heap.bytes > before);
  assert.equal(heap.f32.length * 4, heap.bytes);
  assert.deepEqual(Array.from(heap.f32.subarray(10, 13)), [1, 2, 3]);
});
