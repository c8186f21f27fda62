// The bias add and ReLU of a dense layer's training step lower to one CUDA kernel with one output:
// the compiler (compile/rewrite/shape-reads.ts) moves the gradient's read of the pre-activation's
// shape to the ReLU's output, so the pre-activation has one reader and fuses. Checked on the
// program's log and steps and on the lowering's kernels, and the generated source compiled with
// nvcc (where it is installed). Needs no GPU. (The kernel shim of test/helpers/cuda-emulator.ts
// does not run the vectorised elementwise kernels; the CPU device's values are groups.test.ts's.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DType } from '../../../src/tensor/dtype.js';
import type { FusedAttrs } from '../../../src/ops/fused.js';
import { lowerProgram } from '../../../src/devices/cuda/lower-program.js';

function layer(dtype: DType) {
  const x = T.tensor({ dtype, ndim: 2, name: 'x' }), w = T.tensor({ dtype, ndim: 2, name: 'w' }), b = T.tensor({ dtype, ndim: 1, name: 'b' });
  const loss = T.sum(T.square(T.relu(T.add(T.dot(x, w), b))));
  return { inputs: [x, w, b], outputs: [loss, ...T.grad(loss, [w, b])] };
}

const fusedOps = (attrs: unknown): string => (attrs as FusedAttrs).steps.map((s) => s.op).join(',');

test('bias add + ReLU are one fused step and one kernel unit; the pre-activation is never written', () => {
  const { program, log } = T.fn(layer('float32')).compiled.description;
  assert.ok(log.some((l) => /^shape reads: \d+ moved/.test(l)), `log: ${log.join('; ')}`);
  const at = program.steps.findIndex((s) => s.op === 'fused' && fusedOps(s.attrs) === 'add,relu');
  assert.ok(at >= 0, `steps: ${program.steps.map((s) => (s.op === 'fused' ? `fused(${fusedOps(s.attrs)})` : s.op)).join(' ')}`);
  assert.ok(!program.steps.some((s) => s.op === 'add' || s.op === 'relu'), 'no add or relu step of its own');
  // The fused step's first input is the product; nothing else reads a bias-add value.
  const product = program.steps[at]!.inputs[0]!;
  assert.equal(program.steps.find((s) => s.output === product)?.op, 'matmul');
  const lowered = lowerProgram(program);
  assert.equal(lowered.runners.length, program.steps.length, 'one runner per step');
  const fusedUnits = lowered.units.filter((u) => u.name.startsWith('ew_fused_'));
  assert.equal(fusedUnits.length, program.steps.filter((s) => s.op === 'fused').length, `units: ${lowered.units.map((u) => u.name).join(', ')}`);
});

const NVCC = process.env['NVCC'] ?? ['/usr/local/bin/nvcc', '/usr/local/cuda/bin/nvcc'].find((path) => existsSync(path)) ?? null;

test('the lowered step, its fused bias add + ReLU kernel included, compiles with nvcc for sm_90', { skip: NVCC === null ? 'nvcc not found' : false }, () => {
  const lowered = lowerProgram(T.fn(layer('float32')).compiled.description.program);
  const file = join(mkdtempSync(join(tmpdir(), 'synk-bias-relu-')), 'step.cu');
  writeFileSync(file, lowered.source);
  const r = spawnSync(NVCC!, ['-std=c++17', '-arch=sm_90', '-c', '-x', 'cu', file, '-o', '/dev/null'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nvcc failed on ${file}\n${r.stderr}`);
});
