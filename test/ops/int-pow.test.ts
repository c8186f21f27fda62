// Integer pow is exact two's-complement arithmetic on every device (it went through doubles on the
// reference and CPU devices: 3^40 gave 689956864, and saturated on CUDA).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as T from '../../src/tensor.js';
import { forEachDevice } from '../helpers/devices.js';

/** x^e mod 2^32 as a signed int32, by BigInt: the independent expectation. */
function wrapPow(x: number, e: number): number {
  if (e < 0) return x === 1 ? 1 : x === -1 ? (e % 2 === 0 ? 1 : -1) : 0;
  return Number(BigInt.asIntN(32, BigInt(x) ** BigInt(e)));
}

forEachDevice('integer pow', (device) => {
  it('int32 powers wrap like NumPy; negative exponents give 1, +-1 or 0', () => {
    const x = T.vector('x', 'int32');
    const e = T.vector('e', 'int32');
    const bases = [2, -2, 3, 2, -1, 5, 7, -3, 0, 1];
    const exps = [31, 31, 40, 32, -3, -1, 13, 21, 0, -5];
    const got = T.fn({ inputs: [x, e], outputs: T.pow(x, e), device })(bases, exps).toArray();
    assert.deepEqual(got, bases.map((b, i) => wrapPow(b, exps[i]!)));
    assert.deepEqual(T.fn({ inputs: [x], outputs: T.pow(x, 31), device })([2, -2]).toArray(), [-(2 ** 31), -(2 ** 31)]);
  });
  it('uint8 powers keep the low byte', () => {
    const u = T.vector('u', 'uint8');
    const k = T.vector('k', 'uint8');
    const got = T.fn({ inputs: [u, k], outputs: T.pow(u, k), device })(new Uint8Array([3, 2, 255]), new Uint8Array([5, 8, 2])).toArray();
    assert.deepEqual(got, [243, 0, 1]);
  });
});
