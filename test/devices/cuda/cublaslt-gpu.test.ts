// cuBLASLt on a real GPU (every test skips, saying why, where there is none or libcublasLt is missing): matmul
// through CudaDevice({ gemm: 'cublaslt' }) against the reference device in float64 for every transpose pair, odd
// shapes (1, 7, 1023), empty products and batches, in float32, TF32 and bfloat16 operands; the same products
// through cuBLAS; a training step captured as a CUDA graph with the workspace; and the workspace switched off.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import * as X from '../../../src/extensions/index.js';
import { CudaDevice } from '../../../src/devices/cuda/cuda-device.js';
import type { CudaExecutable } from '../../../src/devices/cuda/executable.js';
import type { MatmulPrecision } from '../../../src/devices/registration.js';
import { randomArray } from '../../helpers/allclose.js';
import { cudaFound } from '../../helpers/gpu.js';
import { config } from '../../../src/devices/config.js';

const devices = new Map<string, CudaDevice>();

/** A device of the given library and precision (shared by the file), or null after a skip that says why. */
function device(t: TestContext, gemm: 'cublaslt' | 'cublas', matmulPrecision: MatmulPrecision = 'highest'): CudaDevice | null {
  if (!cudaFound.ok) {
    t.skip(`no usable CUDA device: ${cudaFound.reason.split('\n')[0]}`);
    return null;
  }
  const key = `${gemm}/${matmulPrecision}`;
  let d = devices.get(key);
  if (!d) devices.set(key, d = new CudaDevice({ gemm, matmulPrecision }));
  if (d.gemm !== gemm) {
    t.skip(`libcublasLt was not found (the device fell back to ${d.gemm})`);
    return null;
  }
  return d;
}

/** |got - want| within the precision's error for sums of k products of values in [-1, 1]. */
function assertProductClose(got: NDArray, want: NDArray, k: number, precision: MatmulPrecision, what: string): void {
  assert.deepEqual([...got.shape], [...want.shape], `${what}: shape`);
  // float32: a few ulps of the sum; TF32 rounds operands to 10 mantissa bits, bfloat16 to 7 (errors add up as sqrt(k)).
  const unit = { highest: 4e-6, high: 1e-3, medium: 8e-3 }[precision];
  const tol = unit * (2 + 2 * Math.sqrt(k));
  for (let i = 0; i < got.size; i++) {
    const d = Math.abs(got.data[i]! - want.data[i]!);
    if (!(d <= tol)) assert.fail(`${what}: element ${i} is ${got.data[i]}, expected ${want.data[i]} (|diff| ${d} > ${tol})`);
  }
}

interface Product { readonly a: number[]; readonly b: number[]; readonly transA: boolean; readonly transB: boolean; readonly k: number }

function products(): Product[] {
  const out: Product[] = [];
  for (const [m, k, n] of [[1, 1, 1], [7, 5, 3], [1023, 7, 1], [1, 1023, 7], [7, 1, 1023], [1023, 1023, 7], [256, 512, 128]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) out.push({ a: transA ? [k!, m!] : [m!, k!], b: transB ? [n!, k!] : [k!, n!], transA, transB, k: k! });
    }
  }
  out.push({ a: [3, 2, 65, 33], b: [3, 2, 33, 17], transA: false, transB: false, k: 33 });
  out.push({ a: [4, 33, 65], b: [4, 17, 33], transA: true, transB: true, k: 33 });
  out.push({ a: [3, 65, 33], b: [33, 17], transA: false, transB: false, k: 33 });
  out.push({ a: [65, 33], b: [3, 33, 17], transA: false, transB: false, k: 33 });
  out.push({ a: [0, 5], b: [5, 3], transA: false, transB: false, k: 5 });
  out.push({ a: [4, 0], b: [0, 3], transA: false, transB: false, k: 0 });
  out.push({ a: [2, 0, 5], b: [2, 5, 3], transA: false, transB: false, k: 5 });
  return out;
}

const label = (p: Product) => `${JSON.stringify(p.a)}${p.transA ? 'ᵀ' : ''} · ${JSON.stringify(p.b)}${p.transB ? 'ᵀ' : ''}`;

