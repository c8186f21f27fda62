// The lowerings' products through the cuBLASLt path (RunState.cublasLt), on the CPU: the row-major specs go
// through ltProblem into CudaContext.ltMatmul, which the emulator (test/helpers/cuda-emulator.ts) runs from the
// problem's layouts alone, so a wrong layout, transpose, leading dimension or batch stride gives wrong numbers.
// Checked against the reference device in float64: every transpose pair, odd shapes (1, 7, 1023), batches
// (full, folded, broadcast), empty products, the im2col convolutions and the 'bf16' policy's products.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import type { NDArray } from '../../../src/tensor/ndarray.js';
import type { DType } from '../../../src/tensor/dtype.js';
import { lowerProgram } from '../../../src/devices/cuda/lower-program.js';
import { CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_16BF, CUDA_R_32F } from '../../../src/devices/cuda/ffi/cublas.js';
import type { LtProblem } from '../../../src/devices/cuda/lt-plans.js';
import { assertAllClose, randomArray } from '../../helpers/allclose.js';
import { HOST_CXX } from '../../helpers/cuda-host.js';
import { buildHost, runOnHost } from '../../helpers/cuda-emulator.js';

/** A case built for a dtype (float32 to run, float64 for the reference), its float32 values, and whether cuBLASLt should run it. */
interface Case {
  readonly name: string;
  readonly build: (dtype: DType) => { inputs: T.Variable[]; outputs: T.Variable[] };
  readonly values: NDArray[];
  /** The least number of products cuBLASLt runs (0: none reach it, cuBLAS or no GEMM at all). */
  readonly lt: number;
}

const matrix = (dtype: DType, ndim: number, name: string) => T.tensor({ dtype, ndim, name });

function matmulCase(name: string, aShape: number[], bShape: number[], transA: boolean, transB: boolean, lt: number, seed: number): Case {
  return {
    name: `${name}: ${JSON.stringify(aShape)}${transA ? 'ᵀ' : ''} · ${JSON.stringify(bShape)}${transB ? 'ᵀ' : ''}`,
    build: (dtype) => {
      const a = matrix(dtype, aShape.length, 'a'), b = matrix(dtype, bShape.length, 'b');
      return { inputs: [a, b], outputs: [T.matmul(a, b, { transA, transB })] };
    },
    values: [randomArray(aShape, seed, { dtype: 'float32' }), randomArray(bShape, seed + 1, { dtype: 'float32' })],
    lt,
  };
}

function cases(): Case[] {
  const out: Case[] = [];
  let seed = 700;
  // [m, k, n]: vectors, odd sizes, one long side.
  const sizes = [[1, 1, 1], [7, 5, 3], [1023, 7, 1], [1, 1023, 7], [7, 1, 1023], [33, 64, 17]];
  for (const [m, k, n] of sizes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        out.push(matmulCase('matmul', transA ? [k!, m!] : [m!, k!], transB ? [n!, k!] : [k!, n!], transA, transB, 1, seed += 2));
      }
    }
  }
  out.push(matmulCase('batched, both batched', [3, 2, 5, 7], [3, 2, 7, 4], false, false, 1, seed += 2));
  out.push(matmulCase('batched, transposed', [4, 7, 5], [4, 6, 7], true, true, 1, seed += 2));
  out.push(matmulCase('shared right operand (folded into the rows)', [3, 5, 7], [7, 4], false, false, 1, seed += 2));
  out.push(matmulCase('broadcast left operand (cuBLAS keeps it)', [5, 7], [3, 7, 4], false, false, 0, seed += 2));
  out.push(matmulCase('empty rows', [0, 5], [5, 3], false, false, 0, seed += 2));
  out.push(matmulCase('empty inner axis (a fill)', [4, 0], [0, 3], false, false, 0, seed += 2));
  const xs = [2, 3, 6, 5], ws = [4, 3, 3, 3];
  const attrs = { stride: [1, 1] as [number, number], padding: [1, 1] as [number, number], dilation: [1, 1] as [number, number], groups: 1 };
  const x = randomArray(xs, seed++, { dtype: 'float32' }), w = randomArray(ws, seed++, { dtype: 'float32' });
  const gy = randomArray([2, 4, 6, 5], seed++, { dtype: 'float32' });
  out.push({
    name: 'conv2d and its gradients (im2col)',
    build: (dtype) => {
      const xv = matrix(dtype, 4, 'x'), wv = matrix(dtype, 4, 'w'), gv = matrix(dtype, 4, 'gy');
      return { inputs: [xv, wv, gv], outputs: [T.conv2d(xv, wv, attrs), T.conv2dInputGrad(gv, wv, xv, attrs), T.conv2dFilterGrad(xv, gv, wv, attrs)] };
    },
    values: [x, w, gy],
    lt: 1,
  });
  return out;
}

