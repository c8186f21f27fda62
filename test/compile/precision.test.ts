// The 'bf16' precision policy on any machine: which steps the pass marks and which it leaves float32,
// gradients and parameters float32, the reference and CPU devices' bfloat16 products against an
// independent float64 oracle (operands rounded to bfloat16 by arithmetic, not by bits), and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../../src/tensor.js';
import * as X from '../../src/extensions/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { roundToBf16 } from '../../src/tensor/bfloat16.js';
import { applyOp } from '../../src/ops/apply.js';
import { CpuDevice } from '../../src/devices/cpu/cpu-device.js';
import type { Device } from '../../src/devices/device.js';
import { DescriptionError } from '../../src/compile/validate-description.js';
import { randomArray } from '../helpers/allclose.js';
import { bf16Oracle } from '../helpers/bf16.js';

test('roundToBf16 agrees with the arithmetic oracle on every kind of float32 (normal, subnormal, ties, huge)', () => {
  const cases = [0, -0, 1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -7 + 2 ** -8, 3.14159, -2.5e-39, 1e-45, 3.3e38, Infinity, -Infinity];
  for (const v of cases) assert.ok(Object.is(roundToBf16(v), bf16Oracle(v)), `${v}: ${roundToBf16(v)} vs ${bf16Oracle(v)}`);
  assert.equal(roundToBf16(1 + 2 ** -8), 1, 'a tie rounds to even (down)');
  assert.equal(roundToBf16(1 + 3 * 2 ** -8), 1 + 2 ** -6, 'a tie rounds to even (up)');
  assert.ok(Number.isNaN(roundToBf16(NaN)));
  fc.assert(fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }).filter((v) => Math.abs(v) < 3.38e38), (v) => {
    assert.ok(Object.is(roundToBf16(v), bf16Oracle(v)), `${v}`);
  }), { numRuns: 5000 });
});

const PRODUCTS = new Set(['matmul', 'conv2d', 'conv2dInputGrad', 'conv2dFilterGrad']);

/** A small convnet step: conv, batch-norm statistics, dense, softmax cross-entropy, a float64 side product; and its gradients. */
function convnet() {
  const x = T.tensor4('x');
  const y = T.vector('y', 'int32');
  const side = T.matrix('side', 'float64');
  const conv = X.conv2dLayer(2, 3, 3, { padding: 1, seed: 1 });
  const bn = X.batchNorm(3);
  const head = X.dense(3 * 4 * 4, 5, { seed: 2 });
  const h = T.relu(bn.apply(conv.apply(x), X.trainMode()));
  const logits = head.apply(T.reshape(h, [-1, 48]));
  const loss = X.crossEntropy(logits, y).add(T.cast(T.sum(T.dot(side, side)), 'float32'));
  const params = [...conv.params, ...bn.params, ...head.params];
  return { x, y, side, params, loss, grads: T.grad(loss, params) as T.Variable[] };
}

test("the pass marks every float32 product (forward and backward) 'bf16' and nothing else; no slot changes dtype", () => {
  const m = convnet();
  const spec = { inputs: [m.x, m.y, m.side], outputs: [m.loss, ...m.grads] };
  const p32 = T.fn(spec).compiled.description.program;
  const f = T.fn({ ...spec, precision: 'bf16' });
  const p16 = f.compiled.description.program;
  const marked = p16.steps.filter((s) => s.attrs['precision'] === 'bf16').map((s) => s.op).sort();
  // conv2d forward, its filter gradient (the input is data: no input gradient), the dense forward and its two gradients.
  assert.deepEqual(marked, ['conv2d', 'conv2dFilterGrad', 'matmul', 'matmul', 'matmul'].sort());
  for (const s of p16.steps) {
    const isF32Product = PRODUCTS.has(s.op) && p16.slots[s.output]!.dtype === 'float32';
    assert.equal(s.attrs['precision'] === 'bf16', isF32Product, `${s.op} -> %${s.output}`);
  }
  assert.ok(p16.steps.some((s) => s.op === 'matmul' && p16.slots[s.output]!.dtype === 'float64' && s.attrs['precision'] === undefined),
    'the float64 product stays exact');
  assert.deepEqual(p16.slots.map((s) => s.dtype), p32.slots.map((s) => s.dtype), 'no slot changed dtype');
  assert.deepEqual(p16.steps.map((s) => s.op), p32.steps.map((s) => s.op), 'the same steps');
  for (const o of p16.outputs) assert.equal(p16.slots[o]!.dtype, 'float32', 'loss and gradients are float32');
  assert.match(f.graph(), /precision bf16: 5 product step\(s\) take bfloat16 operands \(conv2d x1, matmul x3, conv2dFilterGrad x1\)/);
  // The attribute survives JSON and is validated on the way back in.
  const again = T.fnFromDescription(JSON.parse(JSON.stringify(f.describe())));
  assert.equal(again.compiled.description.program.steps.filter((s) => s.attrs['precision'] === 'bf16').length, 5);
});

