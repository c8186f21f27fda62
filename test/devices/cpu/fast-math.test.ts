// The CPU device's float32 tanh (scalar and WebAssembly SIMD): error against Math.tanh on a dense
// grid, special values.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { tanh32 } from '../../../src/devices/cpu/fast-math.js';
import { tanhF32 } from '../../../src/devices/cpu/wasm-tanh.js';

it('tanh32 is within 3.1e-8 relative of Math.tanh (under half a float32 ulp)', () => {
  let worst = 0;
  let at = 0;
  const check = (x: number): void => {
    const e = Math.tanh(x);
    const rel = Math.abs(tanh32(x) - e) / Math.abs(e);
    if (rel > worst) { worst = rel; at = x; }
  };
  for (let i = 1; i <= 400_000; i++) { check((i / 400_000) * 12); check(-(i / 400_000) * 12); }
  for (let i = 1; i <= 20_000; i++) check(Math.exp(-i / 500)); // down to 4e-18
  assert.ok(worst < 3.1e-8, `worst relative error ${worst} at ${at}`);
});

it('tanh32 keeps signs, zeros, infinities and NaN', () => {
  assert.ok(Object.is(tanh32(0), 0));
  assert.ok(Object.is(tanh32(-0), -0));
  assert.equal(tanh32(Infinity), 1);
  assert.equal(tanh32(-Infinity), -1);
  assert.equal(tanh32(50), 1);
  assert.equal(tanh32(-9), -1);
  assert.ok(Number.isNaN(tanh32(NaN)));
  // Near 1 the float32 result may be the neighbour of the correctly rounded one (2^-24 apart).
  assert.ok(Math.abs(Math.fround(tanh32(8.99)) - Math.fround(Math.tanh(8.99))) <= 2 ** -24);
});

it('the WebAssembly SIMD tanh is within 8 float32 ulps of tanh, in place or not, any length', () => {
  const n = 200_003; // not a multiple of the chunk or of 4
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = -12 + (24 * i) / n;
  const specials = [0, -0, Infinity, -Infinity, NaN, 9, -9, 8.999, 1e-30, -1e-45];
  specials.forEach((v, k) => { src[k] = v; });
  const dst = new Float32Array(n + 3);
  tanhF32(src, 0, dst, 3, n);
  const ulp = (v: number): number => {
    const f = new Float32Array([Math.abs(v)]);
    const bits = new Int32Array(f.buffer);
    const a = f[0]!;
    bits[0]!++;
    return f[0]! - a;
  };
  let worst = 0;
  for (let i = specials.length; i < n; i++) {
    const e = Math.fround(Math.tanh(src[i]!));
    worst = Math.max(worst, Math.abs(dst[i + 3]! - e) / ulp(e));
  }
  assert.ok(worst <= 8, `worst error ${worst} ulps`);
  specials.forEach((v, k) => assert.ok(Object.is(dst[k + 3], Math.fround(tanh32(v))), `tanh(${v}) = ${dst[k + 3]}`));
  const inPlace = src.slice();
  tanhF32(inPlace, 0, inPlace, 0, n);
  assert.deepEqual(inPlace, dst.subarray(3));
});
