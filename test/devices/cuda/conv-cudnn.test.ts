// The conv2d lowerings with cuDNN enabled, run against a stand-in RunState whose context plans with the
// stand-in libcudnn: which buffer goes where for each direction, the workspace from the allocator, the
// im2col path when cuDNN is off or does not take the problem, and bad shapes reported before any cuDNN call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CUDNN_SIGNATURES, loadCudnn, type Cudnn } from '../../../src/devices/cuda/ffi/index.js';
import { lowerConv2d, lowerConv2dFilterGrad, lowerConv2dInputGrad } from '../../../src/devices/cuda/lower/conv.js';
import { planCudnnConv, type CudnnConvProblem } from '../../../src/devices/cuda/cudnn-conv.js';
import { ModuleBuilder } from '../../../src/devices/cuda/codegen/module.js';
import type { LowerContext, Lowering, RunState } from '../../../src/devices/cuda/lower/types.js';
import type { Program, ProgramStep } from '../../../src/compile/program.js';
import type { OpName } from '../../../src/ops/registry.js';
import { OpRuntimeError } from '../../../src/ops/op.js';
import type { Conv2dAttrs } from '../../../src/ops/conv.js';
import koffi from 'koffi';
import { FAKE_CUDNN_C, buildFakeLibrary } from './fake-libraries.js';

const fake = buildFakeLibrary('libcudnn.so.9', CUDNN_SIGNATURES, FAKE_CUDNN_C);
const raw = 'path' in fake ? koffi.load(fake.path) : null;
const record = (): number[] => {
  const r = new Float64Array(128);
  raw!.func('int fake_get_record(_Out_ double *out)')(r);
  return [...r];
};

const ATTRS: Conv2dAttrs = { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 };
const X = [2, 4, 9, 10];
const W = [6, 2, 3, 3];
const Y = [2, 6, 5, 10];

interface Harness { readonly log: string[]; planned: CudnnConvProblem[]; declined?: number }

function lowered(lowering: Lowering, op: OpName, attrs: Conv2dAttrs, cudnn: boolean) {
  const lc: LowerContext = {
    program: {} as Program, mb: new ModuleBuilder(), slotDtype: () => 'float32', slotNdim: () => 4, slotStorage: () => 'float32', cudnn,
  };
  const step: ProgramStep = { op, attrs, inputs: [0, 1, 2], output: 3 };
  return { runner: lowering(lc, step), step };
}

/** A RunState over fake arrays: input slot i lives at 0xa000 + i * 0x1000, outputs at 0x7000, temporaries at 0xe000. */
function state(shapes: readonly (readonly number[])[], lib: Cudnn | null, h: Harness): RunState {
  const arr = (shape: readonly number[], ptr: bigint) => ({
    shape, dtype: 'float32', ptr, size: shape.reduce((a, b) => a * b, 1), release: () => h.log.push(`release 0x${ptr.toString(16)}`),
  });
  const handle = lib?.create();
  const ctx = {
    cudnnPlan: (p: CudnnConvProblem, limit: number) => {
      h.planned.push(p);
      if (!lib || !handle) throw new Error('cuDNN was consulted');
      return planCudnnConv(lib, handle, p, limit);
    },
    cudnn: () => ({ lib, handle }),
    declineCudnnPlan: () => { h.declined = (h.declined ?? 0) + 1; },
    gridFor: () => 1,
  };
  return {
    ctx, tf32: false, bf16: false,
    dtype: () => 'float32',
    shape: (slot: number) => shapes[slot],
    dev: (slot: number) => arr(shapes[slot]!, BigInt(0xa000 + slot * 0x1000)),
    alloc: (_dt: string, shape: readonly number[]) => arr(shape, 0x7000n),
    temp: (dt: string, shape: readonly number[]) => {
      h.log.push(`temp ${dt} ${shape.join('x')}`);
      return arr(shape, 0xe000n);
    },
    launch: (kernel: string) => { throw new Error(`kernel ${kernel} launched`); },
  } as unknown as RunState;
}

const cases = [
  { name: 'conv2d', lowering: lowerConv2d, shapes: [X, W, []], run: [1, 1, 0, 0x1000, 0xa000, 0x2000, 0xb000, 0x3000, 2, 0xe000, 2048, 0x1010, 0x7000] },
  { name: 'conv2dInputGrad', lowering: lowerConv2dInputGrad, shapes: [Y, W, X],
    run: [2, 1, 0, 0x2000, 0xb000, 0x1010, 0xa000, 0x3000, 2, 0xe000, 2048, 0x1000, 0x7000] },
  { name: 'conv2dFilterGrad', lowering: lowerConv2dFilterGrad, shapes: [X, Y, W],
    run: [3, 1, 0, 0x1000, 0xa000, 0x1010, 0xb000, 0x3000, 2, 0xe000, 2048, 0x2000, 0x7000] },
] as const;

