// Generated elementwise kernels: fused chains on broadcast shapes against the float64 oracle,
// integer/bool casting of intermediates exactly as the reference, the flat and odometer layouts,
// the kernel cache, and broadcast errors worded as on the reference device.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import { describeFunction } from '../../../src/run/function.js';
import { ReferenceDevice } from '../../../src/devices/reference/reference-device.js';
import { collapseLayout } from '../../../src/devices/cpu/elementwise-kernel.js';
import { generateSource, generatedKernelCount, getKernel, type ScalarStep } from '../../../src/devices/cpu/fused-codegen.js';
import { randomArray } from '../../helpers/allclose.js';
import { checkAgainstOracle, checkExact, errorOf, forEachCpuDevice } from './cpu-cases.js';

const f32 = (shape: number[], seed: number, lo = -1, hi = 1) => randomArray(shape, seed, { dtype: 'float32', lo, hi });
const t = (ndim: number, name: string, dtype: T.DType = 'float32') => T.tensor({ dtype, ndim, name });

forEachCpuDevice('fused elementwise kernels', (device, c) => {
  const tol = { rtol: c.rtol, atol: c.atol };

  it('a per-channel bias on NCHW with ReLU (three axes: one row pass per image), alone and as a chain group, matches the oracle', () => {
    const [x, b] = [t(4, 'x'), t(4, 'b')];
    const pre = T.add(x, b);
    const y = T.relu(pre);
    const z = T.mul(T.tanh(T.add(T.mul(x, b), b)), x);
    // Channels x pixels per image: whole vectors (28·28, 14·14), long unaligned rows (17·19), too small to pay.
    const shapes: number[][] = [[3, 16, 28, 28], [5, 8, 14, 14], [2, 3, 17, 19], [2, 2, 3, 3]];
    shapes.forEach((xs, k) => {
      const bs = [1, xs[1]!, 1, 1];
      checkAgainstOracle(device, [x, b], [y, z], [f32(xs, 40 + k), f32(bs, 50 + k)], tol, `NCHW ${xs.join('x')}`);
      // Both the pre-activation and the ReLU returned: the add+relu chain group, one pass per image.
      checkAgainstOracle(device, [x, b], [pre, y, T.sum(T.mul(y, pre))], [f32(xs, 60 + k), f32(bs, 70 + k)], tol, `NCHW group ${xs.join('x')}`);
    });
  });

  it('tanh(x * a + b) * c is one fused step and matches the oracle on broadcast shapes', () => {
    const [x, a, b, s] = [t(3, 'x'), t(2, 'a'), t(1, 'b'), t(0, 's')];
    const y = T.mul(T.tanh(T.add(T.mul(x, a), b)), s);
    const program = describeFunction({ inputs: [x, a, b, s], outputs: y }).program;
    assert.deepEqual(program.steps.map((st) => st.op), ['fused']);
    const shapes: [number[], number[], number[]][] = [
      [[3, 1, 4], [5, 1], [4]], // odometer path, every input broadcast somewhere
      [[2, 5, 4], [5, 4], [4]], // rows broadcast
      [[2, 3, 4], [1, 1], [1]], // scalars in disguise: the flat path
      [[4, 1, 6], [1, 6], [6]],
      [[0, 5, 4], [5, 4], [4]], // empty
      [[1, 1, 1], [1, 1], [1]],
    ];
    shapes.forEach(([xs, as, bs], k) => {
      checkAgainstOracle(
        device,
        [x, a, b, s],
        [y],
        [f32(xs, k), f32(as, 10 + k), f32(bs, 20 + k), NDArray.scalar(1.5)],
        tol,
        `shapes ${JSON.stringify([xs, as, bs])}`,
      );
    });
  });

  it('long chains with several uses of one input, NaN and Inf, float64', () => {
    for (const dtype of ['float32', 'float64'] as const) {
      const [x, y] = [t(2, 'x', dtype), t(1, 'y', dtype)];
      const z = T.sub(T.mul(T.exp(T.div(x, T.add(T.abs(y), 1))), T.sigmoid(x)), T.mul(T.square(T.sin(y)), x));
      const xv = randomArray([4, 5], 1, { dtype: dtype === 'float32' ? 'float32' : 'float64', lo: -3, hi: 3 });
      xv.data[0] = NaN; xv.data[1] = Infinity; xv.data[2] = -Infinity;
      const yv = randomArray([5], 2, { dtype: dtype === 'float32' ? 'float32' : 'float64' });
      checkAgainstOracle(device, [x, y], [z], [xv, yv], tol, `chain in ${dtype}`);
    }
  });

  it('integer intermediates wrap and bools are 0/1 exactly as the reference', () => {
    const [i, j] = [t(1, 'i', 'int32'), t(1, 'j', 'int32')];
    const big = NDArray.from([2147483647, -2147483648, 65537, 123456789, -7], { dtype: 'int32' });
    const other = NDArray.from([2, 3, 65537, 1000, 2], { dtype: 'int32' });
    // (i * j + i) wraps at every step; then a comparison and a cast to uint8 of a float.
    checkExact(device, [i, j], [T.add(T.mul(i, j), i), T.intDiv(T.mul(i, j), 3), T.mod(T.sub(T.mul(i, i), j), 7)], [big, other], 'int32 chain');
    const x = t(1, 'x');
    const xv = NDArray.from([-1.5, 0.49, 300.7, NaN, Infinity, -0.1], { dtype: 'float32' });
    checkExact(
      device,
      [x],
      [T.add(T.cast(T.mul(x, 2), 'uint8'), 1), T.cast(T.mul(x, 3), 'bool'), T.add(T.cast(T.gt(x, 0), 'int32'), T.cast(T.lt(x, 1), 'int32'))],
      [xv],
      'casts',
    );
    const [p, q] = [t(1, 'p', 'bool'), t(1, 'q', 'bool')];
    const pv = NDArray.from([true, true, false, false]), qv = NDArray.from([true, false, true, false]);
    checkExact(device, [p, q], [T.xor(T.and(p, q), T.not(q)), T.add(p, q)], [pv, qv], 'bool chain');
  });

  it('a float32 intermediate read by a comparison is rounded as the reference stores it', () => {
    const [x, y] = [t(1, 'x'), t(1, 'y')];
    const xv = f32([64], 3, -10, 10);
    // y = float32(x * 0.1): eq(x * 0.1, y) is all true only if x * 0.1 is rounded to float32 first.
    const yv = NDArray.from(Array.from(xv.data, (v) => Math.fround(v * Math.fround(0.1))), { dtype: 'float32' });
    const [e] = checkExact(device, [x, y], [T.eq(T.mul(x, 0.1), y), T.floor(T.mul(T.add(x, 0.3), 7))], [xv, yv], 'rounding');
    assert.ok(Array.from(e!.data).every((v) => v === 1));
  });

  it('inputs are never modified, even when a result reuses a dying buffer', () => {
    const x = t(2, 'x');
    const y = T.exp(T.tanh(T.mul(T.sum(x, 1, true), x)));
    const xv = f32([3, 4], 5);
    const before = Array.from(xv.data);
    checkAgainstOracle(device, [x], [y], [xv], tol, 'in place');
    assert.deepEqual(Array.from(xv.data), before);
  });

  it('broadcast errors read as on the reference device', () => {
    const [x, y] = [t(2, 'x'), t(2, 'y')];
    const z = T.tanh(T.add(T.mul(x, 2), y));
    const args = [f32([2, 3], 1), f32([3, 2], 2)] as const;
    const mine = errorOf(() => T.fn({ inputs: [x, y], outputs: z, device })(...args));
    const ref = errorOf(() => T.fn({ inputs: [x, y], outputs: z, device: new ReferenceDevice() })(...args));
    assert.ok(mine !== null && ref !== null);
    assert.equal(mine.message, ref.message);
    assert.match(mine.message, /do not broadcast/);
  });
});