const SKIP = HOST_CXX === null ? 'no host C++ compiler (g++, c++ or clang++)' : false;

test('products through cuBLASLt (emulated from its problem description) match the reference in float64', { skip: SKIP }, () => {
  const all = cases();
  const programs = all.map((c) => {
    const { inputs, outputs } = c.build('float32');
    // Convolutions through im2col (the lowering's cuDNN path is the GPU tests').
    return T.fn({ inputs, outputs }).compiled.description.program;
  });
  const lowered = programs.map((p) => lowerProgram(p));
  const host = buildHost(lowered);
  const reference = new T.ReferenceDevice();
  all.forEach((c, i) => {
    const ltCalls: LtProblem[] = [];
    const got = runOnHost(host, programs[i]!, lowered[i]!, c.values, { cublasLt: true, ltCalls });
    if (c.lt > 0) assert.ok(ltCalls.length >= c.lt, `${c.name}: ${ltCalls.length} products through cuBLASLt`);
    else assert.equal(ltCalls.length, 0, `${c.name}: cuBLASLt is not used`);
    for (const p of ltCalls) assert.equal(p.computeType, CUBLAS_COMPUTE_32F, `${c.name}: exact float32 (no TF32 asked for)`);
    const exact = c.build('float64');
    const want = T.fn({ ...exact, device: reference })(...c.values.map((v) => v.astype('float64'))) as NDArray[];
    const viaCublas = runOnHost(host, programs[i]!, lowered[i]!, c.values);
    got.forEach((g, k) => {
      assert.equal(g.dtype, 'float32');
      assertAllClose(g, want[k]!, { rtol: 1e-5, atol: 1e-5 }, `${c.name} output ${k}`);
      assertAllClose(g, viaCublas[k]!, { rtol: 1e-6, atol: 1e-6 }, `${c.name} output ${k}: cuBLASLt and cuBLAS agree`);
    });
  });
});

test("the 'bf16' policy's and TF32's products take cuBLASLt's bfloat16-operand and TF32 problems", { skip: SKIP }, () => {
  const c = matmulCase('bf16', [2, 9, 7], [2, 5, 7], false, true, 1, 900);
  const { inputs, outputs } = c.build('float32');
  const program = T.fn({ inputs, outputs, precision: 'bf16' }).compiled.description.program;
  const plainProgram = T.fn({ inputs, outputs }).compiled.description.program;
  const lowered = [lowerProgram(program), lowerProgram(plainProgram)];
  const host = buildHost(lowered);
  const reference = new T.ReferenceDevice();
  const ltCalls: LtProblem[] = [];
  const [got] = runOnHost(host, program, lowered[0]!, c.values, { cublasLt: true, ltCalls });
  assert.equal(ltCalls.length, 1);
  assert.deepEqual([ltCalls[0]!.a.type, ltCalls[0]!.b.type, ltCalls[0]!.c.type, ltCalls[0]!.computeType, ltCalls[0]!.batch],
    [CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F, 2], 'bfloat16 operands, float32 result and accumulation');
  const [want] = T.fn({ inputs, outputs, device: reference, precision: 'bf16' })(...c.values) as NDArray[];
  assertAllClose(got!, want!, { rtol: 1e-5, atol: 1e-5 }, 'the operands rounded to bfloat16 as the reference rounds them');
  // 'medium' matmulPrecision rounds float32 operands on the device (RunState.bf16): the same bfloat16 problem.
  const medium: LtProblem[] = [];
  const [viaMedium] = runOnHost(host, plainProgram, lowered[1]!, c.values, { cublasLt: true, bf16: true, ltCalls: medium });
  assert.deepEqual(medium.map((p) => [p.a.type, p.computeType]), [[CUDA_R_16BF, CUBLAS_COMPUTE_32F]]);
  assertAllClose(viaMedium!, want!, { rtol: 1e-5, atol: 1e-5 }, "matmulPrecision 'medium'");
  // TF32 ('high'): the emulator computes exactly, so the result is the float64 product's rounding.
  const tf32: LtProblem[] = [];
  const [viaTf32] = runOnHost(host, plainProgram, lowered[1]!, c.values, { cublasLt: true, tf32: true, ltCalls: tf32 });
  assert.deepEqual(tf32.map((p) => [p.a.type, p.computeType]), [[CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32]]);
  const [exact] = T.fn({ ...c.build('float64'), device: reference })(...c.values.map((v) => v.astype('float64'))) as NDArray[];
  assertAllClose(viaTf32!, exact!, { rtol: 1e-5, atol: 1e-5 });
});
