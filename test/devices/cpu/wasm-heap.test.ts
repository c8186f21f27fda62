// The WebAssembly heap's block copy (src/devices/cpu/wasm-heap.ts), SIMD and scalar, against a
// JavaScript loop over the same strides: lengths around the 16- and 64-byte steps, float64 elements,
// the strided gather and scatter-add (float32, strides 1 to 3) likewise,
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

const strided = fc.record({
  planes: fc.integer({ min: 0, max: 3 }), rows: fc.integer({ min: 0, max: 4 }), len: fc.integer({ min: 0, max: 23 }),
  step: fc.integer({ min: 1, max: 3 }), gap: fc.integer({ min: 0, max: 5 }), src: fc.integer({ min: 0, max: 7 }), dstGap: fc.integer({ min: 0, max: 3 }),
});

for (const simd of [true, false]) {
  test(`gather and scatterAdd (${simd ? 'SIMD' : 'scalar'}, strides 1 to 3) against loops over the same indices`, () => {
    const heap = new WasmHeap(simd);
    heap.reserve(1 << 16);
    fc.assert(fc.property(strided, fc.integer({ min: 0, max: 1000 }), (d, seed) => {
      const wide = (d.len - 1) * d.step + 1 + d.gap; // a strided row and a gap
      const srcRow = Math.max(wide, 1), srcPlane = srcRow * d.rows + d.gap;
      const dstRow = d.len + d.dstGap, dstPlane = dstRow * d.rows + d.dstGap;
      const far = d.src + srcPlane * Math.max(d.planes, 1) + 64; // the compact side lies past the strided one
      const f = heap.f32;
      for (let i = 0; i < 4096; i++) f[i] = ((i * 7919 + seed) % 1013) / 8 - 60;
      const before = f.slice(0, 4096);
      heap.gather(d.src, srcRow, srcPlane, d.step, far, dstRow, dstPlane, d.planes, d.rows, d.len);
      const want = before.slice();
      for (let p = 0; p < d.planes; p++) for (let r = 0; r < d.rows; r++) for (let j = 0; j < d.len; j++) {
        want[far + p * dstPlane + r * dstRow + j] = before[d.src + p * srcPlane + r * srcRow + j * d.step]!;
      }
      assert.deepEqual(Array.from(f.subarray(0, 4096)), Array.from(want), `gather ${JSON.stringify(d)}`);
      // And back: the strided side gets the compact values added.
      const mid = f.slice(0, 4096);
      heap.scatterAdd(far, dstRow, dstPlane, d.src, srcRow, srcPlane, d.step, d.planes, d.rows, d.len);
      const back = mid.slice();
      for (let p = 0; p < d.planes; p++) for (let r = 0; r < d.rows; r++) for (let j = 0; j < d.len; j++) {
        const at = d.src + p * srcPlane + r * srcRow + j * d.step;
        back[at] = Math.fround(back[at]! + mid[far + p * dstPlane + r * dstRow + j]!);
      }
      assert.deepEqual(Array.from(f.subarray(0, 4096)), Array.from(back), `scatterAdd ${JSON.stringify(d)}`);
    }), { numRuns: 300, seed: simd ? 23 : 24 });
  });
}