it('collapseLayout merges contiguous axes and drops size-1 axes', () => {
  assert.deepEqual(collapseLayout([2, 3, 4], [[2, 3, 4], []]), { ndim: 1, shape: [24], strides: [1, 0], inner: ['s', 'z'] });
  assert.deepEqual(collapseLayout([2, 3, 4], [[2, 3, 4], [4]]), { ndim: 2, shape: [6, 4], strides: [4, 1, 0, 1], inner: ['s', 's'] });
  assert.deepEqual(collapseLayout([2, 3, 4], [[2, 3, 4], [2, 3, 1]]), { ndim: 2, shape: [6, 4], strides: [4, 1, 1, 0], inner: ['s', 'z'] });
  assert.deepEqual(collapseLayout([5, 1, 4], [[5, 1, 1], [1, 1, 4]]), { ndim: 2, shape: [5, 4], strides: [1, 0, 0, 1], inner: ['z', 's'] });
  assert.deepEqual(collapseLayout([], [[], []]), { ndim: 1, shape: [1], strides: [0, 0], inner: ['z', 'z'] });
});

it('kernels are generated once per (steps, dtypes, layout kind) and the flat kind has no odometer', () => {
  const steps: ScalarStep[] = [{ op: 'mul', attrs: {}, args: [0, 1], dtype: 'float32' }, { op: 'tanh', attrs: {}, args: [2], dtype: 'float32' }];
  const flat = { steps, inputDtypes: ['float32', 'float32'] as const, nd: false, inner: ['s', 'z'] as const };
  const before = generatedKernelCount();
  const k1 = getKernel(flat);
  const k2 = getKernel({ ...flat, steps: steps.map((s) => ({ ...s })) });
  assert.equal(k1, k2);
  assert.equal(generatedKernelCount() - before, 1);
  getKernel({ ...flat, nd: true });
  getKernel({ ...flat, inputDtypes: ['float64', 'float32'] });
  assert.equal(generatedKernelCount() - before, 3);
  assert.doesNotMatch(generateSource(flat), /idx\[ax\]/);
  assert.match(generateSource({ ...flat, nd: true }), /idx\[ax\]/);
  // float32 tanh uses the device's fast tanh; a float64 one keeps Math.tanh.
  assert.match(generateSource(flat), /F\.tanh32/);
  assert.match(generateSource({ ...flat, steps: steps.map((s) => ({ ...s, dtype: 'float64' as const })) }), /Math\.tanh/);
});