for (const c of cases) {
  test(`${c.name} with cuDNN: the buffers, the workspace temporary and the result`, (t) => {
    if ('skip' in fake) return t.skip(fake.skip);
    raw!.func('int fake_reset(void)')();
    const lib = loadCudnn({ path: fake.path });
    const h: Harness = { log: [], planned: [] };
    const { runner, step } = lowered(c.lowering, c.name, ATTRS, true);
    const out = runner(state(c.shapes, lib, h), step);
    assert.equal(out.dev?.ptr, 0x7000n);
    assert.deepEqual(record().slice(90, 103), c.run);
    assert.deepEqual(h.log, ['temp uint8 2048', 'release 0xe000'], 'one workspace from the allocator, released once queued');
    assert.equal(h.planned.length, 1);
    assert.equal(h.planned[0]!.groups, 2);
    assert.equal(h.planned[0]!.tf32, false);
  });

  test(`${c.name} with cuDNN off runs im2col + cuBLAS and never consults cuDNN`, () => {
    const h: Harness = { log: [], planned: [] };
    const { runner, step } = lowered(c.lowering, c.name, ATTRS, false);
    // The first generated kernel (im2col, or col2im after the GEMM) is where the stand-in state stops it.
    assert.throws(() => runner(state(c.shapes, null, h), step), /kernel|cublas/);
    assert.equal(h.planned.length, 0);
  });
}

test('asymmetric same padding with cuDNN on falls back to im2col without planning', () => {
  const same: Conv2dAttrs = { stride: [1, 1], padding: 'same', dilation: [1, 1], groups: 1 };
  const h: Harness = { log: [], planned: [] };
  const { runner, step } = lowered(lowerConv2d, 'conv2d', same, true);
  assert.throws(() => runner(state([[1, 1, 5, 5], [1, 1, 2, 2], []], null, h), step), /kernel .*launched/);
  assert.equal(h.planned.length, 0);
});

test('bad shapes, groups and dilation give the existing errors before any cuDNN call', () => {
  const h: Harness = { log: [], planned: [] };
  const run = (lowering: Lowering, op: OpName, attrs: Conv2dAttrs, shapes: (readonly number[])[]) => {
    const { runner, step } = lowered(lowering, op, attrs, true);
    return () => runner(state(shapes, null, h), step);
  };
  assert.throws(run(lowerConv2d, 'conv2d', ATTRS, [X, [6, 3, 3, 3], []]),
    (e: unknown) => e instanceof OpRuntimeError && /filters expect 3 channels per group/.test(e.message));
  assert.throws(run(lowerConv2d, 'conv2d', { ...ATTRS, groups: 3 }, [X, W, []]),
    (e: unknown) => e instanceof OpRuntimeError && /groups 3 must divide/.test(e.message));
  const dilated: Conv2dAttrs = { stride: [1, 1], padding: [0, 0], dilation: [3, 3], groups: 1 };
  assert.throws(run(lowerConv2d, 'conv2d', dilated, [[1, 1, 3, 3], [1, 1, 3, 3], []]),
    (e: unknown) => e instanceof OpRuntimeError && /output size .* is not positive/.test(e.message));
  assert.throws(run(lowerConv2dInputGrad, 'conv2dInputGrad', ATTRS, [[2, 6, 4, 10], W, X]),
    (e: unknown) => e instanceof OpRuntimeError && /output gradient has shape/.test(e.message));
  assert.throws(run(lowerConv2dFilterGrad, 'conv2dFilterGrad', ATTRS, [X, [2, 5, 5, 10], W]),
    (e: unknown) => e instanceof OpRuntimeError && /output gradient has shape/.test(e.message));
  assert.equal(h.planned.length, 0, 'cuDNN was never consulted');
});

test('an algorithm that cuDNN reports not supported at run time drops the plan and runs im2col; other errors are thrown', (t) => {
  if ('skip' in fake) return t.skip(fake.skip);
  raw!.func('int fake_reset(void)')();
  const lib = loadCudnn({ path: fake.path });
  const h: Harness = { log: [], planned: [] };
  const { runner, step } = lowered(lowerConv2d, 'conv2d', ATTRS, true);
  raw!.func('int fake_set_run_status(int s)')(3002);
  assert.throws(() => runner(state([X, W, []], lib, h), step), /kernel .*launched/, 'fell through to im2col');
  assert.equal(h.declined, 1);
  assert.deepEqual(h.log.slice(0, 2), ['temp uint8 2048', 'release 0xe000'], 'the workspace was released');
  raw!.func('int fake_set_run_status(int s)')(5000);
  assert.throws(() => runner(state([X, W, []], lib, h), step),
    (e: unknown) => e instanceof Error && /cudnnConvolutionForward failed: CUDNN_STATUS_EXECUTION_FAILED \(5000\)/.test(e.message));
  raw!.func('int fake_set_run_status(int s)')(0);
});
