// The CPU device's stride-1 convolutions on the wide output grid (src/devices/cpu/conv-wide.ts):
// forward, input gradient and filter gradient against the float64 reference device, on batches
// large enough to split into several cache-sized chunks (a last chunk shorter than the others),
// with padding (symmetric, 'same' with an even kernel, none), dilation and groups drawn by
// fast-check; and the strided path (conv-strided.ts for float32, conv.ts's im2col for float64) beside
// it on the same draws, with chunks, a stem and a 1x1 downsampling. A device without
// WebAssembly SIMD (scalar heap copies) on the same draws.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../../../src/tensor.js';
import type { Device } from '../../../src/devices/device.js';
import { randomArray } from '../../helpers/allclose.js';
import { COLUMN_BUDGET } from '../../../src/devices/cpu/conv-wide.js';
import { CpuDevice } from '../../../src/devices/cpu/cpu-device.js';
import { checkAgainstOracle, forEachCpuDevice } from './cpu-cases.js';

interface Draw {
  n: number; groups: number; cg: number; og: number; h: number; w: number; kh: number; kw: number;
  dilation: number; padding: 'same' | 'valid' | number; stride: number; seed: number;
}

const draws = fc.record({
  n: fc.integer({ min: 1, max: 7 }), groups: fc.integer({ min: 1, max: 2 }), cg: fc.integer({ min: 1, max: 3 }), og: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 3, max: 9 }), w: fc.integer({ min: 3, max: 9 }), kh: fc.integer({ min: 1, max: 3 }), kw: fc.integer({ min: 1, max: 4 }),
  dilation: fc.integer({ min: 1, max: 2 }), padding: fc.oneof(fc.constant('same' as const), fc.constant('valid' as const), fc.integer({ min: 0, max: 2 })),
  stride: fc.constantFrom(1, 1, 1, 2), seed: fc.integer({ min: 0, max: 1000 }),
}).filter((d) => d.h > d.dilation * (d.kh - 1) && d.w > d.dilation * (d.kw - 1) && !(d.padding === 'same' && d.stride !== 1));

function check(device: Device, d: Draw, tol: { rtol: number; atol: number }, dtype: 'float32' | 'float64'): void {
  const x = T.tensor4('x', dtype);
  const f = T.tensor4('f', dtype);
  const y = T.conv2d(x, f, { padding: d.padding, dilation: d.dilation, groups: d.groups, stride: d.stride });
  const side = (k: number, size: number) => {
    const total = d.padding === 'same' ? d.dilation * (k - 1) : d.padding === 'valid' ? 0 : 2 * d.padding;
    return Math.floor((size + total - d.dilation * (k - 1) - 1) / d.stride) + 1;
  };
  const weights = randomArray([d.n, d.groups * d.og, side(d.kh, d.h), side(d.kw, d.w)], d.seed + 2, { dtype });
  const w = T.tensor4('w', dtype);
  const loss = T.sum(T.mul(y, w));
  const [gx, gf] = T.grad(loss, [x, f]);
  const xv = randomArray([d.n, d.groups * d.cg, d.h, d.w], d.seed, { dtype });
  const fv = randomArray([d.groups * d.og, d.cg, d.kh, d.kw], d.seed + 1, { dtype });
  checkAgainstOracle(device, [x, f, w], [y, gx!, gf!], [xv, fv, weights], tol, JSON.stringify(d));
}

forEachCpuDevice('conv2d on the wide grid', (device, c) => {
  const tol = { rtol: c.rtol * 10, atol: c.atol * 10 };
  it('forward and both gradients equal the float64 reference (fast-check: padding, dilation, groups, batch, stride 1 and 2)', () => {
    fc.assert(fc.property(draws, (d) => check(device, d, tol, 'float32')), { numRuns: 40, seed: 15 });
  });

  it('float64 as well', () => {
    fc.assert(fc.property(draws, (d) => check(device, d, { rtol: 1e-10, atol: 1e-10 }, 'float64')), { numRuns: 10, seed: 16 });
  });

  it('a batch split into several cache-sized chunks, the last one shorter', () => {
    // K·L = 8·9 · 24·26 = 44928 values per image: 2 images per chunk, so 5 images make chunks 2, 2, 1.
    assert.equal(Math.floor(COLUMN_BUDGET / (8 * 9 * 24 * 26)), 2);
    check(device, { n: 5, groups: 1, cg: 8, og: 4, h: 24, w: 24, kh: 3, kw: 3, dilation: 1, padding: 1, stride: 1, seed: 7 }, tol, 'float32');
    check(device, { n: 5, groups: 2, cg: 4, og: 3, h: 24, w: 24, kh: 3, kw: 3, dilation: 1, padding: 1, stride: 1, seed: 8 }, tol, 'float32');
  });

  it('strided (conv-strided.ts): chunks of 3, 3 and 1 images, groups, dilation, a 7x7 stem and a 1x1 downsampling', () => {
    // K·P = 8·9 · 24·24 = 41472 values per image: 3 images per chunk.
    assert.equal(Math.floor(COLUMN_BUDGET / (8 * 9 * 24 * 24)), 3);
    check(device, { n: 7, groups: 1, cg: 8, og: 4, h: 48, w: 48, kh: 3, kw: 3, dilation: 1, padding: 1, stride: 2, seed: 10 }, tol, 'float32');
    check(device, { n: 4, groups: 2, cg: 3, og: 2, h: 17, w: 15, kh: 3, kw: 2, dilation: 2, padding: 2, stride: 2, seed: 11 }, tol, 'float32');
    check(device, { n: 2, groups: 1, cg: 3, og: 4, h: 30, w: 30, kh: 7, kw: 7, dilation: 1, padding: 3, stride: 2, seed: 12 }, tol, 'float32');
    check(device, { n: 3, groups: 1, cg: 6, og: 5, h: 14, w: 14, kh: 1, kw: 1, dilation: 1, padding: 0, stride: 2, seed: 13 }, tol, 'float32');
    check(device, { n: 3, groups: 1, cg: 2, og: 2, h: 11, w: 13, kh: 3, kw: 3, dilation: 1, padding: 0, stride: 3, seed: 14 }, tol, 'float32');
  });
});

describe('conv2d on the wide grid without WebAssembly SIMD (scalar heap copies)', () => {
  const device = new CpuDevice({ simd: false, notice: false });
  it('forward and both gradients equal the float64 reference', () => {
    fc.assert(fc.property(draws, (d) => check(device, d, { rtol: 1e-4, atol: 1e-4 }, 'float32')), { numRuns: 20, seed: 17 });
    const geometry = { n: 5, groups: 2, cg: 4, og: 3, h: 24, w: 24, kh: 3, kw: 3, dilation: 1, padding: 1, stride: 1, seed: 9 };
    check(device, geometry, { rtol: 1e-4, atol: 1e-4 }, 'float32');
  });
});