test('with rewrites off the policy still applies (it is a choice of arithmetic, not an optimisation)', () => {
  const a = T.matrix('a');
  const f = T.fn({ inputs: [a], outputs: T.dot(a, a), precision: 'bf16', optimize: { rewrite: false } });
  assert.equal(f.compiled.description.program.steps.find((s) => s.op === 'matmul')!.attrs['precision'], 'bf16');
});

/** float64 C = round(A) · round(B) for row-major A [m, k], B [k, n]. */
function oracleMatmul(a: NDArray, b: NDArray, round: (v: number) => number): Float64Array {
  const [m, k] = a.shape as [number, number];
  const n = b.shape[1]!;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += round(a.data[i * k + p]!) * round(b.data[p * n + j]!);
    out[i * n + j] = s;
  }
  return out;
}

/** float64 direct convolution (stride 1, padding pad, one group) of round(x) [n, c, h, w] with round(f) [o, c, kh, kw]. */
function oracleConv(x: NDArray, f: NDArray, pad: number, round: (v: number) => number): Float64Array {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [o, , kh, kw] = f.shape as [number, number, number, number];
  const oh = h + 2 * pad - kh + 1, ow = w + 2 * pad - kw + 1;
  const out = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++) for (let q = 0; q < o; q++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const r = i + u - pad, col = j + v - pad;
      if (r >= 0 && r < h && col >= 0 && col < w) s += round(x.data[((b * c + ch) * h + r) * w + col]!) * round(f.data[((q * c + ch) * kh + u) * kw + v]!);
    }
    out[((b * o + q) * oh + i) * ow + j] = s;
  }
  return out;
}

/**
 * Largest |got - want| over the largest |want| (at least `floor`: the conv bias gradient under batch norm
 * is zero but for rounding, so its own scale would make noise look large).
 */
function relMax(got: ArrayLike<number>, want: ArrayLike<number>, floor = 0): number {
  let d = 0, s = floor;
  for (let i = 0; i < want.length; i++) { d = Math.max(d, Math.abs(got[i]! - want[i]!)); s = Math.max(s, Math.abs(want[i]!)); }
  return d / s;
}

const DEVICES: [string, () => Device][] = [['reference', () => new T.ReferenceDevice()], ['cpu', () => new CpuDevice({ notice: false })]];

for (const [name, make] of DEVICES) {
  test(`${name} device: bf16 matmul and conv2d equal the float64 oracle on bfloat16-rounded operands, not the float32 products`, () => {
    const device = make();
    const A = randomArray([6, 67], 11, { dtype: 'float32' }), Bm = randomArray([67, 5], 12, { dtype: 'float32' });
    const a = T.matrix('a'), b = T.matrix('b');
    const mm = T.fn({ inputs: [a, b], outputs: T.dot(a, b), precision: 'bf16', device })(A, Bm) as NDArray;
    assert.equal(mm.dtype, 'float32');
    assert.ok(relMax(mm.data, oracleMatmul(A, Bm, bf16Oracle)) < 1e-6, `matmul vs rounded oracle ${relMax(mm.data, oracleMatmul(A, Bm, bf16Oracle))}`);
    assert.ok(relMax(mm.data, oracleMatmul(A, Bm, Math.fround)) > 1e-4, 'the operands were rounded');
    const I = randomArray([2, 3, 6, 5], 13, { dtype: 'float32' }), F = randomArray([4, 3, 3, 3], 14, { dtype: 'float32' });
    const x = T.tensor4('x'), w = T.tensor4('w');
    const y = T.fn({ inputs: [x, w], outputs: T.conv2d(x, w, { padding: 1 }), precision: 'bf16', device })(I, F) as NDArray;
    assert.ok(relMax(y.data, oracleConv(I, F, 1, bf16Oracle)) < 1e-6, 'conv2d vs rounded oracle');
    assert.ok(relMax(y.data, oracleConv(I, F, 1, Math.fround)) > 1e-4, 'the conv operands were rounded');
  });
}

