// The CUDA code generators turn only their own closed tables into source text: a dtype that is
// not one of the five (once "float32\n#include \"/etc/hostname\"" reached NVRTC, which printed the
// file in its error), an op name outside the table or a non-number literal is refused before any
// source exists. Runs without a GPU (lowering needs none).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import type { DType } from '../../../src/tensor/dtype.js';
import type { FusedStep, Program } from '../../../src/compile/program.js';
import { lowerProgram } from '../../../src/devices/cuda/lower-program.js';
import { ctype, dtag, literal, storeFn } from '../../../src/devices/cuda/codegen/ctypes.js';
import { ModuleBuilder } from '../../../src/devices/cuda/codegen/module.js';
import { elementwiseKernels } from '../../../src/devices/cuda/codegen/elementwise.js';
import { reduceKernels } from '../../../src/devices/cuda/codegen/reduce.js';

const INCLUDE = 'float32\n#include "/etc/hostname"';

test('a program whose slot dtype carries an #include is refused before any CUDA source is made', () => {
  const x = T.vector('x');
  const program = T.fn({ inputs: [x], outputs: T.tanh(x.mul(2)) }).compiled.description.program;
  const input: Program = { ...program, slots: program.slots.map((s, i) => (i === program.inputs[0] ? { ...s, dtype: INCLUDE as DType } : s)) };
  assert.throws(() => lowerProgram(input), /cuda codegen: dtype "float32\\n#include \\"\/etc\/hostname\\"" is not one of bool/);
  const fused = program.steps[0]!;
  assert.equal(fused.op, 'fused');
  const inner = (fused.attrs['steps'] as { dtype: string }[]).map((s) => ({ ...s, dtype: INCLUDE }));
  const step: Program = { ...program, steps: [{ ...fused, attrs: { steps: inner } }] };
  assert.throws(() => lowerProgram(step), /cuda codegen: dtype "float32\\n#include/);
  assert.ok(lowerProgram(program).source.includes('tanhf'));
});

test('every dtype table lookup and literal refuses what is not in the table', () => {
  for (const f of [ctype, dtag, storeFn]) {
    for (const d of [INCLUDE, 'constructor', '__proto__', 'toString']) assert.throws(() => f(d as DType), /is not one of bool, uint8, int32, float32, float64/);
    assert.equal(typeof f('float64'), 'string');
  }
  assert.throws(() => literal('1); system("x"' as unknown as number, 'float32'), /a literal must be a number/);
  assert.equal(literal(2, 'int32'), '(int)2');
  const mb = new ModuleBuilder();
  assert.throws(() => elementwiseKernels(mb, ['float32'], [{ op: 'neg', attrs: {}, args: [0], dtype: INCLUDE as DType }], 1), /is not one of/);
  assert.throws(() => elementwiseKernels(mb, ['float32'], [{ op: 'neg', attrs: {}, args: [5], dtype: 'float32' }], 1), /refers to argument 5/);
  const hostile = { op: 'system' as FusedStep['op'], attrs: {}, args: [0], dtype: 'float32' as const };
  assert.throws(() => elementwiseKernels(mb, ['float32'], [hostile], 1), /unknown op 'system'/);
  assert.throws(() => reduceKernels(mb, { kind: 'varDev', input: 'float32', output: 'float32', ddof: '0); x(' as unknown as number }),
    /ddof must be a finite number/);
  // A fractional ddof still gives an identifier-safe kernel name.
  assert.match(reduceKernels(mb, { kind: 'varDev', input: 'float32', output: 'float32', ddof: 1.5 }).name, /^rd_varDev_f32_f32_d[0-9a-f]{12}$/);
  assert.ok(mb.kernelNames.every((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)));
});
