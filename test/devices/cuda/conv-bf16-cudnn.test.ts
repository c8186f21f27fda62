// The 'bf16' policy's convolutions with cuDNN enabled, against the stand-in libcudnn (fake-libraries.ts):
// each direction rounds its two operands into bfloat16 temporaries (to_bf16_f32), plans a problem of
// bfloat16 tensors with float compute (CUDNN_DATA_BFLOAT16 descriptors, CUDNN_DATA_FLOAT convolution,
// tensor-op math), gives cuDNN the temporaries, and widens cuDNN's bfloat16 result into the float32
// output (from_bf16_f32); every temporary is released. Numerics run on the GPU (bf16-gpu.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import koffi from 'koffi';
import { CUDNN_SIGNATURES, loadCudnn, type Cudnn } from '../../../src/devices/cuda/ffi/index.js';
import { lowerConv2dFilterGradStep, lowerConv2dInputGradStep, lowerConv2dStep } from '../../../src/devices/cuda/lower/conv-bf16.js';
import { planCudnnConv, type CudnnConvProblem } from '../../../src/devices/cuda/cudnn-conv.js';
import { CUDNN_DATA_TYPE, CUDNN_TENSOR_OP_MATH } from '../../../src/devices/cuda/ffi/cudnn.js';
import { ModuleBuilder } from '../../../src/devices/cuda/codegen/module.js';
import type { LowerContext, Lowering, RunState } from '../../../src/devices/cuda/lower/types.js';
import type { Program, ProgramStep } from '../../../src/compile/program.js';
import type { OpName } from '../../../src/ops/registry.js';
import type { Conv2dAttrs } from '../../../src/ops/conv.js';
import { FAKE_CUDNN_C, buildFakeLibrary } from './fake-libraries.js';

const fake = buildFakeLibrary('libcudnn.so.9', CUDNN_SIGNATURES, FAKE_CUDNN_C);
const raw = 'path' in fake ? koffi.load(fake.path) : null;
const record = (): number[] => {
  const r = new Float64Array(128);
  raw!.func('int fake_get_record(_Out_ double *out)')(r);
  return [...r];
};

const ATTRS: Conv2dAttrs = { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2, precision: 'bf16' };
const X = [2, 4, 9, 10];
const W = [6, 2, 3, 3];
const Y = [2, 6, 5, 10];
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** A RunState over fake arrays: input slot i at 0xa000 + i * 0x1000, the output at 0x7000, temporaries from 0x100000 up. */
function state(shapes: readonly (readonly number[])[], lib: Cudnn, log: string[], planned: CudnnConvProblem[]): RunState {
  let next = 0x100000n;
  const arr = (dtype: string, shape: readonly number[], ptr: bigint) => ({
    shape, dtype, ptr, size: size(shape), release: () => log.push(`release 0x${ptr.toString(16)}`),
  });
  const handle = lib.create();
  const ctx = {
    cudnnPlan: (p: CudnnConvProblem, limit: number) => { planned.push(p); return planCudnnConv(lib, handle, p, limit); },
    cudnn: () => ({ lib, handle }),
    declineCudnnPlan: () => { throw new Error('declined'); },
    cublas: () => { throw new Error('cuBLAS was used'); },
    gridFor: () => 1,
  };
  return {
    ctx, tf32: false, bf16: false,
    dtype: () => 'float32',
    shape: (slot: number) => shapes[slot],
    dev: (slot: number) => arr('float32', shapes[slot]!, BigInt(0xa000 + slot * 0x1000)),
    alloc: (dt: string, shape: readonly number[]) => arr(dt, shape, 0x7000n),
    temp: (dt: string, shape: readonly number[]) => {
      const p = next;
      next += 0x100000n;
      log.push(`temp ${dt} ${shape.join('x')} at 0x${p.toString(16)}`);
      return arr(dt, shape, p);
    },
    launch: (kernel: string, _g: unknown, _b: unknown, args: readonly { ptr?: bigint; i64?: number | bigint }[]) => {
      log.push(`${kernel} 0x${args[0]!.ptr!.toString(16)} <- 0x${args[1]!.ptr!.toString(16)} x${String(args[2]!.i64)}`);
    },
  } as unknown as RunState;
}

