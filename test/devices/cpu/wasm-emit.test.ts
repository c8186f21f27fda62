// The tiny WebAssembly encoder: LEB128 and a module that validates and runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, encodeModule, sleb, uleb } from '../../../src/devices/cpu/wasm-emit.js';
import { wasmApi } from '../../../src/devices/cpu/wasm-api.js';
import { emitGemmModule } from '../../../src/devices/cpu/wasm-kernel.js';

test('LEB128 encodings', () => {
  assert.deepEqual(uleb(0), [0]);
  assert.deepEqual(uleb(127), [127]);
  assert.deepEqual(uleb(128), [0x80, 0x01]);
  assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
  assert.deepEqual(sleb(0), [0]);
  assert.deepEqual(sleb(-1), [0x7f]);
  assert.deepEqual(sleb(63), [63]);
  assert.deepEqual(sleb(64), [0xc0, 0x00]);
  assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
});

test('the GEMM module validates', () => {
  assert.ok(wasmApi.validate(emitGemmModule()));
});

test('an emitted function runs: v128 splat, mul, add, store', () => {
  // f(dst, src): dst[0..3] = splat(src[0]) * load(src + 4) + load(src + 4)
  const body = new Code()
    .get(0)
    .get(1).v128Load32Splat(0)
    .get(1).v128Load(4)
    .f32x4Mul()
    .get(1).v128Load(4)
    .f32x4Add()
    .v128Store(0);
  const bytes = encodeModule([{ name: 'f', params: ['i32', 'i32'], results: [], locals: [], body }]);
  const exports = new wasmApi.Instance(new wasmApi.Module(bytes), {}).exports;
  const memory = exports['memory'] as { buffer: ArrayBuffer };
  const f = exports['f'] as (dst: number, src: number) => void;
  const heap = new Float32Array(memory.buffer);
  heap.set([2, 1, 2, 3, 4], 16);
  f(0, 64);
  assert.deepEqual([...heap.subarray(0, 4)], [3, 6, 9, 12]);
});