function checkProducts(t: TestContext, precision: MatmulPrecision): void {
  const lt = device(t, 'cublaslt', precision);
  const blas = lt && device(t, 'cublas', precision);
  if (!lt || !blas) return;
  const reference = new T.ReferenceDevice();
  const plansBefore = lt.context.cublasLtPlanCount;
  let seed = 40;
  for (const p of products()) {
    const a = randomArray(p.a, seed++, { dtype: 'float32' }), b = randomArray(p.b, seed++, { dtype: 'float32' });
    const build = (dtype: 'float32' | 'float64', dev: T.Device) => {
      const av = T.tensor({ dtype, ndim: p.a.length, name: 'a' }), bv = T.tensor({ dtype, ndim: p.b.length, name: 'b' });
      return T.fn({ inputs: [av, bv], outputs: T.matmul(av, bv, { transA: p.transA, transB: p.transB }), device: dev });
    };
    const want = build('float64', reference)(a.astype('float64'), b.astype('float64')) as NDArray;
    const viaLt = build('float32', lt);
    for (let call = 0; call < 3; call++) {
      // The second call with these shapes is captured as a CUDA graph, the third replays it.
      assertProductClose(viaLt(a, b) as NDArray, want, p.k, precision, `cuBLASLt ${precision} ${label(p)} call ${call}`);
    }
    assertProductClose(build('float32', blas)(a, b) as NDArray, want, p.k, precision, `cuBLAS ${precision} ${label(p)}`);
  }
  assert.ok(lt.context.cublasLtPlanCount > plansBefore, 'cuBLASLt made plans (the products went through it)');
}

test("cuBLASLt float32 products ('highest') match the float64 reference: every transpose, odd and empty shapes, batches", (t) => checkProducts(t, 'highest'));
test("cuBLASLt TF32 products ('high') match the float64 reference within TF32's rounding", (t) => checkProducts(t, 'high'));
test("cuBLASLt bfloat16-operand products ('medium') match the float64 reference within bfloat16's rounding", (t) => checkProducts(t, 'medium'));

test('a training step through cuBLASLt replays as a CUDA graph with the workspace, equal to the float64 oracle', (t) => {
  const dev = device(t, 'cublaslt');
  if (!dev) return;
  const expected = config().cublasWorkspaceBytes ?? (Number(dev.arch.slice(3)) >= 90 ? 32 << 20 : 4 << 20);
  assert.equal(dev.context.cublasWorkspaceBytes, expected);
  const make = (d: T.Device, dtype: 'float32' | 'float64') => {
    const x = T.matrix('x', dtype);
    const y = T.vector('y', 'int32');
    const net = X.sequential(X.dense(33, 64, { activation: 'relu', rng: new X.Rng(5), dtype }), X.dense(64, 7, { rng: new X.Rng(6), dtype }));
    const loss = X.crossEntropy(net.apply(x), y);
    const opt = X.makeOptimizer('adam', net.params, { loss }, { learningRate: 0.01 });
    return T.fn({ inputs: [x, y], outputs: loss, updates: opt.directUpdates!, device: d });
  };
  const pair = () => ({ step: make(dev, 'float32'), oracle: make(new T.ReferenceDevice({ float64: true }), 'float64') });
  const check = (f: ReturnType<typeof pair>, k: number) => {
    const xs = randomArray([65, 33], 70 + k, { dtype: 'float32' });
    const ys = NDArray.from(Array.from({ length: 65 }, (_, r) => (r * 5 + k) % 7), { dtype: 'int32' });
    const got = (f.step(xs, ys) as NDArray).item();
    const want = (f.oracle(xs.astype('float64'), ys) as NDArray).item();
    assert.ok(Math.abs(got - want) < 1e-4 * (1 + Math.abs(want)), `step ${k}: ${got} vs ${want}`);
  };
  const graphState = (f: ReturnType<typeof pair>) => {
    const compiled = (f.step as unknown as { compiled: { executables: Map<string, { exe: unknown }> } }).compiled;
    return ([...compiled.executables.values()][0]!.exe as CudaExecutable).graphState;
  };
  const first = pair();
  for (let k = 0; k < 5; k++) check(first, k);
  assert.equal(graphState(first), 'captured');
  // No workspace of ours (cuBLAS's own pool, none for cuBLASLt): the captured graph keeps replaying with the buffer it
  // baked in (kept allocated), and a function compiled now plans and captures anew; both stay right. Then back.
  dev.context.setCublasWorkspace(0);
  try {
    const second = pair();
    for (let k = 5; k < 9; k++) {
      check(first, k);
      check(second, k);
    }
    assert.equal(graphState(second), 'captured');
  } finally {
    dev.context.setCublasWorkspace(expected);
  }
  check(first, 9);
});