/** Each direction's operand copies in the order made (input slot, elements), and its result's shape. */
/** Each direction's operand copies in the order made (input slot, elements), which copy cuDNN reads as its first two buffers, and the result's shape. */
const cases: {
  name: OpName; lowering: Lowering; shapes: (readonly number[])[]; copies: [number, number][]; buffers: [number, number]; result: readonly number[];
}[] = [
  { name: 'conv2d', lowering: lowerConv2dStep, shapes: [X, W, []], copies: [[0, size(X)], [1, size(W)]], buffers: [0, 1], result: Y },
  { name: 'conv2dInputGrad', lowering: lowerConv2dInputGradStep, shapes: [Y, W, X], copies: [[0, size(Y)], [1, size(W)]], buffers: [1, 0], result: X },
  { name: 'conv2dFilterGrad', lowering: lowerConv2dFilterGradStep, shapes: [X, Y, W], copies: [[0, size(X)], [1, size(Y)]], buffers: [0, 1], result: W },
];

for (const c of cases) {
  test(`${c.name} under precision bf16 with cuDNN: bfloat16 copies in, bfloat16 tensors with float compute, the result widened`, (t) => {
    if ('skip' in fake) return t.skip(fake.skip);
    raw!.func('int fake_reset(void)')();
    const lib = loadCudnn({ path: fake.path });
    const log: string[] = [];
    const planned: CudnnConvProblem[] = [];
    const lc: LowerContext = {
      program: {} as Program, mb: new ModuleBuilder(), slotDtype: () => 'float32', slotNdim: () => 4, slotStorage: () => 'float32', cudnn: true,
    };
    const step: ProgramStep = { op: c.name, attrs: ATTRS, inputs: [0, 1, 2], output: 3 };
    const out = c.lowering(lc, step)(state(c.shapes, lib, log, planned), step);
    assert.equal(out.dev?.ptr, 0x7000n);
    assert.equal(planned.length, 1);
    assert.equal(planned[0]!.dtype, 'bfloat16');
    const r = record();
    assert.deepEqual([r[10], r[20], r[50]], Array(3).fill(CUDNN_DATA_TYPE.bfloat16), 'x, y and the filters are bfloat16 tensors');
    assert.equal(r[67], CUDNN_DATA_TYPE.float32, 'the convolution computes in float');
    assert.equal(r[69], CUDNN_TENSOR_OP_MATH);
    assert.deepEqual(r.slice(90, 93), [c.name === 'conv2d' ? 1 : c.name === 'conv2dInputGrad' ? 2 : 3, 1, 0], 'direction, alpha 1, beta 0 (as floats)');
    // The temporaries, in order: the two bfloat16 operand copies, cuDNN's bfloat16 result, the workspace.
    const temps = log.filter((l) => l.startsWith('temp')).map((l) => BigInt(l.split(' at ')[1]!));
    const launches = log.filter((l) => /_bf16_/.test(l));
    const input = (slot: number) => `0x${(0xa000 + slot * 0x1000).toString(16)}`;
    assert.deepEqual(launches, [
      ...c.copies.map(([slot, n], k) => `to_bf16_f32 0x${temps[k]!.toString(16)} <- ${input(slot)} x${n}`),
      `from_bf16_f32 0x7000 <- 0x${temps[2]!.toString(16)} x${size(c.result)}`,
    ]);
    assert.deepEqual(log.filter((l) => l.startsWith('temp')).map((l) => l.split(' at ')[0]),
      [...c.copies.map(([, n]) => `temp uint8 ${2 * n}`), `temp uint8 ${2 * size(c.result)}`, 'temp uint8 2048']);
    // cuDNN's three buffers (forward x, w, y; backward data w, dy, dx; backward filter x, dy, dw): the operand
    // copies and the bfloat16 result, never the float32 inputs or output.
    assert.deepEqual([r[94]!, r[96]!, r[102]!].map((p) => BigInt(p)), [temps[c.buffers[0]]!, temps[c.buffers[1]]!, temps[2]!]);
    const released = log.filter((l) => l.startsWith('release')).map((l) => BigInt(l.split(' ')[1]!));
    assert.deepEqual([...released].sort(), [...temps].sort(), 'every temporary released');
  });
}