test('cpu device: the bf16 gradients of a convnet equal the reference device\'s (float64 sums of the same bfloat16 products)', () => {
  const m = convnet();
  const xs = randomArray([4, 2, 4, 4], 21, { dtype: 'float32' });
  const ys = NDArray.from([0, 3, 1, 4], { dtype: 'int32' });
  const side = randomArray([2, 2], 22);
  const spec = { inputs: [m.x, m.y, m.side], outputs: [m.loss, ...m.grads], precision: 'bf16' as const };
  const cpu = T.fn({ ...spec, device: new CpuDevice({ notice: false }) })(xs, ys, side) as NDArray[];
  const ref = T.fn({ ...spec, device: new T.ReferenceDevice() })(xs, ys, side) as NDArray[];
  const f32 = T.fn({ inputs: spec.inputs, outputs: spec.outputs, device: new T.ReferenceDevice() })(xs, ys, side) as NDArray[];
  let differs = 0;
  cpu.forEach((g, k) => {
    assert.equal(g.dtype, 'float32', `output ${k} is float32`);
    const err = relMax(g.data, ref[k]!.data, 1e-2);
    assert.ok(err < 2e-5, `output ${k}: cpu vs reference ${err}`);
    if (relMax(g.data, f32[k]!.data, 1e-2) > 5e-4) differs++;
  });
  assert.ok(differs >= 3, `bf16 changed only ${differs} of ${cpu.length} outputs beyond float32 rounding`);
});

test('bad input: an unknown precision names the argument and what came; nothing is built', () => {
  const a = T.matrix('a');
  for (const bad of ['fp16', 'bfloat16', 'BF16', 16, null]) {
    assert.throws(() => T.fn({ inputs: [a], outputs: T.dot(a, a), precision: bad as never }),
      (e: unknown) => e instanceof RangeError && /^fn: precision must be 'fp32' or 'bf16', got /.test(e.message), String(bad));
  }
  assert.throws(() => T.fn({ inputs: [a], outputs: a, precision: 'fp16' as never }), /'fp16' is not offered: 'bf16' has float32's range/);
  const params = [T.shared(NDArray.from([[1, 2], [3, 4]], { dtype: 'float32' }), { name: 'W' })];
  const before = [...params[0]!.getValue().data];
  assert.throws(() => X.makeTrainFunction(T.sum(T.dot(a, params[0]!)), params, [a], 'adam', { precision: 'half' as never }),
    (e: unknown) => e instanceof RangeError && /^makeTrainFunction: precision must be 'fp32' or 'bf16', got "half"$/.test(e.message));
  assert.deepEqual([...params[0]!.getValue().data], before);
});

test('bad input: a device that does not declare the policy refuses it by name; descriptions with a bad precision are refused by path', () => {
  const a = T.matrix('a');
  const base = new T.ReferenceDevice();
  const fp32Only: Device = {
    kind: 'fp32-only', name: 'fp32-only', upload: (v) => base.upload(v), download: (v) => base.download(v), free: () => {},
    compile: (p) => base.compile(p), synchronize: () => {}, close: () => {},
  };
  assert.throws(() => T.fn({ inputs: [a], outputs: T.dot(a, a), precision: 'bf16', device: fp32Only }),
    (e: unknown) => e instanceof RangeError && e.message === "fn: precision 'bf16' is not supported by device fp32-only: it runs float32 only");
  const ok = T.fn({ inputs: [a], outputs: T.dot(a, a), device: fp32Only });
  assert.equal((ok([[2]]) as NDArray).item(), 4, "'fp32' needs nothing of the device");
  const described = T.fn({ inputs: [a], outputs: T.dot(a, a), precision: 'bf16' }).describe();
  assert.throws(() => T.fnFromDescription(described, fp32Only), /CompiledFunction: precision 'bf16' is not supported by device fp32-only/);
  const bad = JSON.parse(JSON.stringify(described)) as { program: { steps: { op: string; attrs: Record<string, unknown> }[] } };
  const k = bad.program.steps.findIndex((s) => s.op === 'matmul');
  bad.program.steps[k]!.attrs['precision'] = 'fp16';
  assert.throws(() => T.fnFromDescription(bad), (e: unknown) => e instanceof DescriptionError
    && e.message.includes(`program.steps[${k}].attrs.precision`) && e.message.includes("'bf16'"));
  assert.throws(() => applyOp('matmul', [a, a], { transA: false, transB: false, precision: 'tf32' } as never),
    /matmul: attr precision must be absent or 'bf16', got "tf32"/);
});
